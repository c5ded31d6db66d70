"""Recovery: finish what failed requests could not, so no stock stays reserved for nothing.

A request that fails after catalog may have reserved stock releases the reservation itself;
when that release fails too (catalog down, the grace gone), the order is left ``abandoned``
and invisible, its key already free for the client's retry. A worker that died mid-request
leaves its order ``pending``. ``flask --app orders orders recover`` finds abandoned orders
at once and pending ones once they are older than ``PENDING_ORDER_TIMEOUT`` — older than any
request could still be running — and for each:

1. moves it ``pending`` → ``abandoned`` with a compare-and-set, committed, so a request
   that is somehow still running can no longer place it (placing requires ``pending``);
2. releases its reservation at catalog (idempotent; a release of nothing is a no-op);
3. deletes it, its idempotency key with it, so the customer may retry with the same key.

It also finishes cancels: an order left ``cancelling`` for ``PENDING_ORDER_TIMEOUT`` (its
release failed or its answer was lost, and nobody repeated the cancel) is released again
and marked ``cancelled`` with its ``order.cancelled`` event (:mod:`orders.cancelling`),
which carries the reason recorded when the cancel began.

A failed release leaves the order as it was and the next pass tries again: abandoned orders
are picked up whatever their age, a cancelling one once ``PENDING_ORDER_TIMEOUT`` has passed
again. Each pass takes the orders least recently tried first, and a failed attempt touches
``updated_at``, so orders whose release keeps failing go to the back of the queue and never
keep the others from being reached. Each pass also forgets the idempotency keys of placed
orders older than ``IDEMPOTENCY_KEY_RETENTION``, and releases the stock catalog holds for
orders that do not exist here (:mod:`orders.reconciliation`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, or_, select, update

from flotilla.columns import utc_now
from flotilla.http import DownstreamError
from orders import idempotency
from orders.cancelling import finish_cancel
from orders.clients import catalog_client
from orders.config import OrdersSettings
from orders.metrics import order_instruments
from orders.models import Order, db
from orders.reconciliation import release_orphaned_reservations
from orders.states import OrderState

log = logging.getLogger(__name__)

BATCH_SIZE = 100
RELEASED, CANCELLED, FAILED, SKIPPED = "released", "cancelled", "failed", "skipped"


@dataclass(frozen=True)
class RecoveryReport:
    """What one pass did."""

    released: int = 0
    cancelled: int = 0
    failed: int = 0
    pruned_keys: int = 0
    orphans_released: int = 0


def recover(*, now: datetime | None = None) -> RecoveryReport:
    """One pass over stuck orders and old keys, in the current app context."""
    settings: OrdersSettings = current_app.extensions["flotilla.settings"]
    now = now or utc_now()
    cutoff = now - timedelta(seconds=settings.PENDING_ORDER_TIMEOUT)
    outcomes: Counter[str] = Counter()
    for order_id, state in _stuck_orders(cutoff):
        if state == OrderState.CANCELLING:
            outcomes[_finish_cancel(order_id)] += 1
        else:
            outcomes[_release_unplaced(order_id)] += 1
    pruned = _prune_keys(now - timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION))
    report = RecoveryReport(
        outcomes[RELEASED],
        outcomes[CANCELLED],
        outcomes[FAILED],
        pruned_keys=pruned,
        orphans_released=_release_orphans(now),
    )
    if report != RecoveryReport():
        log.info("recovery pass", extra=asdict(report))
    return report


def _stuck_orders(cutoff: datetime) -> list[tuple[int, str]]:
    """Orders to finish, least recently tried first, with their state.

    Pending orders created before ``cutoff``, abandoned ones of any age, and orders
    cancelling since before ``cutoff``.
    """
    query = (
        select(Order.id, Order.state)
        .where(
            or_(
                and_(Order.state == OrderState.PENDING, Order.created_at < cutoff),
                Order.state == OrderState.ABANDONED,
                and_(Order.state == OrderState.CANCELLING, Order.updated_at < cutoff),
            )
        )
        .order_by(Order.updated_at, Order.id)
        .limit(BATCH_SIZE)
    )
    with db.reading() as session:
        return [(order_id, state) for order_id, state in session.execute(query)]


def _release_unplaced(order_id: int) -> str:
    """Abandon, release and delete an order that was never placed; the outcome."""
    if not _abandon(order_id):
        return SKIPPED  # placed after all: its request finished in the meantime
    if not _release(order_id):
        _touch(order_id, OrderState.ABANDONED)
        return FAILED
    _delete(order_id)
    return RELEASED


def _finish_cancel(order_id: int) -> str:
    """Release a cancelling order's stock again and mark it cancelled; the outcome."""
    if not _release(order_id):
        _touch(order_id, OrderState.CANCELLING)
        return FAILED
    if not finish_cancel(order_id):
        return SKIPPED  # a repeated cancel finished it in the meantime
    return CANCELLED


def _abandon(order_id: int) -> bool:
    """Make the order ``abandoned`` unless it was placed; True when it is abandoned now."""
    with db.engine.begin() as connection:
        idempotency.abandon(connection, order_id)
        state = connection.scalar(select(Order.state).where(Order.id == order_id))
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


def _touch(order_id: int, state: OrderState) -> None:
    """Mark a failed attempt: the order goes to the back of the next passes' queue."""
    session = db.session()
    session.execute(
        update(Order)
        .where(Order.id == order_id, Order.state == state)
        .values(updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _delete(order_id: int) -> None:
    """Delete the abandoned order and its key: the customer may retry with the key."""
    session = db.session()
    session.execute(delete(Order).where(Order.id == order_id, Order.state == OrderState.ABANDONED))
    session.commit()
    log.info("abandoned order released and deleted", extra={"order_id": order_id})


def _release_orphans(now: datetime) -> int:
    """Release stock held for orders that do not exist; 0 (logged) when catalog failed."""
    try:
        return release_orphaned_reservations(now)
    except DownstreamError as error:
        log.warning("reconciliation failed; retried on the next pass", extra={"error": str(error)})
        return 0


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
