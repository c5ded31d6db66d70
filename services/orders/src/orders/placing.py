"""Placing an order: a saga over three services, kept consistent by order and compensation.

No transaction spans the order (here), the stock (catalog) and the customer (users). What
keeps them consistent is the order of the steps and what each failure undoes; see
:func:`place_order`. :mod:`orders.recovery` finishes what a failed request could not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from flotilla import Problem
from flotilla.auth import current_principal
from flotilla.columns import utc_now
from flotilla.http import DownstreamError
from orders import idempotency
from orders.clients import Customer, Reservation, catalog_client, users_client
from orders.idempotency import StoredResponse
from orders.metrics import order_instruments
from orders.models import IdempotencyKey, Order, OrderLine, db, outbox
from orders.schemas import OrderPublic
from orders.states import VISIBLE_STATES, OrderEvent, OrderState, next_state

log = logging.getLogger(__name__)


class OrderNoLongerPending(RuntimeError):
    """Recovery abandoned the order while its request was still placing it."""


def place_order(
    *, lines: Sequence[dict[str, int]], idempotency_key: str | None, authorization: str
) -> StoredResponse:
    """Place an order for the caller, once per ``Idempotency-Key``; the 201 answer or its replay.

    1. One transaction writes the key (``in_progress``) and the order (``pending``): the
       order id exists before catalog hears of it, so the reservation, which catalog keys by
       order id, is safe to retry, and a concurrent request with the same key fails on the
       key's primary key instead of making a second order.
    2. users gives the customer's e-mail and name for ``order.placed`` (and refuses a token
       it no longer honours). Nothing has been reserved yet, so a failure only discards.
    3. catalog reserves the stock and answers the prices, names and currency: the client
       never says what anything costs.
    4. One transaction writes the lines, the total, state ``placed``, the ``order.placed``
       event and the key's stored answer: a placed order is never half-written.

    When step 2 or 3 fails in a way that guarantees catalog reserved nothing (a refusal, or
    a call that never left), the pending order and the key are deleted and the client may
    retry with the same key. When the outcome at catalog is unknown (a timeout, a 5xx) or
    step 4 failed after a reservation, the reservation is released first; if even that
    fails, the order stays ``pending`` (invisible) with its key ``in_progress`` and
    :mod:`orders.recovery` releases and deletes it later. So a placed order always has its
    reservation, and once recovery has run, every reservation has a placed order.
    """
    key = idempotency.checked_key(idempotency_key)
    user_id = int(current_principal().user_id)
    hash_ = idempotency.request_hash({"lines": [dict(line) for line in lines]})
    replay = _replay(user_id, key, hash_)
    if replay is not None:
        return replay
    try:
        order_id = _create_pending_order(user_id, key, hash_)
    except IntegrityError:  # a request with the same key inserted it after our check
        db.session.rollback()
        return _replay_after_conflict(user_id, key, hash_)
    try:
        customer = users_client().current_customer(authorization)
    except Exception:
        _compensate(order_id, user_id, key, maybe_reserved=False)
        raise
    reservation = _reserve(order_id, user_id, key, lines)
    try:
        return _complete_order(order_id, user_id, key, customer, reservation)
    except Exception:
        db.session.rollback()
        _compensate(order_id, user_id, key, maybe_reserved=True)
        raise


def _replay(user_id: int, key: str, hash_: str) -> StoredResponse | None:
    with db.reading() as session:
        return idempotency.find_replay(session, user_id=user_id, key=key, hash_=hash_)


def _replay_after_conflict(user_id: int, key: str, hash_: str) -> StoredResponse:
    """The answer for a key another request wrote first: its replay, or 409 while it runs."""
    replay = _replay(user_id, key, hash_)
    if replay is None:  # that request failed and deleted the key since: the client retries
        raise idempotency.RequestInProgress(
            "A request with this Idempotency-Key was being processed; retry.",
            headers={"Retry-After": str(idempotency.RETRY_IN_PROGRESS_AFTER)},
        )
    return replay


def _create_pending_order(user_id: int, key: str, hash_: str) -> int:
    """Step 1: the pending order and its key, committed together; the new order's id."""
    session = db.session()
    order = Order(user_id=user_id, state=OrderState.PENDING)
    session.add(order)
    session.flush()  # the id the key and catalog's reservation refer to
    session.add(idempotency.new_key(user_id=user_id, key=key, hash_=hash_, order_id=order.id))
    session.commit()
    return order.id


def _reserve(order_id: int, user_id: int, key: str, lines: Sequence[dict[str, int]]) -> Reservation:
    """Step 3: catalog's reservation; on failure, undo what may have happened, then raise."""
    try:
        return catalog_client().reserve(order_id, lines)
    except Exception as error:
        _compensate(order_id, user_id, key, maybe_reserved=_maybe_reserved(error))
        raise


def _maybe_reserved(error: Exception) -> bool:
    """Whether catalog may hold stock for the order after ``error``."""
    if isinstance(error, DownstreamError):
        return error.maybe_processed
    # Any other problem is catalog's 4xx refusal, mapped: nothing was reserved. Anything
    # else is a surprise, so the outcome is unknown.
    return not isinstance(error, Problem)


def _complete_order(
    order_id: int, user_id: int, key: str, customer: Customer, reservation: Reservation
) -> StoredResponse:
    """Step 4: lines, total, state ``placed``, ``order.placed`` and the stored answer, at once."""
    session = db.session()
    now = utc_now()
    placed = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.state == OrderState.PENDING)
        .values(
            state=next_state(OrderState.PENDING, OrderEvent.PLACE),
            currency=reservation.currency,
            total=reservation.total,
            customer_email=customer.email,
            customer_display_name=customer.display_name,
            placed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if placed.rowcount != 1:  # type: ignore[attr-defined]
        raise OrderNoLongerPending(f"order {order_id} is no longer pending")
    session.add_all(OrderLine(order_id=order_id, **line.model_dump()) for line in reservation.lines)
    session.flush()
    order = session.get_one(Order, order_id, populate_existing=True)
    answer = StoredResponse(201, OrderPublic().dump(order))
    outbox.add_event(session, "order.placed", _placed_payload(order, customer), version=1)
    idempotency.complete(session, user_id=user_id, key=key, answer=answer)
    session.commit()
    log.info("order placed", extra={"order_id": order_id, "total": order.total})
    return answer


def _placed_payload(order: Order, customer: Customer) -> dict[str, Any]:
    """``order.placed`` v1 (docs/events.md)."""
    assert order.placed_at is not None
    return {
        "order_id": order.id,
        "user_id": order.user_id,
        "email": customer.email,
        "display_name": customer.display_name,
        "placed_at": order.placed_at.isoformat(),
        "currency": order.currency,
        "lines": [
            {
                "product_id": line.product_id,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "line_total": line.line_total,
            }
            for line in order.lines
        ],
        "total": order.total,
    }


def _compensate(order_id: int, user_id: int, key: str, *, maybe_reserved: bool) -> None:
    """Undo a failed placing: release what catalog may hold, then forget the order.

    If the release fails, the order stays pending and its key in progress: recovery
    releases and deletes it once it is older than ``PENDING_ORDER_TIMEOUT``.
    """
    compensations = order_instruments().compensations
    if maybe_reserved:
        try:
            catalog_client().release(order_id)
        except DownstreamError as error:
            compensations.labels("left_pending").inc()
            log.warning(
                "release failed; order left pending for recovery",
                extra={"order_id": order_id, "error": str(error)},
            )
            return
    compensations.labels("released" if maybe_reserved else "discarded").inc()
    _discard(order_id, user_id, key)


def _discard(order_id: int, user_id: int, key: str) -> None:
    """Delete the pending order and its key: the client may retry with the same key.

    A database failure here leaves both for recovery, and the request's own error is the
    one the client sees.
    """
    session = db.session()
    try:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
            )
        )
        session.execute(
            delete(Order).where(Order.id == order_id, Order.state.not_in(VISIBLE_STATES))
        )
        session.commit()
    except SQLAlchemyError as error:
        session.rollback()
        log.warning(
            "pending order not deleted; left for recovery",
            extra={"order_id": order_id, "error": repr(error)[:500]},
        )
