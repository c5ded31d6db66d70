"""Orders: reading and listing, as their customer (or an administrator) may see them.

Each flow that changes an order has a module of its own, whole: placing, a saga over three
services (:mod:`orders.placing`), and cancelling (:mod:`orders.cancelling`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from flotilla import ADMIN, Forbidden, NotFound, Page, current_principal, keyset_query, page_of
from orders.database import reading
from orders.models import Order, OrderLine
from orders.schemas import HistoryEntryView, LineView, OrderView
from orders.states import VISIBLE_STATES, OrderState


class OrderNotFound(NotFound):
    """No order with this id that the caller may see (404)."""

    code, title = "order-not-found", "Order Not Found"


class CustomerSearchForbidden(Forbidden):
    """Listing the orders of a given customer is for administrators only (403)."""

    code, title = "customer-search-forbidden", "Customer Search Forbidden"


_ORDER_COLUMNS = (
    Order.id,
    Order.user_id,
    Order.state,
    Order.currency,
    Order.total,
    Order.created_at,
    Order.placed_at,
    Order.cancel_requested_at,
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
_LINES_OF = (
    select(OrderLine.order_id, *_LINE_COLUMNS)
    .where(OrderLine.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(OrderLine.order_id, OrderLine.product_id)
)
"""The lines of a page of orders, in one statement."""


def read_order(order_id: int) -> OrderView:
    """The order ``order_id`` if the caller owns it or is an administrator; else 404.

    An order that is not placed, cancelling or cancelled does not exist for anyone, and an
    order of another customer is a 404 rather than a 403, which would confirm that it exists.
    """
    order = _visible_order(order_id)
    principal = current_principal()
    if order is None or (
        order["user_id"] != principal.user_id and not principal.has_any_role([ADMIN])
    ):
        raise OrderNotFound(f"Order {order_id} does not exist.")
    return order


def _visible_order(order_id: int) -> OrderView | None:
    with reading() as connection:
        rows = connection.execute(_ORDER_WITH_LINES, {"order_id": order_id}).all()
    if not rows or rows[0].state not in VISIBLE_STATES:
        return None
    return _order_view(rows)


def _order_view(rows: Sequence[Row[*tuple[Any, ...]]]) -> OrderView:
    lines = [_line_view(row) for row in rows if row.product_id is not None]
    return _order(rows[0], lines)


def _order(row: Row[*tuple[Any, ...]], lines: list[LineView]) -> OrderView:
    order = row._mapping
    return OrderView(
        id=order["id"],
        user_id=order["user_id"],
        state=order["state"],
        currency=order["currency"],
        total=order["total"],
        created_at=order["created_at"],
        placed_at=order["placed_at"],
        cancelled_at=order["cancelled_at"],
        lines=lines,
        history=history_of(
            created_at=order["created_at"],
            placed_at=order["placed_at"],
            cancel_requested_at=order["cancel_requested_at"],
            cancelled_at=order["cancelled_at"],
        ),
    )


def history_of(
    *,
    created_at: datetime,
    placed_at: datetime | None,
    cancel_requested_at: datetime | None,
    cancelled_at: datetime | None,
) -> list[HistoryEntryView]:
    """Each state the order has been in and when it entered it, oldest first.

    The states follow one line (:mod:`orders.states`), so each is entered at most once, and
    the statement that enters it writes its time in a column of its own: the history needs
    no table and no extra write per order (ADR 0030). The entries keep the machine's order
    rather than being sorted by time, which comes from more than one process's clock. A
    column still null is a state not reached, or, for ``cancel_requested_at``, a cancel
    begun before that time was recorded: its entry is left out.
    """
    entered = (
        (OrderState.PENDING, created_at),
        (OrderState.PLACED, placed_at),
        (OrderState.CANCELLING, cancel_requested_at),
        (OrderState.CANCELLED, cancelled_at),
    )
    return [HistoryEntryView(state=state, at=at) for state, at in entered if at is not None]


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


def list_orders(
    *, limit: int, cursor: str | None = None, customer: int | None = None
) -> Page[OrderView]:
    """The caller's orders, newest first, ``limit`` at a time, after ``cursor``.

    With ``customer``, that customer's orders instead, for an administrator; anyone else
    gets :class:`CustomerSearchForbidden`, even naming themselves, so the parameter means
    one thing to every caller.
    """
    theirs = select(*_ORDER_COLUMNS).where(
        Order.user_id == _listed_customer(customer), Order.state.in_(VISIBLE_STATES)
    )
    query = keyset_query(theirs, Order.id, limit=limit, cursor=cursor, descending=True)
    with reading() as connection:
        page = page_of(connection.execute(query).all(), limit=limit)
        orders = [_order(row, []) for row in page.items]
        _add_lines(connection, orders)
    return Page(orders, page.next_cursor)


def _listed_customer(customer: int | None) -> int:
    """Whose orders the caller lists: their own, or ``customer``'s if an administrator."""
    principal = current_principal()
    if customer is None:
        return principal.user_id
    if not principal.has_any_role([ADMIN]):
        raise CustomerSearchForbidden("Only administrators may list a customer's orders.")
    return customer


def _add_lines(connection: Connection, orders: list[OrderView]) -> None:
    """Fill in the lines of ``orders``, all read in one statement."""
    if not orders:
        return
    by_id = {order["id"]: order for order in orders}
    for row in connection.execute(_LINES_OF, {"order_ids": list(by_id)}):
        by_id[row.order_id]["lines"].append(_line_view(row))
