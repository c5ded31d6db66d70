"""Database tables of the users service."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flotilla import NAMING_CONVENTION, Database, Id, Outbox, UtcDateTime, utc_now


def normalize_email(email: str) -> str:
    """The form an address is stored and compared in: trimmed and lower-cased."""
    return email.strip().lower()


class Base(DeclarativeBase):
    """Base of the users service's tables; its own metadata, its own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

db = Database(Base.metadata, migrations=MIGRATIONS)
outbox = Outbox(Base.metadata)  # user.registered, written with the account (docs/events.md)


class User(Base):
    """A registered account.

    ``email`` is stored lower-cased so uniqueness is case-insensitive on every database.
    ``roles``, ``is_active`` and ``password_changed_at`` exist for login and tokens: a token
    issued before the last password change is no longer honoured.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["customer"])
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    password_changed_at: Mapped[datetime] = mapped_column(default=utc_now)


class RefreshToken(Base):
    """One refresh token of a login session ("family"), stored only as its SHA-256 digest.

    Each use marks the token ``used_at`` and issues its successor in the same family; a token
    presented again after its use means two parties hold it, so the whole family is revoked.
    ``session_expires_at`` is copied along the family: a login ends then, however often it
    refreshed.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    session_expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
