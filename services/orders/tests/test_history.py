"""An order's history: each state it has been in and when, read from its timestamp columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from flotilla.data.columns import utc_now
from orders.models import Order, db
from orders.service import history_of
from orders.states import OrderState

from .conftest import Account, ProductFactory, json_of, place


def placed(client: FlaskClient, account: Account, make_product: ProductFactory) -> dict[str, Any]:
    """Place an order of one new product as ``account``; its JSON."""
    response = place(client, account, {make_product("MUG-1")["id"]: 1})
    assert response.status_code == 201, response.data
    return json_of(response)


def histories(client: FlaskClient, account: Account, order_id: int) -> list[Any]:
    """The order's history as ``account`` reads it, then as the list shows it."""
    read = json_of(client.get(f"/api/v1/orders/{order_id}", headers=account.headers))
    (listed,) = json_of(client.get("/api/v1/orders", headers=account.headers))["items"]
    return [read["history"], listed["history"]]


def test_a_placed_order_was_pending_then_placed(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product)
    assert order["history"] == [
        {"state": "pending", "at": order["created_at"]},
        {"state": "placed", "at": order["placed_at"]},
    ]
    assert histories(client, customer, order["id"]) == [order["history"]] * 2


def test_a_cancelled_order_went_through_all_four_states_in_order(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product)
    asked = utc_now()
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer.headers)
    cancelled = json_of(response)

    pending, placed_, cancelling, cancelled_ = cancelled["history"]
    assert [pending, placed_, cancelled_] == [
        {"state": "pending", "at": order["created_at"]},
        {"state": "placed", "at": order["placed_at"]},
        {"state": "cancelled", "at": cancelled["cancelled_at"]},
    ]
    assert cancelling["state"] == "cancelling"
    requested_at = datetime.fromisoformat(cancelling["at"])
    assert asked <= requested_at <= datetime.fromisoformat(cancelled["cancelled_at"])
    assert histories(client, customer, order["id"]) == [cancelled["history"]] * 2


def test_an_order_cancelled_before_cancels_were_timed_has_no_cancelling_entry(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product)
    client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer.headers)
    with app.app_context(), db.engine.begin() as connection:  # as migration 0006 left it
        connection.execute(
            update(Order).where(Order.id == order["id"]).values(cancel_requested_at=None)
        )
    for history in histories(client, customer, order["id"]):
        assert [entry["state"] for entry in history] == ["pending", "placed", "cancelled"]


def test_the_history_follows_the_states_not_the_clocks() -> None:
    # Placed by a process whose clock runs a little behind the one that created the order.
    created_at = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    placed_at = created_at - timedelta(milliseconds=3)
    history = history_of(
        created_at=created_at, placed_at=placed_at, cancel_requested_at=None, cancelled_at=None
    )
    assert history == [
        {"state": OrderState.PENDING, "at": created_at},
        {"state": OrderState.PLACED, "at": placed_at},
    ]
