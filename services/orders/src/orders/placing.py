"""Placing an order: a saga over three services, and the whole of its flow.

No transaction spans the order (here), the stock (catalog) and the customer (users): the
order of the steps in :func:`place_order`, and what each failure undoes, keep them
consistent. That saga is explained once, in ``docs/resilience.md`` ("Compensation"); the
failures are handed to :mod:`orders.compensation`, and :mod:`orders.recovery` finishes
what a failed request could not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from flotilla import DownstreamError, current_settings, utc_now
from orders import compensation, idempotency
from orders.clients import Caller, Customer, Reservation, catalog_client, customer_of
from orders.config import OrdersSettings
from orders.database import writing
from orders.models import Order
from orders.placed import write_placed
from orders.schemas import LineView, OrderPublic, OrderView, StoredResponse
from orders.service import history_of
from orders.states import InvalidTransition, OrderState

log = logging.getLogger(__name__)

_INSERT_PENDING = insert(Order).returning(Order.id)
_PUBLIC = OrderPublic()
"""Statements built once: executing a prepared statement object skips building it anew and
SQLAlchemy's cache-key walk, which the ORM's unit of work would add on every order."""


class OrderNoLongerPending(RuntimeError):
    """Recovery abandoned the order while its request was still placing it."""


def place_order(
    *, caller: Caller, lines: Sequence[dict[str, int]], idempotency_key: str | None
) -> StoredResponse:
    """Place an order for the caller, once per ``Idempotency-Key``; the 201 answer or its replay.

    1. One INSERT writes the order ``pending``, with its key and the request's hash (a key
       already taken gets the first request's answer instead: :mod:`orders.idempotency`).
    2. The customer's e-mail and name come from the access token's profile; only a token
       without one makes orders ask users.
    3. catalog reserves the stock and answers the prices, names and currency: the client
       never says what anything costs.
    4. One transaction writes the lines, then ``pending`` → ``placed`` with the total and
       the stored answer (one UPDATE), and the ``order.placed`` event.

    A failure of step 2 or 3 is undone by :func:`orders.compensation.compensate`, one of
    step 4 (which may have committed all the same) settled by
    :func:`orders.compensation.settle_failed_confirmation`; why each undoes what it does is
    in ``docs/resilience.md`` ("Compensation").
    """
    key = idempotency.checked_key(idempotency_key)
    user_id = caller.principal.user_id
    hash_ = idempotency.request_hash({"lines": _canonical_lines(lines)})
    created = _create_or_replay(user_id, key, hash_)
    if isinstance(created, StoredResponse):
        return created
    order_id, created_at = created
    try:
        customer = customer_of(caller)
    except Exception:
        compensation.compensate(order_id, maybe_reserved=False)
        raise
    reservation = _reserve(order_id, lines)
    try:
        return _complete_order(order_id, user_id, created_at, customer, reservation)
    except Exception:
        answer = compensation.settle_failed_confirmation(order_id)
        if answer is None:
            raise
        return answer


def _canonical_lines(lines: Sequence[dict[str, int]]) -> list[dict[str, int]]:
    """The lines in product order: a retry that lists them otherwise is the same request.

    Each product appears once per order (the schema refuses repeats), so the order of the
    lines carries no meaning.
    """
    return sorted((dict(line) for line in lines), key=lambda line: line["product_id"])


def _create_or_replay(user_id: int, key: str, hash_: str) -> tuple[int, datetime] | StoredResponse:
    """Step 1, or the answer to a key an earlier request took; tried again if the key came free.

    The key comes free when the earlier request failed and gave it up, or died: its pending
    order is older than any running request could be, the request deadline and the
    compensation's grace (:func:`orders.idempotency.replay`).
    """
    deadline = current_settings(OrdersSettings).REQUEST_DEADLINE
    for _ in range(2):
        try:
            return _create_pending_order(user_id, key, hash_)
        except IntegrityError:  # the key was taken: by an earlier request, or one running now
            orphaned_before = utc_now() - timedelta(
                seconds=deadline + compensation.COMPENSATION_BUDGET
            )
            answer = idempotency.replay(
                user_id=user_id, key=key, hash_=hash_, orphaned_before=orphaned_before
            )
            if answer is not None:
                return answer
    raise idempotency.request_in_progress()


def _create_pending_order(user_id: int, key: str, hash_: str) -> tuple[int, datetime]:
    """Step 1: the pending order with its key, one statement; its id and creation time."""
    now = utc_now()
    with writing(autocommit=True) as connection:
        order_id: int = connection.execute(
            _INSERT_PENDING,
            {
                "user_id": user_id,
                "state": OrderState.PENDING,
                "idempotency_key": key,
                "request_hash": hash_,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
    return order_id, now


def _reserve(order_id: int, lines: Sequence[dict[str, int]]) -> Reservation:
    """Step 3: catalog's reservation; on failure, undo what may have happened, then raise."""
    try:
        return catalog_client().reserve(order_id, lines)
    except Exception as error:
        compensation.compensate(order_id, maybe_reserved=_maybe_reserved(error))
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
    order_id: int,
    user_id: int,
    created_at: datetime,
    customer: Customer,
    reservation: Reservation,
) -> StoredResponse:
    """Step 4: lines, total, state ``placed``, the stored answer and ``order.placed``, at once."""
    now = utc_now()
    lines = [
        LineView(**line.model_dump())  # type: ignore[typeddict-item]
        for line in sorted(reservation.lines, key=lambda line: line.product_id)
    ]
    order = _order_view(order_id, user_id, reservation, lines, created_at=created_at, now=now)
    answer = StoredResponse(201, _PUBLIC.dump(order))
    values = {
        "currency": reservation.currency,
        "total": reservation.total,
        "customer_email": customer.email,
        "customer_display_name": customer.display_name,
        "placed_at": now,
        "updated_at": now,
        "response_status": answer.status,
        "response_body": answer.body,
    }
    try:
        write_placed(order_id, values, lines, _placed_payload(order, customer))
    except InvalidTransition as error:  # a 500, as any failure of this step: not the caller's
        raise OrderNoLongerPending(f"order {order_id} is no longer pending") from error
    log.info("order placed", extra={"order_id": order_id, "total": reservation.total})
    return answer


def _order_view(
    order_id: int,
    user_id: int,
    reservation: Reservation,
    lines: list[LineView],
    *,
    created_at: datetime,
    now: datetime,
) -> OrderView:
    """The placed order as ``OrderPublic`` shows it, from what this request wrote."""
    return OrderView(
        id=order_id,
        user_id=user_id,
        state=OrderState.PLACED,
        currency=reservation.currency,
        total=reservation.total,
        lines=lines,
        created_at=created_at,
        placed_at=now,
        cancelled_at=None,
        history=history_of(
            created_at=created_at, placed_at=now, cancel_requested_at=None, cancelled_at=None
        ),
    )


def _placed_payload(order: OrderView, customer: Customer) -> dict[str, Any]:
    """``order.placed`` v1 (docs/events.md)."""
    assert order["placed_at"] is not None
    return {
        "order_id": order["id"],
        "user_id": order["user_id"],
        "email": customer.email,
        "display_name": customer.display_name,
        "placed_at": order["placed_at"].isoformat(),
        "currency": order["currency"],
        "lines": [
            {
                "product_id": line["product_id"],
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price": line["unit_price"],
                "line_total": line["line_total"],
            }
            for line in order["lines"]
        ],
        "total": order["total"],
    }
