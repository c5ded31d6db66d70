"""Database tables of the console service."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flotilla import NAMING_CONVENTION, Database, Id, UtcDateTime, utc_now


class Base(DeclarativeBase):
    """Base of the console service's tables; its own metadata, its own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

db = Database(Base.metadata, migrations=MIGRATIONS)


class Action(Base):
    """One of the actions: a name no other has, and a description."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
