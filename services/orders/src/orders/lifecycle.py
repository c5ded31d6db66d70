"""Every change of an order's state: one compare-and-set per event, derived from the table.

For each :class:`~orders.states.OrderEvent`, :func:`~orders.states.move_of` reads from
:data:`~orders.states.TRANSITIONS` the states the event may happen in and the state it
leads to, and one statement is built from them, at import::

    UPDATE orders SET state = <target>, <values> WHERE id = :order_id AND state IN (<sources>)

:func:`transition` runs it on the caller's connection, inside the caller's transaction,
with the columns it is given as ``values``. The UPDATE waits for any write to the same
order still in flight, then changes the order only if its state allows the event, so of
two racing changes exactly one happens: the other raises
:class:`~orders.states.InvalidTransition`, and so does an event the order's state does not
allow at all, or an order that does not exist. Nothing else writes an order's state; only
the INSERT of a new order sets it, to ``pending``.

What an event always writes besides the state is declared here too: an abandoned order
holds no ``Idempotency-Key`` (:mod:`orders.idempotency`), whoever abandons it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Update, bindparam, or_, update

from orders.models import Order
from orders.states import InvalidTransition, OrderEvent, move_of

ALWAYS_WRITTEN: Mapping[OrderEvent, Mapping[str, Any]] = {
    OrderEvent.ABANDON: {"idempotency_key": None, "request_hash": None},
}
"""Columns an event sets whatever the caller passes: a request that gave up keeps no key."""


def _compare_and_set(event: OrderEvent) -> Update:
    move = move_of(event)
    return (
        update(Order)
        .where(
            Order.id == bindparam("order_id"),
            # ORed equalities rather than in_(): an IN list is expanded on every execution.
            or_(*(Order.state == source for source in sorted(move.sources))),
        )
        .values(state=move.target, **ALWAYS_WRITTEN.get(event, {}))
    )


_STATEMENTS = {event: _compare_and_set(event) for event in OrderEvent}
_STATEMENTS_IF_CREATED_BEFORE = {
    event: statement.where(Order.created_at < bindparam("created_before"))
    for event, statement in _STATEMENTS.items()
}
"""Built once: executing a statement object skips building it anew (ADR 0020)."""
_ALLOWED = {event: " or ".join(sorted(move_of(event).sources)) for event in OrderEvent}
_COLUMNS = frozenset(Order.__table__.columns.keys()) - {"id", "state"}


def transition(
    connection: Connection,
    order_id: int,
    event: OrderEvent,
    *,
    created_before: datetime | None = None,
    **values: Any,
) -> None:
    """Make ``event`` happen to the order, setting ``values`` (column names) with its state.

    ``created_before`` limits the change to an order created earlier. Not committed here.
    Raises :class:`~orders.states.InvalidTransition` when nothing changed: the order is in
    no state the event may happen in (a concurrent change came first), or does not exist;
    ``TypeError`` for a value that names no column (SQLAlchemy would drop it silently).
    """
    _check_columns(values.keys())
    if created_before is None:
        moved = connection.execute(_STATEMENTS[event], {"order_id": order_id, **values})
    else:
        moved = connection.execute(
            _STATEMENTS_IF_CREATED_BEFORE[event],
            {"order_id": order_id, "created_before": created_before, **values},
        )
    if moved.rowcount != 1:
        raise refusal(order_id, event)


def compare_and_set(event: OrderEvent, columns: Collection[str]) -> Update:
    """``event``'s compare-and-set, setting ``columns`` from parameters of the same names.

    For a statement built once around it (placing's, on PostgreSQL, where it is a CTE):
    there, unlike under :func:`transition`, the parameters of an execution cannot add
    columns to the ``SET``, so they are named here. ``TypeError`` for a name that is no
    column an event may set.
    """
    _check_columns(columns)
    table = Order.__table__
    return _STATEMENTS[event].values(
        {name: bindparam(name, type_=table.c[name].type) for name in columns}
    )


def refusal(order_id: int, event: OrderEvent) -> InvalidTransition:
    """What a compare-and-set that changed nothing raises."""
    return InvalidTransition(f"Order {order_id} cannot {event}: it is not {_ALLOWED[event]}.")


def _check_columns(names: Collection[str]) -> None:
    if not _COLUMNS.issuperset(names):
        raise TypeError(f"not columns an event may set: {sorted(set(names) - _COLUMNS)}")
