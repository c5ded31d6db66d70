"""Recovery: finish what failed requests could not, so no stock stays reserved for nothing.

``flask --app orders orders recover`` finds the orders a failure left behind — ``abandoned``
ones at once, ``pending`` ones (a dead worker's) once older than ``PENDING_ORDER_TIMEOUT``,
older than any request could still be running — and undoes each with the steps of
:mod:`orders.undo`: abandon (so a request still running can no longer place it), release
at catalog, delete (its key with it, so the customer may retry with the same key). It
finishes cancels left ``cancelling`` for ``PENDING_ORDER_TIMEOUT`` too, releasing again and
marking them ``cancelled`` with their ``order.cancelled`` (:mod:`orders.cancelling`). Why
the saga needs this, and in this order, is explained once in ``docs/resilience.md``
("Compensation").

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

from sqlalchemy import and_, bindparam, or_, select, update

from flotilla import DownstreamError, current_settings, utc_now
from orders import idempotency, undo
from orders.cancelling import finish_cancel
from orders.config import OrdersSettings
from orders.database import reading, writing
from orders.metrics import order_instruments
from orders.models import Order
from orders.reconciliation import release_orphaned_reservations
from orders.states import OrderState

log = logging.getLogger(__name__)

BATCH_SIZE = 100
RELEASED, CANCELLED, FAILED, SKIPPED = "released", "cancelled", "failed", "skipped"
_TOUCH = (
    update(Order)
    .where(Order.id == bindparam("order_id"), Order.state == bindparam("touched_state"))
    .values(updated_at=bindparam("now"))
)


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
    settings = current_settings(OrdersSettings)
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
    with reading() as connection:
        return [(order_id, state) for order_id, state in connection.execute(query)]


def _release_unplaced(order_id: int) -> str:
    """Abandon, release and delete an order that was never placed; the outcome."""
    if not undo.claim(order_id).abandoned:
        return SKIPPED  # placed after all: its request finished in the meantime
    if not _release(order_id):
        _touch(order_id, OrderState.ABANDONED)
        return FAILED
    undo.delete_order(order_id, state=OrderState.ABANDONED)
    log.info("abandoned order released and deleted", extra={"order_id": order_id})
    return RELEASED


def _finish_cancel(order_id: int) -> str:
    """Release a cancelling order's stock again and mark it cancelled; the outcome."""
    if not _release(order_id):
        _touch(order_id, OrderState.CANCELLING)
        return FAILED
    if not finish_cancel(order_id):
        return SKIPPED  # a repeated cancel finished it in the meantime
    return CANCELLED


def _release(order_id: int) -> bool:
    """Release the order's stock at catalog; False (logged) when catalog failed."""
    released = undo.release(order_id, failure="release failed; retried on the next pass")
    order_instruments().recovery_releases.labels("released" if released else "failed").inc()
    return released


def _touch(order_id: int, state: OrderState) -> None:
    """Mark a failed attempt: the order goes to the back of the next passes' queue."""
    with writing(autocommit=True) as connection:
        connection.execute(_TOUCH, {"order_id": order_id, "touched_state": state, "now": utc_now()})


def _release_orphans(now: datetime) -> int:
    """Release stock held for orders that do not exist; 0 (logged) when catalog failed."""
    try:
        return release_orphaned_reservations(now)
    except DownstreamError as error:
        log.warning("reconciliation failed; retried on the next pass", extra={"error": str(error)})
        return 0


def _prune_keys(created_before: datetime) -> int:
    with writing(autocommit=True) as connection:
        return idempotency.prune_completed(connection, created_before=created_before)


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
            log.warning("recovery pass failed", extra={"error": repr(error)[:500]})
        stop.wait(interval)
    log.info("order recovery stopped")
