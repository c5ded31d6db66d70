"""Each compare-and-set of the lifecycle, on a real database: the table's moves and no others."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select

from flotilla.data.columns import utc_now
from orders.lifecycle import transition
from orders.models import Order, db
from orders.states import TRANSITIONS, InvalidTransition, OrderEvent, OrderState


def order_in(app: Flask, state: OrderState, *, key: str | None = None) -> int:
    """An order of customer 1 in ``state``, created an hour ago."""
    created_at = utc_now() - timedelta(hours=1)
    row = {
        "user_id": 1,
        "state": state,
        "idempotency_key": key,
        "request_hash": key and "0" * 64,
        "created_at": created_at,
        "updated_at": created_at,
    }
    with app.app_context(), db.engine.begin() as connection:
        order_id: int = connection.execute(
            insert(Order).values(row).returning(Order.id)
        ).scalar_one()
    return order_id


def stored(app: Flask, order_id: int) -> tuple[str, str | None]:
    """The order's state and key, as committed."""
    with app.app_context(), db.engine.connect() as connection:
        row = connection.execute(
            select(Order.state, Order.idempotency_key).where(Order.id == order_id)
        ).one()
    return row.state, row.idempotency_key


def move(app: Flask, order_id: int, event: OrderEvent, **values: Any) -> None:
    """Make ``event`` happen to the order and commit."""
    with app.app_context(), db.engine.connect() as connection:
        transition(connection, order_id, event, **values)
        connection.commit()


@pytest.mark.parametrize(
    ("state", "event"), [(s, e) for s, e in itertools.product(OrderState, OrderEvent)]
)
def test_an_event_moves_an_order_exactly_as_the_table_says(
    app: Flask, state: OrderState, event: OrderEvent
) -> None:
    order_id = order_in(app, state)
    if (state, event) in TRANSITIONS:
        move(app, order_id, event)
        assert stored(app, order_id)[0] == TRANSITIONS[state, event]
    else:
        with pytest.raises(InvalidTransition) as raised:
            move(app, order_id, event)
        assert raised.value.status == 409
        assert stored(app, order_id)[0] == state


def test_of_two_racing_moves_the_second_raises(app: Flask) -> None:
    order_id = order_in(app, OrderState.PLACED)
    move(app, order_id, OrderEvent.CANCEL)
    with pytest.raises(InvalidTransition, match="cannot cancel: it is not placed"):
        move(app, order_id, OrderEvent.CANCEL)


def test_an_order_that_does_not_exist_cannot_move(app: Flask) -> None:
    with pytest.raises(InvalidTransition):
        move(app, 2**62, OrderEvent.PLACE)


def test_the_values_are_written_with_the_state(app: Flask) -> None:
    order_id = order_in(app, OrderState.PLACED)
    move(app, order_id, OrderEvent.CANCEL, cancel_reason="changed my mind")
    with app.app_context(), db.engine.connect() as connection:
        reason = connection.scalar(select(Order.cancel_reason).where(Order.id == order_id))
    assert reason == "changed my mind"


def test_an_abandoned_order_holds_no_key_whoever_abandons_it(app: Flask) -> None:
    order_id = order_in(app, OrderState.PENDING, key="k")
    move(app, order_id, OrderEvent.ABANDON)
    assert stored(app, order_id) == (OrderState.ABANDONED, None)


def test_created_before_limits_the_move_to_older_orders(app: Flask) -> None:
    order_id = order_in(app, OrderState.PENDING, key="k")
    with pytest.raises(InvalidTransition):
        move(app, order_id, OrderEvent.ABANDON, created_before=utc_now() - timedelta(days=1))
    assert stored(app, order_id) == (OrderState.PENDING, "k")
    move(app, order_id, OrderEvent.ABANDON, created_before=utc_now())
    assert stored(app, order_id)[0] == OrderState.ABANDONED


def test_a_value_that_names_no_column_is_refused_before_the_database(app: Flask) -> None:
    order_id = order_in(app, OrderState.PLACED)
    with pytest.raises(TypeError, match="cancel_reson"):
        move(app, order_id, OrderEvent.CANCEL, cancel_reson="typo")
    assert stored(app, order_id)[0] == OrderState.PLACED
