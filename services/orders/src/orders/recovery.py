"""Recovery: finish what failed requests could not, so no stock stays reserved for nothing.

A request that fails after catalog may have reserved stock releases the reservation itself;
when that release fails too (catalog down, the deadline gone), the order is left
``pending`` and invisible, its key ``in_progress``. ``flask --app orders orders recover``
finds such orders once they are older than ``PENDING_ORDER_TIMEOUT`` — older than any
request could still be running — and for each:

1. moves it ``pending`` → ``abandoned`` with a compare-and-set, committed, so a request
   that is somehow still running can no longer place it (placing requires ``pending``);
2. releases its reservation at catalog (idempotent; a release of nothing is a no-op);
3. deletes it and its idempotency key, so the customer may retry with the same key.

A failed release leaves the order ``abandoned`` and the next pass tries again: every pass
also picks up abandoned orders of any age. Each pass also deletes completed idempotency
keys older than ``IDEMPOTENCY_KEY_RETENTION``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, or_, select, update

from flotilla.columns import utc_now
from flotilla.http import DownstreamError
from orders import idempotency
from orders.clients import catalog_client
from orders.config import OrdersSettings
from orders.metrics import order_instruments
from orders.models import IdempotencyKey, Order, db
from orders.states import OrderEvent, OrderState, next_state

log = logging.getLogger(__name__)

BATCH_SIZE = 100


@dataclass(frozen=True)
class RecoveryReport:
    """What one pass did."""

    released: int = 0
    failed: int = 0
    pruned_keys: int = 0


def recover(*, now: datetime | None = None) -> RecoveryReport:
    """One pass over stuck orders and old keys, in the current app context."""
    settings: OrdersSettings = current_app.extensions["flotilla.settings"]
    now = now or utc_now()
    cutoff = now - timedelta(seconds=settings.PENDING_ORDER_TIMEOUT)
    released = failed = 0
    for order_id in _stuck_orders(cutoff):
        if not _abandon(order_id):
            continue  # placed after all: its request finished in the meantime
        if _release(order_id):
            _delete(order_id)
            released += 1
        else:
            failed += 1
    pruned = _prune_keys(now - timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION))
    report = RecoveryReport(released, failed, pruned)
    if released or failed or pruned:
        log.info("recovery pass", extra={"released": released, "failed": failed, "pruned": pruned})
    return report


def _stuck_orders(cutoff: datetime) -> list[int]:
    """Pending orders created before ``cutoff``, and abandoned ones of any age."""
    query = (
        select(Order.id)
        .where(
            or_(
                and_(Order.state == OrderState.PENDING, Order.created_at < cutoff),
                Order.state == OrderState.ABANDONED,
            )
        )
        .order_by(Order.id)
        .limit(BATCH_SIZE)
    )
    with db.reading() as session:
        return list(session.scalars(query))


def _abandon(order_id: int) -> bool:
    """Make the order ``abandoned`` unless it was placed; True when it is abandoned now."""
    session = db.session()
    session.execute(
        update(Order)
        .where(Order.id == order_id, Order.state == OrderState.PENDING)
        .values(state=next_state(OrderState.PENDING, OrderEvent.ABANDON), updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    state = session.scalar(select(Order.state).where(Order.id == order_id))
    session.commit()
    return state == OrderState.ABANDONED


def _release(order_id: int) -> bool:
    """Release the order's stock at catalog; False (logged) when catalog failed."""
    releases = order_instruments().recovery_releases
    try:
        catalog_client().release(order_id)
    except DownstreamError as error:
        releases.labels("failed").inc()
        log.warning(
            "release failed; retried on the next pass",
            extra={"order_id": order_id, "error": str(error)},
        )
        return False
    releases.labels("released").inc()
    return True


def _delete(order_id: int) -> None:
    """Delete the abandoned order and its key: the customer may retry with the key."""
    session = db.session()
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.order_id == order_id))
    session.execute(delete(Order).where(Order.id == order_id, Order.state == OrderState.ABANDONED))
    session.commit()
    log.info("abandoned order released and deleted", extra={"order_id": order_id})


def _prune_keys(created_before: datetime) -> int:
    session = db.session()
    pruned = idempotency.prune_completed(session, created_before=created_before)
    session.commit()
    return pruned


def run_recovery(*, interval: float, stop: threading.Event | None = None) -> None:
    """Recovery passes every ``interval`` seconds until ``stop`` is set; failures are logged.

    A pass that fails (database or catalog unreachable) changes nothing it has not
    finished; the next pass starts over.
    """
    stop = stop or threading.Event()
    log.info("order recovery started", extra={"interval": interval})
    while not stop.is_set():
        try:
            recover()
        except Exception as error:
            db.session.rollback()
            log.warning("recovery pass failed", extra={"error": repr(error)[:500]})
        stop.wait(interval)
    log.info("order recovery stopped")
