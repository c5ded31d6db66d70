"""Placing an order: a saga over three services, kept consistent by order and compensation.

No transaction spans the order (here), the stock (catalog) and the customer (users). What
keeps them consistent is the order of the steps and what each failure undoes; see
:func:`place_order`. :mod:`orders.recovery` finishes what a failed request could not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import IntegrityError

from flotilla.auth import current_principal
from flotilla.columns import utc_now
from flotilla.http import DownstreamError
from orders import compensation, idempotency
from orders.clients import Customer, Reservation, catalog_client, customer_of
from orders.idempotency import StoredResponse
from orders.models import Order, OrderLine, db, outbox
from orders.schemas import LineView, OrderPublic, OrderView
from orders.states import OrderEvent, OrderState, next_state

log = logging.getLogger(__name__)

_INSERT_PENDING = insert(Order).returning(Order.id)
_PLACE = (
    update(Order)
    .where(Order.id == bindparam("placed_id"), Order.state == OrderState.PENDING)
    .values(
        state=next_state(OrderState.PENDING, OrderEvent.PLACE),
        currency=bindparam("placed_currency"),
        total=bindparam("placed_total"),
        customer_email=bindparam("email"),
        customer_display_name=bindparam("display_name"),
        placed_at=bindparam("now"),
        updated_at=bindparam("now"),
        response_status=bindparam("status"),
        response_body=bindparam("body"),
    )
)
_INSERT_LINES = insert(OrderLine)
_PUBLIC = OrderPublic()
"""Statements built once: executing a prepared statement object skips building it anew and
SQLAlchemy's cache-key walk, which the ORM's unit of work would add on every order."""


class OrderNoLongerPending(RuntimeError):
    """Recovery abandoned the order while its request was still placing it."""


def place_order(
    *, lines: Sequence[dict[str, int]], idempotency_key: str | None, authorization: str
) -> StoredResponse:
    """Place an order for the caller, once per ``Idempotency-Key``; the 201 answer or its replay.

    1. One INSERT writes the order (``pending``) with its key and the request's hash: the
       order id exists before catalog hears of it, so the reservation, which catalog keys by
       order id, is safe to retry, and a request whose key is already taken fails on the
       key's unique index and gets the first request's answer instead (or 422, or 409 while
       that request runs); its order id is never used.
    2. The customer's e-mail and name for ``order.placed`` come from the access token's
       profile; only a token without one (issued before tokens carried it) makes orders ask
       users. Nothing has been reserved yet, so a failure only discards.
    3. catalog reserves the stock and answers the prices, names and currency: the client
       never says what anything costs.
    4. One transaction writes the lines, then the total, state ``placed`` and the stored
       answer (one UPDATE), and the ``order.placed`` event: a placed order is never
       half-written.

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
    principal = current_principal()
    user_id = int(principal.user_id)
    hash_ = idempotency.request_hash({"lines": _canonical_lines(lines)})
    created = _create_or_replay(user_id, key, hash_)
    if isinstance(created, StoredResponse):
        return created
    order_id, created_at = created
    try:
        customer = customer_of(principal, authorization)
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
    deadline: float = current_app.extensions["flotilla.settings"].REQUEST_DEADLINE
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
    with db.autocommit() as connection:
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
    with db.engine.connect() as connection:  # closing without a commit rolls back
        _mark_placed(
            connection, order_id, customer=customer, reservation=reservation, now=now, answer=answer
        )
        connection.execute(_INSERT_LINES, [{"order_id": order_id, **line} for line in lines])
        outbox.add_event(connection, "order.placed", _placed_payload(order, customer), version=1)
        connection.commit()
    log.info("order placed", extra={"order_id": order_id, "total": reservation.total})
    return answer


def _mark_placed(
    connection: Connection,
    order_id: int,
    *,
    customer: Customer,
    reservation: Reservation,
    now: datetime,
    answer: StoredResponse,
) -> None:
    """The compare-and-set ``pending`` → ``placed`` that also stores the request's answer."""
    placed = connection.execute(
        _PLACE,
        {
            "placed_id": order_id,
            "placed_currency": reservation.currency,
            "placed_total": reservation.total,
            "email": customer.email,
            "display_name": customer.display_name,
            "now": now,
            "status": answer.status,
            "body": answer.body,
        },
    )
    if placed.rowcount != 1:
        raise OrderNoLongerPending(f"order {order_id} is no longer pending")


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
