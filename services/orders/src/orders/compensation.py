"""Compensation: a failed placing undoes its own order, and never a placed one.

Where each failure of :func:`orders.placing.place_order` is handed here, and why the undo
goes as it does, is the saga's, explained once in ``docs/resilience.md`` ("Compensation").
The steps are :mod:`orders.undo`'s, shared with recovery; what is decided here is what a
failure of each step leaves: the order ``abandoned`` (its key free for the client's retry)
or ``pending`` (taken over by a retry once its deadline has passed), and always for
:mod:`orders.recovery` to finish.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from orders import undo
from orders.database import writing
from orders.metrics import order_instruments
from orders.schemas import StoredResponse
from orders.states import OrderState

log = logging.getLogger(__name__)

COMPENSATION_BUDGET = 0.5
"""Seconds a compensating release may take after the request's own deadline is spent.

A release answers in milliseconds (a reservation's p99 is about 0.2 s under load,
bench/RESULTS.md), so half a second lets a live catalog answer, retried if it resets a
connection, while a failed request still answers its caller within a second of its
deadline (the resilience e2e tests hold it to that). A catalog that cannot answer in that
time is left to :mod:`orders.recovery`.
"""


def compensate(order_id: int, *, maybe_reserved: bool) -> None:
    """Undo a placing that failed before its confirming commit (step 2 or 3).

    The order is still ``pending`` then. If catalog may hold stock for it, the stock is
    released first; if the release fails, the order is left ``abandoned``, its key free,
    and recovery releases and deletes it on its next pass.
    """
    compensations = order_instruments().compensations
    if maybe_reserved and not _release(order_id):
        compensations.labels("left_for_recovery").inc()
        _abandon_for_recovery(order_id)
        return
    compensations.labels("released" if maybe_reserved else "discarded").inc()
    _discard(order_id, state=OrderState.PENDING)


def settle_failed_confirmation(order_id: int) -> StoredResponse | None:
    """After the confirming commit raised: the placed order's answer, or ``None`` once undone.

    ``None`` means the caller's error stands: the order was not placed and is released (or
    left ``abandoned`` for recovery's next pass), or its fate is unknown and nothing was
    undone.
    """
    compensations = order_instruments().compensations
    try:
        claim = undo.claim(order_id)
    except SQLAlchemyError as error:
        compensations.labels("left_for_recovery").inc()
        log.warning(
            "order state unknown after a failed commit; left for recovery",
            extra={"order_id": order_id, "error": repr(error)[:500]},
        )
        return None
    if claim.placed:
        compensations.labels("placed").inc()
        log.warning("order placed although its commit raised", extra={"order_id": order_id})
        return claim.answer
    if not _release(order_id):
        compensations.labels("left_for_recovery").inc()
        return None
    compensations.labels("released").inc()
    _discard(order_id, state=OrderState.ABANDONED)
    return None


def _abandon_for_recovery(order_id: int) -> None:
    """Leave a pending order whose release failed to recovery, its key free for a retry.

    A database failure here leaves it ``pending`` with its key: a retry takes it over once
    its request's deadline has passed (:func:`orders.idempotency.replay`), recovery once
    ``PENDING_ORDER_TIMEOUT`` has.
    """
    try:
        with writing(autocommit=True) as connection:
            undo.abandon(connection, order_id)
    except SQLAlchemyError as error:
        log.warning(
            "failed order not abandoned; its key stays taken until its deadline",
            extra={"order_id": order_id, "error": repr(error)[:500]},
        )


def _release(order_id: int) -> bool:
    """Release the order's stock within :data:`COMPENSATION_BUDGET`; False (logged) on failure."""
    return undo.release(
        order_id, within=COMPENSATION_BUDGET, failure="release failed; order left for recovery"
    )


def _discard(order_id: int, *, state: OrderState) -> None:
    """Delete the order, key and all, if it is still in ``state``.

    The client may then retry with the same key. A database failure here leaves the order
    for recovery, and the request's own error is the one the client sees.
    """
    try:
        undo.delete_order(order_id, state=state)
    except SQLAlchemyError as error:
        log.warning(
            "failed order not deleted; left for recovery",
            extra={"order_id": order_id, "error": repr(error)[:500]},
        )
