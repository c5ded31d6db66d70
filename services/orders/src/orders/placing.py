"""Placing an order: a saga over three services, kept consistent by order and compensation.

No transaction spans the order (here), the stock (catalog) and the customer (users). What
keeps them consistent is the order of the steps and what each failure undoes; see
:func:`place_order`. :mod:`orders.recovery` finishes what a failed request could not.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from flotilla.auth import current_principal
from flotilla.columns import utc_now
from flotilla.http import DownstreamError
from orders import compensation, idempotency
from orders.clients import Customer, Reservation, catalog_client, users_client
from orders.idempotency import StoredResponse
from orders.models import Order, OrderLine, db, outbox
from orders.schemas import OrderPublic
from orders.states import OrderEvent, OrderState, next_state

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

    When step 2 fails, or step 3 fails in a way that guarantees the request never reached
    catalog (the breaker refused it, no connection opened), the pending order and the key
    are deleted and the client may retry with the same key. Any other failure of step 3 —
    a timeout, a 5xx, an answer this service does not expect, and even one of catalog's
    refusals, since an earlier attempt of the retried call may have reserved — releases
    the reservation first. When step 4 fails, the order may have been placed all the same
    (the commit can succeed and its answer be lost): it is released only once a
    compare-and-set has proved it was not placed, and otherwise the placed order's answer
    is returned. If a release fails, the order is left invisible, with its key
    ``in_progress``, and :mod:`orders.recovery` releases and deletes it later
    (:mod:`orders.compensation`). So a placed order always has its reservation, and once
    recovery has run, every reservation has a placed order.
    """
    key = idempotency.checked_key(idempotency_key)
    user_id = int(current_principal().user_id)
    hash_ = idempotency.request_hash({"lines": _canonical_lines(lines)})
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
        compensation.compensate(order_id, user_id, key, maybe_reserved=False)
        raise
    reservation = _reserve(order_id, user_id, key, lines)
    try:
        return _complete_order(order_id, user_id, key, customer, reservation)
    except Exception:
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()
        answer = compensation.settle_failed_confirmation(order_id, user_id, key)
        if answer is None:
            raise
        return answer


def _canonical_lines(lines: Sequence[dict[str, int]]) -> list[dict[str, int]]:
    """The lines in product order: a retry that lists them otherwise is the same request.

    Each product appears once per order (the schema refuses repeats), so the order of the
    lines carries no meaning.
    """
    return sorted((dict(line) for line in lines), key=lambda line: line["product_id"])


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
        compensation.compensate(order_id, user_id, key, maybe_reserved=_maybe_reserved(error))
        raise


def _maybe_reserved(error: Exception) -> bool:
    """Whether catalog may hold stock for the order after ``error``; True when in doubt.

    Only a call that certainly never reached catalog (``maybe_processed`` false) reserved
    nothing. A refusal (insufficient stock, say) says only that its own attempt reserved
    nothing: an earlier attempt of the same retried call, timed out or held up in a frozen
    catalog's socket buffer, may have reserved, and a release is cheap and idempotent.
    """
    return not (isinstance(error, DownstreamError) and not error.maybe_processed)


def _complete_order(
    order_id: int, user_id: int, key: str, customer: Customer, reservation: Reservation
) -> StoredResponse:
    """Step 4: lines, total, state ``placed``, ``order.placed`` and the stored answer, at once."""
    session = db.session()
    now = utc_now()
    # One statement changes the state and returns the order, so no read follows the write.
    order = session.scalars(
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
        .returning(Order)
        .options(lazyload(Order.lines))
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if order is None:
        raise OrderNoLongerPending(f"order {order_id} is no longer pending")
    lines = sorted(
        (OrderLine(order_id=order_id, **line.model_dump()) for line in reservation.lines),
        key=lambda line: line.product_id,
    )
    session.add_all(lines)
    set_committed_value(order, "lines", lines)  # the lines just added: no SELECT for them
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
