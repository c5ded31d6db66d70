"""Database tables of the notifications service: what it processed and what it sent.

The service owns its database like every other service. ``processed_events`` makes each
event's e-mail a one-time effect (:class:`flotilla.ProcessedEvents`); ``sent_emails`` is
the record of each send, committed in the same transaction as the processed event id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flotilla import NAMING_CONVENTION, Database, ProcessedEvents, UtcDateTime, utc_now


class Base(DeclarativeBase):
    """Base of the notifications service's tables; its own metadata, its own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

db = Database(Base.metadata, migrations=MIGRATIONS)
processed = ProcessedEvents(Base.metadata)


class SentEmail(Base):
    """One e-mail handed to the SMTP server (or written to a file), and why.

    Written in the transaction that records the event as processed: both exist, or neither.
    """

    __tablename__ = "sent_emails"

    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(50))
    recipient: Mapped[str] = mapped_column(String(254))
    sent_at: Mapped[datetime] = mapped_column(default=utc_now)
