"""POST /api/v1/orders/{id}/cancel: recorded, stock back, then cancelled with order.cancelled."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient

from flotilla.testing.wsgi import serve_app
from notifications.events import OrderCancelled
from orders.models import outbox

from .conftest import (
    Account,
    CatalogAppFactory,
    OrdersAppFactory,
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
    # The same order, one state further; its history is test_history.py's.
    assert {**cancelled, "state": "placed", "cancelled_at": None, "history": order["history"]} == (
        order
    )
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


def read(client: FlaskClient, account: Account, order: dict[str, Any]) -> dict[str, Any]:
    """The order as ``account`` reads it now."""
    return json_of(client.get(f"/api/v1/orders/{order['id']}", headers=account.headers))


def test_when_catalog_is_down_the_cancel_is_recorded_and_a_repeat_finishes_it(
    shop: Shop,
    client: FlaskClient,
    customer: Account,
    make_product: ProductFactory,
    catalog_down: Flask,
) -> None:
    mug = make_product("MUG-1", stock=5)
    order = placed(client, customer, mug)
    path = f"/api/v1/orders/{order['id']}/cancel"
    response = catalog_down.test_client().post(path, headers=customer.headers)

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    recorded = read(client, customer, order)
    assert {**recorded, "history": recorded["history"][:-1]} == {**order, "state": "cancelling"}
    assert recorded["history"][-1]["state"] == "cancelling"
    assert [row.type for row in events(shop.orders)] == ["order.placed"]
    assert stock_of(shop, mug["id"]) == 3  # nothing reached catalog
    again = client.post(path, json={"reason": "Too slow"}, headers=customer.headers)
    assert again.status_code == 200
    assert json_of(again)["state"] == "cancelled"
    assert stock_of(shop, mug["id"]) == 5
    cancelled = [row for row in events(shop.orders) if row.type == "order.cancelled"]
    assert [row.payload["reason"] for row in cancelled] == ["Too slow"]


def test_a_release_whose_answer_is_lost_leaves_the_order_cancelling_not_placed(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_catalog_app: CatalogAppFactory,
    make_orders_app: OrdersAppFactory,
) -> None:
    # Catalog gives the stock back, then its answer is lost (a 502 from a proxy, every
    # attempt): the order must not stay "placed" with its stock back on sale.
    lossy = make_catalog_app()

    @lossy.after_request
    def lose_release_answers(response: Response) -> Response:
        return Response("bad gateway", 502) if request.method == "DELETE" else response

    client = shop.orders.test_client()
    mug = make_product("MUG-1", stock=5)
    order = placed(client, customer, mug)
    with serve_app(lossy) as url:
        orders = make_orders_app(CATALOG_URL=url)
        path = f"/api/v1/orders/{order['id']}/cancel"
        response = orders.test_client().post(path, headers=customer.headers)

    assert response.status_code == 502
    assert stock_of(shop, mug["id"]) == 5
    assert read(client, customer, order)["state"] == "cancelling"
    listed = json_of(client.get("/api/v1/orders", headers=customer.headers))["items"]
    assert [item["state"] for item in listed] == ["cancelling"]
    again = client.post(path, headers=customer.headers)
    assert json_of(again)["state"] == "cancelled"
    assert stock_of(shop, mug["id"]) == 5  # released once
    assert [row.type for row in events(shop.orders)] == ["order.placed", "order.cancelled"]


def test_a_failed_last_commit_leaves_the_order_cancelling_with_its_stock_back(
    shop: Shop,
    client: FlaskClient,
    customer: Account,
    make_product: ProductFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mug = make_product("MUG-1", stock=5)
    order = placed(client, customer, mug)
    path = f"/api/v1/orders/{order['id']}/cancel"

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the outbox write failed")

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "add_event", refuse)
        response = client.post(path, headers=customer.headers)

    assert response.status_code == 500
    assert read(client, customer, order)["state"] == "cancelling"
    assert stock_of(shop, mug["id"]) == 5
    assert json_of(client.post(path, headers=customer.headers))["state"] == "cancelled"
    assert [row.type for row in events(shop.orders)] == ["order.placed", "order.cancelled"]
