"""Database tables of the console service."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Float, Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flotilla import NAMING_CONVENTION, Database, Id, UtcDateTime, utc_now


class Base(DeclarativeBase):
    """Base of the console service's tables; its own metadata, its own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

db = Database(Base.metadata, migrations=MIGRATIONS)


class Sample(Base):
    """A web service's request counters as read from its /metrics at ``taken_at``.

    The charts' own source where no Prometheus runs (:mod:`console.charts`): rates are the
    differences between consecutive samples. Kept for an hour.
    """

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_service_taken_at", "service", "taken_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(default=utc_now)
    requests: Mapped[float] = mapped_column(Float)
    errors: Mapped[float] = mapped_column(Float)
    latency_sum: Mapped[float] = mapped_column(Float)
    latency_count: Mapped[float] = mapped_column(Float)
