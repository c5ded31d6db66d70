"""Orders: reading, listing and cancelling; views call these and nothing else.

Placing an order is a saga over three services and has a module of its own,
:mod:`orders.placing`.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from flotilla import NotFound
from flotilla.auth import current_principal
from flotilla.columns import utc_now
from flotilla.pagination import Page, decode_cursor, encode_cursor
from orders.clients import catalog_client
from orders.models import Order, db, outbox
from orders.states import VISIBLE_STATES, OrderEvent, OrderState, next_state

log = logging.getLogger(__name__)

ADMIN = "admin"


class OrderNotFound(NotFound):
    """No order with this id that the caller may see (404)."""

    code, title = "order-not-found", "Order Not Found"


def get_order(order_id: int) -> Order:
    """The order ``order_id`` if the caller owns it or is an administrator; else 404.

    An order that is not placed or cancelled does not exist for anyone, and an order of
    another customer is a 404 rather than a 403, which would confirm that it exists.
    """
    order = _visible_order(order_id)
    principal = current_principal()
    if order is None or (
        order.user_id != int(principal.user_id) and not principal.has_any_role([ADMIN])
    ):
        raise OrderNotFound(f"Order {order_id} does not exist.")
    return order


def _visible_order(order_id: int) -> Order | None:
    with db.reading() as session:
        order = session.get(Order, order_id)
    return order if order is not None and order.state in VISIBLE_STATES else None


def list_orders(*, limit: int, cursor: str | None = None) -> Page[Order]:
    """The caller's orders, newest first, ``limit`` at a time, after ``cursor``."""
    query = (
        select(Order)
        .where(
            Order.user_id == int(current_principal().user_id),
            Order.state.in_(VISIBLE_STATES),
        )
        .order_by(Order.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(Order.id < decode_cursor(cursor, int))
    with db.reading() as session:
        orders = list(session.scalars(query))
    has_more = len(orders) > limit
    orders = orders[:limit]
    return Page(orders, encode_cursor(orders[-1].id) if has_more else None)


def cancel_order(order_id: int, *, reason: str | None = None) -> Order:
    """Cancel a placed order: stock back to catalog first, then the order and its event.

    Releasing first means a failure at catalog (503/504) changes nothing here and the
    client can simply retry; the release is idempotent. Cancelling a cancelled order
    answers the order as it is, without calling catalog or writing a second event.
    """
    order = get_order(order_id)
    if order.state == OrderState.CANCELLED:
        return order
    cancelled = next_state(OrderState(order.state), OrderEvent.CANCEL)
    catalog_client().release(order.id)
    session = db.session()
    now = utc_now()
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.state == OrderState.PLACED)
        .values(state=cancelled, cancelled_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]  # else a concurrent cancel won
        payload = _cancelled_payload(order, cancelled_at=now.isoformat(), reason=reason)
        outbox.add_event(session, "order.cancelled", payload, version=1)
        log.info("order cancelled", extra={"order_id": order.id})
    session.commit()
    return get_order(order_id)


def _cancelled_payload(order: Order, *, cancelled_at: str, reason: str | None) -> dict[str, Any]:
    """``order.cancelled`` v1 (docs/events.md), addressed to the customer who placed it."""
    return {
        "order_id": order.id,
        "user_id": order.user_id,
        "email": order.customer_email,
        "display_name": order.customer_display_name,
        "cancelled_at": cancelled_at,
        "reason": reason,
        "currency": order.currency,
        "total": order.total,
    }
