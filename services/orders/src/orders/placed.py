"""Placing's last write: the order ``placed``, its lines and ``order.placed``, all or none.

On PostgreSQL it is one statement, run on its own (autocommit)::

    WITH placed AS (UPDATE orders SET state = 'placed', … WHERE id = :order_id
                    AND state = 'pending' RETURNING id),
         lines AS (INSERT INTO order_lines … SELECT placed.id, line.* FROM placed
                   JOIN jsonb_to_recordset(:lines) AS line(…) ON true),
         event AS (INSERT INTO outbox_events … SELECT … FROM placed)
    SELECT count(*) FROM placed

The lines and the event are inserted from the compare-and-set's row, so they exist exactly
when the order moved: an order no longer pending gets neither, and the count says so. One
round trip where ``BEGIN``, the UPDATE, two INSERTs and ``COMMIT`` took five, each a
wake-up of this process and of PostgreSQL's backend (ADR 0020 has what that saves). The
statement is built once.

SQLite runs no data-modifying CTE, so there the same writes are three statements in one
transaction: what the statement does, spelled out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, column, func, insert, select, true
from sqlalchemy.dialects.postgresql import JSONB

from orders.database import writing
from orders.lifecycle import compare_and_set, refusal, transition
from orders.models import Order, OrderLine, db, outbox
from orders.schemas import LineView
from orders.states import OrderEvent

PLACED_COLUMNS = (
    "currency",
    "total",
    "customer_email",
    "customer_display_name",
    "placed_at",
    "updated_at",
    "response_status",
    "response_body",
)
"""What placing writes with the state, the stored answer included."""

_LINE_COLUMNS = ("product_id", "sku", "name", "quantity", "unit_price", "line_total")
_LINES = OrderLine.__table__


def _placing_statement() -> Select[int]:
    """The one statement of the module's docstring, for PostgreSQL."""
    placed = compare_and_set(OrderEvent.PLACE, PLACED_COLUMNS).returning(Order.id).cte("placed")
    line = (
        func.jsonb_to_recordset(bindparam("lines", type_=JSONB))
        .table_valued(*(column(name, _LINES.c[name].type) for name in _LINE_COLUMNS))
        .render_derived(name="line", with_types=True)
    )
    lines = insert(OrderLine).from_select(
        ["order_id", *_LINE_COLUMNS],
        select(placed.c.id, *(line.c[name] for name in _LINE_COLUMNS)).join_from(
            placed, line, true()
        ),
    )
    event = outbox.insert_from(placed)
    return select(func.count()).select_from(placed).add_cte(lines.cte("lines"), event.cte("event"))


_PLACING = _placing_statement()
_INSERT_LINES = insert(OrderLine)


def write_placed(
    order_id: int,
    values: Mapping[str, Any],
    lines: Sequence[LineView],
    event: Mapping[str, Any],
) -> None:
    """Move the pending order to ``placed`` with ``values`` (:data:`PLACED_COLUMNS`), and
    write its ``lines`` and the ``order.placed`` event of payload ``event``: all committed,
    or nothing.

    Raises :class:`~orders.states.InvalidTransition` when the order is no longer pending.
    """
    with outbox.creating("order.placed", event, version=1) as (_event, event_row):
        if db.engine.dialect.name == "postgresql":
            in_one_statement(order_id, values, lines, event_row)
        else:
            in_a_transaction(order_id, values, lines, event_row)


def in_one_statement(
    order_id: int,
    values: Mapping[str, Any],
    lines: Sequence[LineView],
    event_row: Mapping[str, Any],
) -> None:
    """The writes as one statement in autocommit (PostgreSQL only); ``event_row`` is
    :meth:`~flotilla.Outbox.creating`'s."""
    parameters = {"order_id": order_id, **values, "lines": lines, **event_row}
    with writing(autocommit=True) as connection:
        moved = connection.execute(_PLACING, parameters).scalar_one()
    if moved != 1:
        raise refusal(order_id, OrderEvent.PLACE)


def in_a_transaction(
    order_id: int,
    values: Mapping[str, Any],
    lines: Sequence[LineView],
    event_row: Mapping[str, Any],
) -> None:
    """The same writes as three statements in one transaction (any database)."""
    with writing() as connection:
        transition(connection, order_id, OrderEvent.PLACE, **values)
        connection.execute(_INSERT_LINES, [{"order_id": order_id, **line} for line in lines])
        connection.execute(outbox.insert_statement, event_row)
        connection.commit()
