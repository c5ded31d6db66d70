"""How much of a database pool is in use: the saturation a dashboard shows before 503s.

Counted where it happens: SQLAlchemy's pool events ``checkout`` and ``checkin`` move a gauge
up and down in the process that owns the pool, and each process adds its pool's capacity
(size plus overflow) once, at its first checkout, so a pool built before a fork counts in
every worker that uses it and not in a parent that never does. Under multiprocess metrics
both gauges sum over the live processes (``livesum``): a worker that exits takes its share
with it. The cost is two memory-mapped writes per checkout, next to a database round trip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool, QueuePool

from flotilla.observability.metrics import created_once, instruments


@dataclass(frozen=True)
class PoolGauges:
    """The pool gauges of this process."""

    in_use: Gauge
    capacity: Gauge


@created_once
def pool_gauges() -> PoolGauges:
    """Create the pool gauges, once per process."""
    instruments()  # lets prometheus_client choose file-backed values first
    return PoolGauges(
        Gauge(
            "flotilla_db_pool_connections_in_use",
            "Database connections checked out of the pools of this service's processes.",
            multiprocess_mode="livesum",
        ),
        Gauge(
            "flotilla_db_pool_capacity",
            "Connections those pools may hold at once: pool size plus overflow.",
            multiprocess_mode="livesum",
        ),
    )


def pool_capacity(pool: Pool) -> int:
    """Connections ``pool`` may hand out at once (a pool without a limit counts its size)."""
    if isinstance(pool, QueuePool):
        overflow: int = pool._max_overflow
        return pool.size() + max(overflow, 0)
    return 1


def watch_pool(engine: Engine) -> None:
    """Count ``engine``'s checked-out connections and capacity in the pool gauges."""
    gauges = pool_gauges()
    capacity = pool_capacity(engine.pool)
    counted: set[int] = set()

    def checked_out(*_arguments: Any) -> None:
        process = os.getpid()
        if process not in counted:
            counted.add(process)
            gauges.capacity.inc(capacity)
        gauges.in_use.inc()

    def checked_in(*_arguments: Any) -> None:
        gauges.in_use.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
