"""Metrics of the outbox: how many events wait, how long the oldest has waited, what the
relay published.

They describe the database, not a process, so they are read from it when ``/metrics`` is
scraped, by whichever process answers. That keeps them right when the relay is down (the
case they exist to alert on) and across Gunicorn workers: the ``mostrecent`` mode makes the
merged multiprocess value the one the last scrape wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, Table, func, select

from flotilla.observability.metrics import created_once, instruments


@dataclass(frozen=True)
class PendingStats:
    """The backlog of the outbox at one moment."""

    count: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class _Gauges:
    pending: Gauge
    oldest_age: Gauge


@created_once
def _gauges() -> _Gauges:
    instruments()  # lets prometheus_client choose file-backed values first, see there
    return _Gauges(
        Gauge(
            "flotilla_outbox_pending_events",
            "Events written to the outbox and not yet published.",
            multiprocess_mode="mostrecent",
        ),
        Gauge(
            "flotilla_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished event; 0 when none is pending.",
            multiprocess_mode="mostrecent",
        ),
    )


def pending_stats(engine: Engine, table: Table, now: datetime | None = None) -> PendingStats:
    """Count the pending events and age the oldest (one indexed query)."""
    now = now or datetime.now(UTC)
    query = select(func.count(), func.min(table.c.created_at)).where(table.c.published_at.is_(None))
    with engine.connect() as connection:
        count, oldest = connection.execute(query).one()
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return PendingStats(int(count), age)


def refresh_gauges(engine: Engine, table: Table) -> PendingStats:
    """Set the gauges from the database; called just before a scrape."""
    stats = pending_stats(engine, table)
    gauges = _gauges()
    gauges.pending.set(stats.count)
    gauges.oldest_age.set(stats.oldest_age_seconds)
    return stats


@dataclass(frozen=True)
class RelayInstruments:
    """What a relay process counts, served on its own ``METRICS_BIND``."""

    published: Counter
    failures: Counter


@created_once
def relay_instruments() -> RelayInstruments:
    """Create the relay's counters, once per process."""
    instruments()
    return RelayInstruments(
        Counter(
            "flotilla_outbox_published_events",
            "Events the relay published (confirmed by the broker) and marked.",
        ),
        Counter(
            "flotilla_outbox_relay_failures",
            "Relay steps that failed (broker or database unreachable); retried with backoff.",
        ),
    )
