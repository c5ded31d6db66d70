"""POST /api/v1/orders/{id}/cancel: stock back first, then the order and order.cancelled."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from notifications.events import OrderCancelled

from .conftest import (
    Account,
    ProductFactory,
    Shop,
    events,
    json_of,
    place,
    stock_of,
)


def placed(client: FlaskClient, account: Account, product: dict[str, Any]) -> dict[str, Any]:
    """Place an order of two of ``product`` as ``account``; its JSON."""
    response = place(client, account, {product["id"]: 2})
    assert response.status_code == 201, response.data
    return json_of(response)


def test_cancelling_gives_the_stock_back_and_writes_order_cancelled(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", price=1025, stock=5)
    order = placed(client, customer, mug)
    assert stock_of(shop, mug["id"]) == 3

    response = client.post(
        f"/api/v1/orders/{order['id']}/cancel",
        json={"reason": "Changed my mind"},
        headers=customer.headers,
    )

    assert response.status_code == 200
    cancelled = json_of(response)
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancelled_at"] is not None
    assert {**cancelled, "state": "placed", "cancelled_at": None} == order
    assert stock_of(shop, mug["id"]) == 5
    placed_event, cancelled_event = events(app)
    assert (cancelled_event.type, cancelled_event.version) == ("order.cancelled", 1)
    payload = OrderCancelled.model_validate(cancelled_event.payload)
    assert (payload.order_id, payload.user_id, payload.email) == (
        order["id"],
        customer.id,
        customer.email,
    )
    assert (payload.reason, payload.currency, payload.total) == ("Changed my mind", "EUR", 2050)
    assert payload.cancelled_at.isoformat() == cancelled["cancelled_at"]
    assert placed_event.type == "order.placed"


def test_cancelling_twice_is_harmless(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    order = placed(client, customer, mug)
    path = f"/api/v1/orders/{order['id']}/cancel"
    first = client.post(path, headers=customer.headers)
    second = client.post(path, headers=customer.headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert json_of(second) == json_of(first)
    assert [row.type for row in events(app)] == ["order.placed", "order.cancelled"]
    assert stock_of(shop, mug["id"]) == 5


def test_an_administrator_cancels_and_the_customer_is_told(
    app: Flask,
    client: FlaskClient,
    customer: Account,
    admin: Account,
    make_product: ProductFactory,
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=admin.headers)
    assert response.status_code == 200
    payload = events(app)[-1].payload
    assert (payload["email"], payload["display_name"], payload["reason"]) == (
        customer.email,
        customer.display_name,
        None,
    )


def test_another_customer_cannot_cancel(
    shop: Shop,
    client: FlaskClient,
    customer: Account,
    other_customer: Account,
    make_product: ProductFactory,
) -> None:
    mug = make_product("MUG-1", stock=5)
    order = placed(client, customer, mug)
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=other_customer.headers)
    assert response.status_code == 404
    unchanged = client.get(f"/api/v1/orders/{order['id']}", headers=customer.headers)
    assert json_of(unchanged)["state"] == "placed"
    assert stock_of(shop, mug["id"]) == 3


def test_a_reason_longer_than_500_is_422(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    response = client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={"reason": "x" * 501}, headers=customer.headers
    )
    assert response.status_code == 422


def test_when_catalog_is_down_cancelling_is_503_and_changes_nothing(
    shop: Shop,
    client: FlaskClient,
    customer: Account,
    make_product: ProductFactory,
    catalog_down: Flask,
) -> None:
    mug = make_product("MUG-1", stock=5)
    order = placed(client, customer, mug)
    response = catalog_down.test_client().post(
        f"/api/v1/orders/{order['id']}/cancel", headers=customer.headers
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert json_of(client.get(f"/api/v1/orders/{order['id']}", headers=customer.headers)) == order
    assert [row.type for row in events(shop.orders)] == ["order.placed"]
    assert stock_of(shop, mug["id"]) == 3
