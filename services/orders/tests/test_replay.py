"""Idempotency-Key over HTTP: replays, reuse with another body, missing keys, races."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from flotilla.data.columns import utc_now
from orders.compensation import COMPENSATION_BUDGET
from orders.idempotency import request_hash
from orders.models import Order, db
from orders.recovery import recover

from .conftest import Account, ProductFactory, Shop, json_of, place, rows, stock_of


def test_the_same_key_and_body_replay_the_first_answer(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    first = place(client, customer, {mug["id"]: 2})
    again = place(client, customer, {mug["id"]: 2})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert json_of(again) == json_of(first)
    assert again.headers["Location"] == first.headers["Location"]
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}
    assert stock_of(shop, mug["id"]) == 3


def test_the_same_lines_in_another_order_replay_the_first_answer(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    tea = make_product("TEA-1", stock=5)
    first = place(client, customer, {mug["id"]: 2, tea["id"]: 1})
    again = place(client, customer, {tea["id"]: 1, mug["id"]: 2})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert json_of(again) == json_of(first)
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}
    assert (stock_of(shop, mug["id"]), stock_of(shop, tea["id"])) == (3, 4)


def test_a_replay_answers_even_after_the_order_was_cancelled(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    # The key stands for the placing request: its answer is what that request got.
    mug = make_product("MUG-1")
    first = json_of(place(client, customer, {mug["id"]: 1}))
    client.post(f"/api/v1/orders/{first['id']}/cancel", headers=customer.headers)
    assert json_of(place(client, customer, {mug["id"]: 1})) == first


def test_the_same_key_with_another_body_is_422(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1")
    assert place(client, customer, {mug["id"]: 1}).status_code == 201
    response = place(client, customer, {mug["id"]: 2})
    assert response.status_code == 422
    assert json_of(response)["type"] == "urn:flotilla:problem:idempotency-key-reused"
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}


def test_a_missing_key_is_400_and_nothing_is_written(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1")
    response = place(client, customer, {mug["id"]: 1}, key=None)
    assert response.status_code == 400
    assert json_of(response)["type"] == "urn:flotilla:problem:idempotency-key-required"
    assert rows(app) == {"keys": 0, "events": 0}


def test_a_key_that_is_too_long_is_400(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1")
    response = place(client, customer, {mug["id"]: 1}, key="k" * 256)
    assert response.status_code == 400
    assert json_of(response)["type"] == "urn:flotilla:problem:invalid-idempotency-key"


def test_keys_belong_to_their_customer(
    client: FlaskClient,
    customer: Account,
    other_customer: Account,
    make_product: ProductFactory,
) -> None:
    mug = make_product("MUG-1")
    mine = json_of(place(client, customer, {mug["id"]: 1}, key="shared"))
    theirs = place(client, other_customer, {mug["id"]: 1}, key="shared")
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert json_of(theirs)["id"] != mine["id"]


def test_a_key_whose_request_is_running_is_409_with_retry_after(
    app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1")
    body = {"lines": [{"product_id": mug["id"], "quantity": 1}]}
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            insert(Order).values(
                user_id=customer.id,
                state="pending",
                idempotency_key="busy",
                request_hash=request_hash(body),
                created_at=utc_now(),
                updated_at=utc_now(),
            )
        )

    response = place(client, customer, {mug["id"]: 1}, key="busy")

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert json_of(response)["type"] == "urn:flotilla:problem:request-in-progress"
    assert place(client, customer, {mug["id"]: 2}, key="busy").status_code == 422


def test_a_key_held_by_an_orphan_is_taken_over_by_the_retry(
    shop: Shop, app: Flask, client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    # The worker placing the order died after writing it: no request will finish it. Once
    # it is older than any request can run, the retry with its key places the order, and
    # recovery releases whatever the orphan may hold.
    mug = make_product("MUG-1", stock=5)
    body = {"lines": [{"product_id": mug["id"], "quantity": 1}]}
    settings = app.extensions["flotilla.settings"]
    created = utc_now() - timedelta(seconds=settings.REQUEST_DEADLINE + COMPENSATION_BUDGET + 1)
    with app.app_context(), db.engine.begin() as connection:
        orphan = connection.execute(
            insert(Order)
            .values(
                user_id=customer.id,
                state="pending",
                idempotency_key="orphaned",
                request_hash=request_hash(body),
                created_at=created,
                updated_at=created,
            )
            .returning(Order.id)
        ).scalar_one()

    response = place(client, customer, {mug["id"]: 1}, key="orphaned")

    assert response.status_code == 201
    assert json_of(response)["id"] > orphan
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1, "abandoned": 1}
    with app.app_context():
        assert recover().released == 1
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}
    assert stock_of(shop, mug["id"]) == 4
    replay = place(client, customer, {mug["id"]: 1}, key="orphaned")
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_concurrent_requests_with_one_key_make_one_order(
    shop: Shop, app: Flask, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=100)

    def attempt(_index: int) -> int:
        return place(app.test_client(), customer, {mug["id"]: 1}, key="race").status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(attempt, range(6)))

    assert 201 in statuses
    assert set(statuses) <= {201, 409}
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}
    assert stock_of(shop, mug["id"]) == 99
