"""Undoing a failed placing: release what catalog may hold, then forget the order.

Two rules keep compensation from doing harm:

* **Never undo a placed order.** A failure of the confirming commit (step 4 of
  :func:`orders.placing.place_order`) does not prove the commit failed: the COMMIT can reach
  PostgreSQL and the connection drop before its answer. Releasing then would put a placed
  order's stock back on sale, and deleting its key would let a retry place a second order.
  So after such a failure the order is first *claimed*, ``pending`` → ``abandoned``, by a
  compare-and-set in a fresh transaction; that UPDATE waits for a commit of the same row
  still in flight, and it succeeds only if the order was not placed. A placed order's
  stored answer is returned instead; when even the claim fails, nothing is undone and
  :mod:`orders.recovery`, which only ever releases orders that are not placed, decides later.
  The delete is conditional too: the order (and with it its key) only in the state this
  request left it in.
* **Never keep a key busy for a request that has given up.** An abandoned order holds no
  ``Idempotency-Key``: :func:`orders.idempotency.abandon` takes the key off the order in
  the same compare-and-set. So when a release fails and the order is left for recovery, the
  client's retry with the same key is a new attempt at once, not a minute of 409s while
  recovery waits; the abandoned order keeps its id, which is all catalog's reservation
  refers to.
* **Release whenever in doubt.** A release is idempotent and leaves a tombstone at catalog,
  so releasing an order that reserved nothing costs one call, while not releasing one that
  did leaks stock. The release gets :data:`COMPENSATION_BUDGET` of its own, because the
  request's deadline may be spent by the failure being compensated.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from flotilla.http import DownstreamError, grace
from orders import idempotency
from orders.clients import catalog_client
from orders.idempotency import StoredResponse
from orders.metrics import order_instruments
from orders.models import Order, db
from orders.states import VISIBLE_STATES, OrderState

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
    released first; if the release fails, the order stays pending (its key in use), and
    recovery releases and deletes it once it is older than ``PENDING_ORDER_TIMEOUT``.
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
        claim = _claim(order_id)
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


@dataclass(frozen=True)
class _Claim:
    """What claiming an order for compensation found."""

    placed: bool
    answer: StoredResponse | None = None


def _claim(order_id: int) -> _Claim:
    """Move the order ``pending`` → ``abandoned`` unless it was placed; what it is now.

    The UPDATE waits on the row lock of a confirming commit still in flight, at most the
    database's statement timeout; a timeout raises, and the order is then left alone.
    """
    with db.engine.begin() as connection:
        idempotency.abandon(connection, order_id)
        stored = connection.execute(
            select(Order.state, Order.response_status, Order.response_body).where(
                Order.id == order_id
            )
        ).one_or_none()
    if stored is None or stored.state not in VISIBLE_STATES:
        return _Claim(placed=False)  # abandoned, by us or by recovery, or deleted
    if stored.response_status is None:  # its key pruned since: placed, answer forgotten
        return _Claim(placed=True)
    return _Claim(True, StoredResponse(stored.response_status, dict(stored.response_body or {})))


def _abandon_for_recovery(order_id: int) -> None:
    """Leave a pending order whose release failed to recovery, its key free for a retry.

    A database failure here leaves it ``pending`` with its key: a retry takes it over once
    its request's deadline has passed (:func:`orders.idempotency.replay`), recovery once
    ``PENDING_ORDER_TIMEOUT`` has.
    """
    try:
        with db.engine.begin() as connection:
            idempotency.abandon(connection, order_id)
    except SQLAlchemyError as error:
        log.warning(
            "failed order not abandoned; its key stays taken until its deadline",
            extra={"order_id": order_id, "error": repr(error)[:500]},
        )


def _release(order_id: int) -> bool:
    """Release the order's stock at catalog, within the grace; False (logged) on failure."""
    try:
        with grace(COMPENSATION_BUDGET):
            catalog_client().release(order_id)
    except DownstreamError as error:
        log.warning(
            "release failed; order left for recovery",
            extra={"order_id": order_id, "error": str(error)},
        )
        return False
    return True


def _discard(order_id: int, *, state: OrderState) -> None:
    """Delete the order, key and all, if it is still in ``state``.

    The client may then retry with the same key. A database failure here leaves the order
    for recovery, and the request's own error is the one the client sees.
    """
    session = db.session()
    try:
        session.execute(delete(Order).where(Order.id == order_id, Order.state == state))
        session.commit()
    except SQLAlchemyError as error:
        with contextlib.suppress(SQLAlchemyError):
            session.rollback()
        log.warning(
            "failed order not deleted; left for recovery",
            extra={"order_id": order_id, "error": repr(error)[:500]},
        )
