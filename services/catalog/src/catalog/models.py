"""Database tables of the catalog service: products, and the stock reserved for orders."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flotilla import NAMING_CONVENTION, Database, Id, UtcDateTime, utc_now

RESERVED, RELEASED = "reserved", "released"


class Base(DeclarativeBase):
    """Base of the catalog service's tables; its own metadata, its own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

db = Database(Base.metadata, migrations=MIGRATIONS)


class Product(Base):
    """Something the shop sells, its price in minor units of ``currency`` and its stock.

    ``sku`` is stored upper-case, so it is unique whatever case it was given in. Products are
    never deleted, only deactivated: reservations and orders keep referring to them.
    ``stock >= 0`` is a database constraint, the last line against overselling.
    """

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class Reservation(Base):
    """Stock held for one order, keyed by the order's id so that retries are idempotent.

    ``reserved`` holds the lines' stock; ``released`` has given it back. A release of an
    unknown order leaves a ``released`` row with no lines (a tombstone), so a reservation
    for that order arriving late is refused instead of holding stock nobody will release.
    """

    __tablename__ = "reservations"
    __table_args__ = (CheckConstraint(f"state IN ('{RESERVED}', '{RELEASED}')", name="state"),)

    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    reserved_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    lines: Mapped[list[ReservationLine]] = relationship(
        order_by="ReservationLine.product_id", lazy="selectin"
    )

    @property
    def total(self) -> int:
        """What the lines cost together, in minor units of ``currency``."""
        return sum(line.line_total for line in self.lines)


class ReservationLine(Base):
    """A quantity of one product held for an order, with its price, name and SKU at the time."""

    __tablename__ = "reservation_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("reservations.order_id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(Id, ForeignKey("products.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)

    @property
    def line_total(self) -> int:
        """``quantity`` times ``unit_price``."""
        return self.quantity * self.unit_price
