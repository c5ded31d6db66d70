"""Reservations: all lines or none, idempotent by order id, released exactly once.

Every refusal is checked to have changed nothing: stock stays, no reservation exists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from .concurrency import Catalog, app_call, check_no_oversell
from .conftest import ADMIN, ORDERS, json_of, reserve, stock_of

MakeProduct = Callable[..., dict[str, Any]]


@pytest.fixture
def mug(make_product: MakeProduct) -> dict[str, Any]:
    """A product with 10 in stock at 12.50 EUR."""
    return make_product("MUG-1", name="Mug", price=1250, stock=10)


@pytest.fixture
def tea(make_product: MakeProduct) -> dict[str, Any]:
    """A product with 5 in stock at 3.99 EUR."""
    return make_product("TEA-1", name="Earl Grey", price=399, stock=5)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem body, after checking its status and type."""
    assert response.status_code == status, response.data
    body = json_of(response)
    assert body["type"] == f"urn:flotilla:problem:{code}"
    return body


def assert_no_reservation(client: FlaskClient, order_id: int) -> None:
    """Nothing is held for ``order_id``."""
    assert client.get(f"/api/v1/reservations/{order_id}", headers=ORDERS).status_code == 404


def test_a_reservation_takes_the_stock_and_prices_its_lines(
    app: Flask, client: FlaskClient, mug: dict[str, Any], tea: dict[str, Any]
) -> None:
    response = reserve(client, 7, [(tea["id"], 2), (mug["id"], 3)])
    assert response.status_code == 201
    body = json_of(response)
    assert set(body) == {
        "order_id",
        "state",
        "currency",
        "lines",
        "total",
        "reserved_at",
        "released_at",
    }
    assert (body["order_id"], body["state"], body["currency"]) == (7, "reserved", "EUR")
    assert body["lines"] == [  # in product id order
        {
            "product_id": mug["id"],
            "sku": "MUG-1",
            "name": "Mug",
            "quantity": 3,
            "unit_price": 1250,
            "line_total": 3750,
        },
        {
            "product_id": tea["id"],
            "sku": "TEA-1",
            "name": "Earl Grey",
            "quantity": 2,
            "unit_price": 399,
            "line_total": 798,
        },
    ]
    assert body["total"] == 4548
    assert body["reserved_at"] is not None
    assert body["released_at"] is None
    assert (stock_of(app, mug["id"]), stock_of(app, tea["id"])) == (7, 3)
    assert json_of(client.get("/api/v1/reservations/7", headers=ORDERS)) == body


def test_the_same_request_again_returns_the_reservation_and_takes_nothing(
    app: Flask, client: FlaskClient, mug: dict[str, Any], tea: dict[str, Any]
) -> None:
    first = json_of(reserve(client, 7, [(mug["id"], 3), (tea["id"], 1)]))
    again = reserve(client, 7, [(tea["id"], 1), (mug["id"], 3)])  # order of lines is free
    assert again.status_code == 200
    assert json_of(again) == first
    assert (stock_of(app, mug["id"]), stock_of(app, tea["id"])) == (7, 4)


def test_a_price_change_does_not_change_a_reservation(
    client: FlaskClient, mug: dict[str, Any]
) -> None:
    reserve(client, 7, {mug["id"]: 1})
    client.patch(f"/api/v1/products/{mug['id']}", json={"price": 9999}, headers=ADMIN)
    body = json_of(client.get("/api/v1/reservations/7", headers=ORDERS))
    assert body["lines"][0]["unit_price"] == 1250
    assert json_of(reserve(client, 7, {mug["id"]: 1}))["total"] == 1250


MISMATCHES: dict[str, Callable[[int, int], dict[int, int]]] = {
    "another quantity": lambda mug, tea: {mug: 4, tea: 1},
    "one more product": lambda mug, tea: {mug: 3, tea: 1, 4242: 1},
    "one product fewer": lambda mug, tea: {mug: 3},
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_the_same_order_with_other_lines_is_a_mismatch(
    app: Flask, client: FlaskClient, mug: dict[str, Any], tea: dict[str, Any], case: str
) -> None:
    reserve(client, 7, {mug["id"]: 3, tea["id"]: 1})
    lines = MISMATCHES[case](mug["id"], tea["id"])
    assert_problem(reserve(client, 7, lines), 422, "reservation-mismatch")
    assert (stock_of(app, mug["id"]), stock_of(app, tea["id"])) == (7, 4)


def test_not_enough_stock_is_409_naming_the_products_and_takes_nothing(
    app: Flask, client: FlaskClient, make_product: MakeProduct, mug: dict[str, Any]
) -> None:
    scarce = make_product("SCARCE", stock=1)
    gone = make_product("GONE", stock=0)
    response = reserve(client, 7, {mug["id"]: 2, scarce["id"]: 2, gone["id"]: 1})
    body = assert_problem(response, 409, "insufficient-stock")
    assert body["product_ids"] == sorted([scarce["id"], gone["id"]])
    assert [stock_of(app, p["id"]) for p in (mug, scarce, gone)] == [10, 1, 0]
    assert_no_reservation(client, 7)


def test_asking_for_exactly_the_stock_left_succeeds(
    app: Flask, client: FlaskClient, mug: dict[str, Any]
) -> None:
    assert reserve(client, 7, {mug["id"]: 10}).status_code == 201
    assert stock_of(app, mug["id"]) == 0
    assert_problem(reserve(client, 8, {mug["id"]: 1}), 409, "insufficient-stock")


def test_unknown_or_deactivated_products_are_422_naming_them_and_take_nothing(
    app: Flask, client: FlaskClient, make_product: MakeProduct, mug: dict[str, Any]
) -> None:
    retired = make_product("RETIRED", stock=5)
    client.delete(f"/api/v1/products/{retired['id']}", headers=ADMIN)
    response = reserve(client, 7, {mug["id"]: 1, retired["id"]: 1, 4242: 1})
    body = assert_problem(response, 422, "product-unavailable")
    assert body["product_ids"] == sorted([retired["id"], 4242])
    assert (stock_of(app, mug["id"]), stock_of(app, retired["id"])) == (10, 5)
    assert_no_reservation(client, 7)


def test_products_in_different_currencies_are_422_and_take_nothing(
    app: Flask, client: FlaskClient, make_product: MakeProduct, mug: dict[str, Any]
) -> None:
    dollars = make_product("USD-MUG", currency="USD", stock=5)
    response = reserve(client, 7, {mug["id"]: 1, dollars["id"]: 1})
    body = assert_problem(response, 422, "currency-mismatch")
    assert body["currencies"] == ["EUR", "USD"]
    assert (stock_of(app, mug["id"]), stock_of(app, dollars["id"])) == (10, 5)
    assert_no_reservation(client, 7)


def test_a_currency_mismatch_is_found_even_when_stock_is_short(
    client: FlaskClient, make_product: MakeProduct, mug: dict[str, Any]
) -> None:
    dollars = make_product("USD-MUG", currency="USD", stock=0)
    assert_problem(reserve(client, 7, {mug["id"]: 1, dollars["id"]: 1}), 422, "currency-mismatch")


INVALID_BODIES: dict[str, Any] = {
    "no lines": {"order_id": 7, "lines": []},
    "51 lines": {
        "order_id": 7,
        "lines": [{"product_id": index, "quantity": 1} for index in range(1, 52)],
    },
    "a product twice": {
        "order_id": 7,
        "lines": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}],
    },
    "quantity 0": {"order_id": 7, "lines": [{"product_id": 1, "quantity": 0}]},
    "quantity 1001": {"order_id": 7, "lines": [{"product_id": 1, "quantity": 1001}]},
    "quantity as a string": {"order_id": 7, "lines": [{"product_id": 1, "quantity": "1"}]},
    "order id 0": {"order_id": 0, "lines": [{"product_id": 1, "quantity": 1}]},
    "order id beyond bigint": {"order_id": 2**63, "lines": [{"product_id": 1, "quantity": 1}]},
    "no order id": {"lines": [{"product_id": 1, "quantity": 1}]},
    "unknown field": {"order_id": 7, "lines": [{"product_id": 1, "quantity": 1}], "user": 1},
    "unknown line field": {
        "order_id": 7,
        "lines": [{"product_id": 1, "quantity": 1, "unit_price": 0}],
    },
}


@pytest.mark.parametrize("case", INVALID_BODIES)
def test_an_invalid_reservation_is_422_and_takes_nothing(
    app: Flask, client: FlaskClient, mug: dict[str, Any], case: str
) -> None:
    response = client.post("/api/v1/reservations", json=INVALID_BODIES[case], headers=ORDERS)
    assert_problem(response, 422, "validation-error")
    assert stock_of(app, mug["id"]) == 10
    assert_no_reservation(client, 7)


def test_a_release_gives_the_stock_back_exactly_once(
    app: Flask, client: FlaskClient, mug: dict[str, Any], tea: dict[str, Any]
) -> None:
    reserve(client, 7, {mug["id"]: 3, tea["id"]: 2})
    for _ in range(3):
        response = client.delete("/api/v1/reservations/7", headers=ORDERS)
        assert response.status_code == 204
        assert response.data == b""
    assert (stock_of(app, mug["id"]), stock_of(app, tea["id"])) == (10, 5)
    body = json_of(client.get("/api/v1/reservations/7", headers=ORDERS))
    assert body["state"] == "released"
    assert body["released_at"] is not None
    assert len(body["lines"]) == 2  # what was held stays on record


def test_a_released_order_never_reserves_again(
    app: Flask, client: FlaskClient, mug: dict[str, Any]
) -> None:
    reserve(client, 7, {mug["id"]: 3})
    client.delete("/api/v1/reservations/7", headers=ORDERS)
    assert_problem(reserve(client, 7, {mug["id"]: 3}), 409, "reservation-released")
    assert stock_of(app, mug["id"]) == 10


def test_releasing_an_unknown_order_refuses_its_late_reservation(
    app: Flask, client: FlaskClient, mug: dict[str, Any]
) -> None:
    assert client.delete("/api/v1/reservations/7", headers=ORDERS).status_code == 204
    tombstone = json_of(client.get("/api/v1/reservations/7", headers=ORDERS))
    assert tombstone["state"] == "released"
    assert (tombstone["lines"], tombstone["total"], tombstone["currency"]) == ([], 0, None)
    assert tombstone["reserved_at"] is None
    assert_problem(reserve(client, 7, {mug["id"]: 1}), 409, "reservation-released")
    assert stock_of(app, mug["id"]) == 10
    assert client.delete("/api/v1/reservations/7", headers=ORDERS).status_code == 204


def test_other_orders_are_not_affected_by_a_release(
    app: Flask, client: FlaskClient, mug: dict[str, Any]
) -> None:
    reserve(client, 7, {mug["id"]: 3})
    reserve(client, 8, {mug["id"]: 4})
    client.delete("/api/v1/reservations/7", headers=ORDERS)
    assert stock_of(app, mug["id"]) == 6  # 10 - 3 - 4 + 3
    assert json_of(client.get("/api/v1/reservations/8", headers=ORDERS))["state"] == "reserved"


def test_an_absent_reservation_is_a_404_problem(client: FlaskClient) -> None:
    assert_problem(
        client.get("/api/v1/reservations/4242", headers=ORDERS), 404, "reservation-not-found"
    )
    for order_id in ("0", "-1", "99999999999999999999"):
        assert client.get(f"/api/v1/reservations/{order_id}", headers=ORDERS).status_code == 404


@pytest.mark.parametrize("migrated_app", ["postgres"], indirect=True)
def test_a_reservation_committed_during_its_release_is_released_too(
    app: Flask, client: FlaskClient, mug: dict[str, Any]
) -> None:
    # PostgreSQL shows each statement what was committed before it: a reservation committed
    # after the release's flip found nothing must still be released, not left holding stock.
    # (SQLite cannot interleave: the flip takes the one write lock.)
    engine = app.extensions["flotilla.db"].engine
    interleaved: list[int] = []

    def reserve_in_between(*args: Any) -> None:
        statement = args[2]
        if not interleaved and statement.startswith("UPDATE reservations"):
            interleaved.append(0)  # once: the release's own retry must not fire it again
            # Another thread: its own app context, session and connection, committed at once.
            racer = threading.Thread(
                target=lambda: interleaved.append(
                    reserve(app.test_client(), 7, {mug["id"]: 4}).status_code
                )
            )
            racer.start()
            racer.join(timeout=30)

    event.listen(engine, "after_cursor_execute", reserve_in_between)
    try:
        assert client.delete("/api/v1/reservations/7", headers=ORDERS).status_code == 204
    finally:
        event.remove(engine, "after_cursor_execute", reserve_in_between)
    assert interleaved == [0, 201]
    assert json_of(client.get("/api/v1/reservations/7", headers=ORDERS))["state"] == "released"
    assert stock_of(app, mug["id"]) == 10


def test_fifty_threads_in_process_never_oversell_ten(app: Flask) -> None:
    # The same check as under Gunicorn (test_concurrency), with threads of this process.
    check_no_oversell(Catalog(app_call(app), app.extensions["flotilla.db"].engine))
