"""Placing when a peer fails: never a placed order without stock, never stock without an order."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask, Response, request

from flotilla.resilience.http import DEADLINE_HEADER
from flotilla.testing.wsgi import serve_app
from orders import placing
from orders.recovery import recover

from .conftest import (
    Account,
    CatalogAppFactory,
    OrdersAppFactory,
    ProductFactory,
    Shop,
    StuckOrder,
    access_token,
    compensations,
    events,
    json_of,
    place,
    reservation_states,
    rows,
    stock_of,
)

RESERVATIONS = "/api/v1/reservations"


def test_catalog_down_is_503_and_nothing_is_written(
    shop: Shop, customer: Account, make_product: ProductFactory, catalog_down: Flask
) -> None:
    mug = make_product("MUG-1", stock=5)
    discarded = compensations("discarded")
    response = place(catalog_down.test_client(), customer, {mug["id"]: 1})

    assert response.status_code == 503
    assert compensations("discarded") == discarded + 1  # nothing reached catalog
    assert json_of(response)["type"] == "urn:flotilla:problem:dependency-unavailable"
    assert response.headers["Retry-After"]
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5


def test_after_catalog_is_back_the_same_key_places_the_order(
    shop: Shop, customer: Account, make_product: ProductFactory, catalog_down: Flask
) -> None:
    mug = make_product("MUG-1", stock=5)
    assert place(catalog_down.test_client(), customer, {mug["id"]: 1}, key="k").status_code == 503
    response = place(shop.orders.test_client(), customer, {mug["id"]: 1}, key="k")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert stock_of(shop, mug["id"]) == 4


@pytest.fixture
def users_down(shop: Shop, make_orders_app: OrdersAppFactory) -> Flask:
    """An orders app on the same database whose users has stopped: its port refuses."""
    with serve_app(shop.users) as url:
        pass
    return make_orders_app(USERS_URL=url)


def test_a_token_with_a_profile_places_the_order_without_asking_users(
    shop: Shop, app: Flask, customer: Account, make_product: ProductFactory, users_down: Flask
) -> None:
    mug = make_product("MUG-1", stock=5)
    profile = {"email": "carol.now@example.com", "name": "Carol Now"}
    token = access_token(shop, customer.id, customer.roles, profile)
    signed_in = replace(customer, headers={"Authorization": f"Bearer {token}"})

    response = place(users_down.test_client(), signed_in, {mug["id"]: 1})

    assert response.status_code == 201, response.data
    (event,) = events(app)
    assert (event.payload["email"], event.payload["display_name"]) == (
        "carol.now@example.com",
        "Carol Now",
    )
    assert stock_of(shop, mug["id"]) == 4


def test_users_down_is_503_and_catalog_never_hears_of_the_order(
    shop: Shop, app: Flask, customer: Account, make_product: ProductFactory, users_down: Flask
) -> None:
    mug = make_product("MUG-1", stock=5)
    response = place(users_down.test_client(), customer, {mug["id"]: 1})
    assert response.status_code == 503
    assert rows(app) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5


@pytest.fixture
def outbox_write_fails(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make step 4 fail after the reservation: its write raises."""
    calls: list[int] = []

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        calls.append(1)
        raise RuntimeError("the confirming write failed")

    monkeypatch.setattr(placing, "write_placed", refuse)
    return calls


def test_a_failure_after_the_reservation_releases_it_and_leaves_no_order(
    shop: Shop,
    app: Flask,
    customer: Account,
    make_product: ProductFactory,
    outbox_write_fails: list[int],
) -> None:
    mug = make_product("MUG-1", stock=5)
    released = compensations("released")
    response = place(app.test_client(), customer, {mug["id"]: 2})

    assert response.status_code == 500
    assert compensations("released") == released + 1
    assert outbox_write_fails == [1]
    assert rows(app) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5
    assert reservation_states(shop) == ["released"]


def test_an_answer_lost_after_catalog_reserved_is_502_and_the_stock_is_released(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_catalog_app: CatalogAppFactory,
    make_orders_app: OrdersAppFactory,
) -> None:
    # A catalog that reserves, then loses its answer (a 502 from a proxy in between): the
    # outcome is unknown to orders, which must release rather than guess.
    lossy = make_catalog_app()

    @lossy.after_request
    def lose_reservation_answers(response: Response) -> Response:
        if request.method == "POST" and request.path == RESERVATIONS:
            return Response("bad gateway", 502)
        return response

    mug = make_product("MUG-1", stock=5)
    with serve_app(lossy) as url:
        orders = make_orders_app(CATALOG_URL=url)
        response = place(orders.test_client(), customer, {mug["id"]: 2})

    assert response.status_code == 502
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5
    assert reservation_states(shop) == ["released"]


def test_a_reservation_that_used_up_the_deadline_is_still_released(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_catalog_app: CatalogAppFactory,
    make_orders_app: OrdersAppFactory,
) -> None:
    # Catalog reserves, then answers too late: the reservation times out at the request's
    # deadline, and the release must still be sent, within the compensation's own grace.
    slow = make_catalog_app()

    @slow.after_request
    def answer_reservations_late(response: Response) -> Response:
        if request.method == "POST" and request.path == RESERVATIONS:
            time.sleep(1.0)
        return response

    mug = make_product("MUG-1", stock=5)
    released = compensations("released")
    with serve_app(slow) as url:
        orders = make_orders_app(CATALOG_URL=url)
        headers = {**customer.headers, "Idempotency-Key": "k", DEADLINE_HEADER: "400"}
        body = {"lines": [{"product_id": mug["id"], "quantity": 2}]}
        response = orders.test_client().post("/api/v1/orders", json=body, headers=headers)

    assert response.status_code == 504
    assert compensations("released") == released + 1
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5
    assert reservation_states(shop) == ["released"]


def catalog_answering_the_retry(
    make_catalog_app: CatalogAppFactory, status: int, body: dict[str, Any]
) -> Flask:
    """A catalog that reserves but whose answer is lost (502), and answers a retry with ``body``.

    The retry never reaches the reservation: as if the first attempt's answer went missing
    and the second one met a proxy, or a limiter, that answers on catalog's behalf.
    """
    faulty = make_catalog_app()
    attempts: list[int] = []

    @faulty.before_request
    def answer_the_retry_without_reserving() -> Response | None:
        if request.method != "POST" or request.path != RESERVATIONS:
            return None
        attempts.append(1)
        if len(attempts) == 1:
            return None
        return Response(json.dumps(body), status, content_type="application/problem+json")

    @faulty.after_request
    def lose_the_first_answer(response: Response) -> Response:
        if request.method == "POST" and request.path == RESERVATIONS and len(attempts) == 1:
            return Response("bad gateway", 502)
        return response

    return faulty


def test_an_unexpected_4xx_after_a_lost_answer_releases_the_stock(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_catalog_app: CatalogAppFactory,
    make_orders_app: OrdersAppFactory,
) -> None:
    faulty = catalog_answering_the_retry(
        make_catalog_app, 429, {"type": "about:blank", "title": "Too Many Requests"}
    )
    mug = make_product("MUG-1", stock=5)
    with serve_app(faulty) as url:
        orders = make_orders_app(CATALOG_URL=url)
        response = place(orders.test_client(), customer, {mug["id"]: 2})

    assert response.status_code == 502
    assert json_of(response)["type"] == "urn:flotilla:problem:bad-gateway"
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5
    assert reservation_states(shop) == ["released"]


def test_a_refusal_after_a_lost_answer_still_releases_the_stock(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_catalog_app: CatalogAppFactory,
    make_orders_app: OrdersAppFactory,
) -> None:
    # The refusal speaks for its own attempt only: the first one did reserve.
    refusal = {"type": "urn:flotilla:problem:insufficient-stock", "title": "Insufficient Stock"}
    faulty = catalog_answering_the_retry(make_catalog_app, 409, refusal)
    mug = make_product("MUG-1", stock=5)
    with serve_app(faulty) as url:
        orders = make_orders_app(CATALOG_URL=url)
        response = place(orders.test_client(), customer, {mug["id"]: 2}, key="k")
        assert response.status_code == 409
        assert json_of(response)["type"] == "urn:flotilla:problem:insufficient-stock"
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5
    assert reservation_states(shop) == ["released"]
    retry = place(shop.orders.test_client(), customer, {mug["id"]: 2}, key="k")
    assert retry.status_code == 201  # the key is free again
    assert stock_of(shop, mug["id"]) == 3


def test_when_the_release_fails_too_the_order_is_left_to_recovery_and_its_key_is_free(
    shop: Shop, customer: Account, stuck_order: StuckOrder
) -> None:
    assert rows(shop.orders) == {"keys": 0, "events": 0, "abandoned": 1}
    assert "release failed; order left for recovery" in stuck_order.log_messages
    assert stock_of(shop, stuck_order.product_id) == 3  # still reserved: recovery releases it
    assert reservation_states(shop) == ["reserved"]
    client = shop.orders.test_client()
    path = f"/api/v1/orders/{stuck_order.order_id}"
    assert client.get(path, headers=customer.headers).status_code == 404
    assert json_of(client.get("/api/v1/orders", headers=customer.headers))["items"] == []
    # The client's retry with the same key is a new attempt at once, not a 409.
    retry = place(client, customer, {stuck_order.product_id: 2}, key="stuck")
    assert retry.status_code == 201
    assert json_of(retry)["id"] > stuck_order.order_id
    assert stock_of(shop, stuck_order.product_id) == 1
    with shop.orders.app_context():
        assert recover().released == 1  # abandoned orders are released whatever their age
    assert stock_of(shop, stuck_order.product_id) == 3
    assert rows(shop.orders) == {"keys": 1, "events": 1, "placed": 1}
