"""POST /api/v1/orders: priced by catalog, stock taken, one order.placed event."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from notifications.events import OrderPlaced
from users.models import User
from users.models import db as users_db

from .conftest import Account, ProductFactory, Shop, events, json_of, place, rows, stock_of


def test_an_order_is_priced_by_catalog_and_takes_its_stock(
    shop: Shop, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", price=1025, stock=5)
    tea = make_product("TEA-1", price=1100, stock=3)

    response = place(client, customer, {mug["id"]: 2, tea["id"]: 1})

    assert response.status_code == 201, response.data
    order = json_of(response)
    assert response.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert "Idempotent-Replayed" not in response.headers
    assert (order["user_id"], order["state"], order["currency"]) == (customer.id, "placed", "EUR")
    assert order["lines"] == [
        {
            "product_id": mug["id"],
            "sku": "MUG-1",
            "name": "Product MUG-1",
            "quantity": 2,
            "unit_price": 1025,
            "line_total": 2050,
        },
        {
            "product_id": tea["id"],
            "sku": "TEA-1",
            "name": "Product TEA-1",
            "quantity": 1,
            "unit_price": 1100,
            "line_total": 1100,
        },
    ]
    assert order["total"] == 3150
    assert order["placed_at"] >= order["created_at"]
    assert order["cancelled_at"] is None
    assert (stock_of(shop, mug["id"]), stock_of(shop, tea["id"])) == (3, 2)


def test_placing_writes_one_order_placed_event_that_notifications_accepts(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", price=1025)
    order = json_of(place(client, customer, {mug["id"]: 3}))

    (row,) = events(app)
    assert (row.type, row.version, row.published_at) == ("order.placed", 1, None)
    payload = OrderPlaced.model_validate(row.payload)
    assert payload.order_id == order["id"]
    assert (payload.user_id, payload.email, payload.display_name) == (
        customer.id,
        customer.email,
        customer.display_name,
    )
    assert payload.placed_at.isoformat() == order["placed_at"]
    assert (payload.currency, payload.total) == ("EUR", 3075)
    assert [line.model_dump() for line in payload.lines] == [
        {
            "product_id": mug["id"],
            "name": "Product MUG-1",
            "quantity": 3,
            "unit_price": 1025,
            "line_total": 3075,
        }
    ]
    assert set(row.payload) == {
        "order_id",
        "user_id",
        "email",
        "display_name",
        "placed_at",
        "currency",
        "lines",
        "total",
    }


def test_a_price_in_the_body_is_refused_and_nothing_is_written(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", price=1025, stock=5)
    bodies: list[dict[str, Any]] = [
        {"lines": [{"product_id": mug["id"], "quantity": 1, "unit_price": 1}]},
        {"lines": [{"product_id": mug["id"], "quantity": 1}], "total": 1},
        {"lines": [{"product_id": mug["id"], "quantity": 1}], "user_id": 99},
    ]
    for body in bodies:
        response = client.post(
            "/api/v1/orders", json=body, headers={**customer.headers, "Idempotency-Key": "k"}
        )
        assert response.status_code == 422, body
    assert rows(app) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5


def test_invalid_lines_are_422_naming_the_field(client: FlaskClient, customer: Account) -> None:
    cases: list[Any] = [
        [],
        [{"product_id": 1, "quantity": 0}],
        [{"product_id": 1, "quantity": 1001}],
        [{"product_id": 0, "quantity": 1}],
        [{"product_id": "1", "quantity": 1}],
        [{"product_id": 1, "quantity": 1.5}],
        [{"product_id": 1, "quantity": True}],
        [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}],
        [{"product_id": index, "quantity": 1} for index in range(1, 52)],
    ]
    for lines in cases:
        response = client.post(
            "/api/v1/orders",
            json={"lines": lines},
            headers={**customer.headers, "Idempotency-Key": "k"},
        )
        assert response.status_code == 422, lines
        assert json_of(response)["errors"][0]["field"].startswith("lines")


def test_fifty_lines_are_accepted(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    products = [make_product(f"P-{index}", price=index) for index in range(50)]
    response = place(client, customer, {product["id"]: 1 for product in products})
    assert response.status_code == 201, response.data
    assert json_of(response)["total"] == sum(range(50))


def test_insufficient_stock_is_409_and_nothing_is_written(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    tea = make_product("TEA-1", stock=1)

    response = place(client, customer, {mug["id"]: 2, tea["id"]: 2})

    assert response.status_code == 409
    problem = json_of(response)
    assert problem["type"] == "urn:flotilla:problem:insufficient-stock"
    assert problem["product_ids"] == [tea["id"]]
    assert rows(app) == {"keys": 0, "events": 0}
    assert (stock_of(shop, mug["id"]), stock_of(shop, tea["id"])) == (5, 1)


def test_after_a_refusal_the_same_key_places_the_order(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=1)
    assert place(client, customer, {mug["id"]: 2}, key="retry-me").status_code == 409
    assert place(client, customer, {mug["id"]: 1}, key="retry-me").status_code == 201


def test_an_unknown_or_inactive_product_is_422(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    retired = make_product("OLD-1", active=False)
    for product_id in (retired["id"], 424242):
        response = place(client, customer, {product_id: 1}, key=f"k{product_id}")
        assert response.status_code == 422
        assert json_of(response)["type"] == "urn:flotilla:problem:product-unavailable"
    assert rows(app) == {"keys": 0, "events": 0}


def test_products_in_two_currencies_are_422(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    euro = make_product("EUR-1")
    yen = make_product("JPY-1", currency="JPY")
    response = place(client, customer, {euro["id"]: 1, yen["id"]: 1})
    assert response.status_code == 422
    assert json_of(response)["type"] == "urn:flotilla:problem:currency-mismatch"
    assert rows(app) == {"keys": 0, "events": 0}


def test_a_token_users_no_longer_honours_is_401_and_nothing_is_written(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    with shop.users.app_context():
        user = users_db.session.get(User, customer.id)
        assert user is not None
        user.is_active = False
        users_db.session.commit()

    response = place(client, customer, {mug["id"]: 1})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert rows(app) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5


def test_placing_needs_a_token(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/orders",
        json={"lines": [{"product_id": 1, "quantity": 1}]},
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 401
