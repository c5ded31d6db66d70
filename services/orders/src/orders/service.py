"""Orders: reading, listing and cancelling; views call these and nothing else.

Placing an order is a saga over three services and has a module of its own,
:mod:`orders.placing`; the two commits of a cancel are in :mod:`orders.cancelling`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, select

from flotilla import NotFound
from flotilla.auth import current_principal
from flotilla.pagination import Page, decode_cursor, encode_cursor
from orders import cancelling
from orders.clients import catalog_client
from orders.models import Order, OrderLine, db
from orders.schemas import LineView, OrderView
from orders.states import VISIBLE_STATES, OrderState

ADMIN = "admin"


class OrderNotFound(NotFound):
    """No order with this id that the caller may see (404)."""

    code, title = "order-not-found", "Order Not Found"


_ORDER_COLUMNS = (
    Order.id,
    Order.user_id,
    Order.state,
    Order.currency,
    Order.total,
    Order.created_at,
    Order.placed_at,
    Order.cancelled_at,
)
_LINE_COLUMNS = (
    OrderLine.product_id,
    OrderLine.sku,
    OrderLine.name,
    OrderLine.quantity,
    OrderLine.unit_price,
    OrderLine.line_total,
)
_ORDER_WITH_LINES = (
    select(*_ORDER_COLUMNS, *_LINE_COLUMNS)
    .outerjoin(OrderLine)
    .where(Order.id == bindparam("order_id"))
    .order_by(OrderLine.product_id)
)
"""An order and its lines in one round trip: one row per line (one row, no line, if none)."""


def read_order(order_id: int) -> OrderView:
    """The order ``order_id`` if the caller owns it or is an administrator; else 404.

    An order that is not placed, cancelling or cancelled does not exist for anyone, and an
    order of another customer is a 404 rather than a 403, which would confirm that it exists.
    """
    order = _visible_order(order_id)
    principal = current_principal()
    if order is None or (
        order["user_id"] != int(principal.user_id) and not principal.has_any_role([ADMIN])
    ):
        raise OrderNotFound(f"Order {order_id} does not exist.")
    return order


def _visible_order(order_id: int) -> OrderView | None:
    with db.autocommit() as connection:
        rows = connection.execute(_ORDER_WITH_LINES, {"order_id": order_id}).all()
    if not rows or rows[0].state not in VISIBLE_STATES:
        return None
    return _order_view(rows)


def _order_view(rows: Sequence[Row[*tuple[Any, ...]]]) -> OrderView:
    first = rows[0]._mapping
    return OrderView(
        id=first["id"],
        user_id=first["user_id"],
        state=first["state"],
        currency=first["currency"],
        total=first["total"],
        created_at=first["created_at"],
        placed_at=first["placed_at"],
        cancelled_at=first["cancelled_at"],
        lines=[_line_view(row) for row in rows if row.product_id is not None],
    )


def _line_view(row: Row[*tuple[Any, ...]]) -> LineView:
    line = row._mapping
    return LineView(
        product_id=line["product_id"],
        sku=line["sku"],
        name=line["name"],
        quantity=line["quantity"],
        unit_price=line["unit_price"],
        line_total=line["line_total"],
    )


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


def cancel_order(order_id: int, *, reason: str | None = None) -> OrderView:
    """Cancel a placed order: recorded, stock back to catalog, then cancelled with its event.

    The cancel is committed (``cancelling``) before catalog is asked, so a release that
    fails, or whose answer is lost after catalog acted, leaves an order that says so rather
    than a ``placed`` order whose stock is back on sale. Repeating the cancel continues from
    the release, which is idempotent; recovery finishes cancels nobody repeats
    (:mod:`orders.cancelling`). Cancelling a cancelled order answers the order as it is,
    without calling catalog or writing a second event.
    """
    order = read_order(order_id)
    if order["state"] == OrderState.CANCELLED:
        return order
    if order["state"] == OrderState.PLACED:
        cancelling.begin_cancel(order_id, reason=reason)
    catalog_client().release(order_id)  # the request's own work: under its deadline
    cancelling.finish_cancel(order_id, reason=reason)
    return read_order(order_id)
