"""Column types shared by every service."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
from sqlalchemy.types import TypeDecorator

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
"""The range of a database BIGINT: every id, and every integer a cursor or a route may carry."""

Id = BigInteger().with_variant(Integer(), "sqlite")
"""A surrogate key: BIGINT on PostgreSQL; exactly INTEGER on SQLite, the only type it
auto-increments."""


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC: the default of every timestamp column."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on PostgreSQL and on SQLite.

    SQLite has no time zones and hands back naive values; this type stores UTC and returns
    aware datetimes everywhere, so API output does not depend on the database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the driver gave back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
