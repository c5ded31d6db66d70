"""The outbox and processed-events tables, added to each service's own metadata.

The tables belong to the service's schema, so its Alembic migrations create them like any
other table (``flask db revision`` picks them up from the metadata).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
)

from flotilla.data.columns import UtcDateTime

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")


def outbox_table(metadata: MetaData, name: str = "outbox_events") -> Table:
    """Events waiting to be published (``published_at`` null) or kept until pruned.

    ``position`` is the creation order the relay publishes in; ``event_id`` is the identity
    consumers deduplicate on; ``headers`` carry the request id and trace of the request that
    wrote the event, so the consumer's logs name it.
    """
    return Table(
        name,
        metadata,
        Column("position", _SEQUENCE, primary_key=True, autoincrement=True),
        Column("event_id", Uuid(), nullable=False, unique=True),
        Column("type", String(200), nullable=False),
        Column("version", Integer, nullable=False),
        Column("payload", JSON(), nullable=False),
        Column("headers", JSON(), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime(), nullable=True),
        Index(f"ix_{name}_published_at_position", "published_at", "position"),
    )


def processed_events_table(metadata: MetaData, name: str = "processed_events") -> Table:
    """Event ids each consumer has applied; the primary key makes a second apply impossible."""
    return Table(
        name,
        metadata,
        Column("consumer", String(200), nullable=False),
        Column("event_id", Uuid(), nullable=False),
        Column("processed_at", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
