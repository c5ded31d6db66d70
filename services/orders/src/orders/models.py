"""Database tables of the orders service."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flotilla import NAMING_CONVENTION, Database, Id, Outbox, UtcDateTime, utc_now

Money = BigInteger  # integer minor units of the order's currency (docs/events.md)


class Base(DeclarativeBase):
    """Base of the orders service's tables; its own metadata, its own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

db = Database(Base.metadata, migrations=MIGRATIONS)
outbox = Outbox(Base.metadata)  # order.placed, order.cancelled (docs/events.md)


class Order(Base):
    """One customer's order, in one of the states of :mod:`orders.states`.

    The id exists before catalog is asked to reserve stock for it (the reservation is
    idempotent by order id), and catalog keeps a tombstone per released id, so an id must
    never be handed out twice: on SQLite ``AUTOINCREMENT`` forbids reusing the id of a
    deleted row, as PostgreSQL's sequence does anyway.

    ``currency`` and ``total`` are null while the order is pending: only catalog's answer
    sets them. ``customer_email`` and ``customer_display_name`` are the customer's contact
    when the order was placed, which ``order.cancelled`` carries; whoever cancels (the
    customer or an administrator), the notice goes to the customer.

    Each state but ``abandoned`` has the time it was entered in a column of its own, written
    by the statement that enters it (:mod:`orders.lifecycle`): ``created_at`` (``pending``),
    ``placed_at``, ``cancel_requested_at`` (``cancelling``; null on orders whose cancel began
    before migration 0006) and ``cancelled_at``. The machine is linear, so they are the
    order's whole history, with no table of changes and no extra write per order.

    The order is also the record of the request that created it (:mod:`orders.idempotency`):
    the customer's ``Idempotency-Key``, unique per customer, and ``request_hash``, the SHA-256
    of the request's canonical body (the same key with another body is refused). While the
    order is pending, ``response_status`` is null: the request is still running, or its order
    awaits recovery. Once placed, ``response_status`` and ``response_body`` are the answer
    every repetition of the request gets back, whatever happens to the order later. After
    ``IDEMPOTENCY_KEY_RETENTION`` the four are cleared and the key may be used again.
    """

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_id_id", "user_id", "id"),  # a customer's list, newest first
        Index("ix_orders_state_created_at", "state", "created_at"),  # recovery's scan
        # One order per customer and key; cleared keys (NULL) never collide.
        Index("uq_orders_user_id_idempotency_key", "user_id", "idempotency_key", unique=True),
        # Pruning looks only at orders still holding a key.
        Index(
            "ix_orders_created_at_with_key",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Id)
    state: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[int | None] = mapped_column(Money)
    customer_email: Mapped[str | None] = mapped_column(String(254))
    customer_display_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    placed_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    lines: Mapped[list[OrderLine]] = relationship(
        lazy="selectin", order_by="OrderLine.product_id", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    """One product of an order, as catalog priced it when the order was placed."""

    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(
        Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(Id, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(Money)
    line_total: Mapped[int] = mapped_column(Money)
