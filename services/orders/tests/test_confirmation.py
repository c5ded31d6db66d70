"""A failed confirming commit (step 4): never undo an order that was placed after all."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from flotilla.data.columns import utc_now
from flotilla.testing.wsgi import serve_app
from orders import placing
from orders.placed import write_placed
from orders.recovery import recover

from .conftest import (
    Account,
    OrdersAppFactory,
    ProductFactory,
    Shop,
    compensations,
    json_of,
    place,
    reservation_states,
    rows,
    stock_of,
)

LATER = timedelta(minutes=5)  # beyond PENDING_ORDER_TIMEOUT (60 s)


def connection_lost() -> OperationalError:
    """What the driver raises when the connection drops before the database answers."""
    return OperationalError("COMMIT", None, ConnectionResetError("server closed the connection"))


def on_confirmation(monkeypatch: pytest.MonkeyPatch, commit: Any) -> None:
    """Replace step 4's confirming write with ``commit(real_commit)``, where ``real_commit``
    makes the write (one statement on PostgreSQL, a transaction on SQLite) and commits it."""

    def replaced(*args: Any, **kwargs: Any) -> None:
        commit(lambda: write_placed(*args, **kwargs))

    monkeypatch.setattr(placing, "write_placed", replaced)


def test_a_commit_that_succeeded_but_raised_answers_the_placed_order(
    shop: Shop,
    app: Flask,
    customer: Account,
    make_product: ProductFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The COMMIT reaches the database, then the connection drops before its answer: the
    # order is placed, so its stock stays reserved and its key keeps answering for it.
    def commit_then_lose_the_answer(real_commit: Any) -> None:
        real_commit()
        raise connection_lost()

    on_confirmation(monkeypatch, commit_then_lose_the_answer)
    mug = make_product("MUG-1", stock=5)
    placed = compensations("placed")
    client = app.test_client()

    response = place(client, customer, {mug["id"]: 2}, key="k")

    assert response.status_code == 201, response.data
    order = json_of(response)
    assert response.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert (order["state"], order["total"]) == ("placed", 2500)
    assert compensations("placed") == placed + 1
    assert stock_of(shop, mug["id"]) == 3
    assert reservation_states(shop) == ["reserved"]
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}
    retry = place(client, customer, {mug["id"]: 2}, key="k")
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert json_of(retry) == order
    assert rows(app) == {"keys": 1, "events": 1, "placed": 1}
    assert stock_of(shop, mug["id"]) == 3


def test_when_the_order_cannot_be_read_after_a_failed_commit_nothing_is_released(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_orders_app: OrdersAppFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The commit failed and the database is gone: whether the order was placed is unknown,
    # so the request releases nothing, and recovery decides once the database is back.
    orders = make_orders_app()
    database = orders.extensions["flotilla.db"]
    working = database.engine
    unreachable = create_engine(f"sqlite:///{shop.directory}/no-such-directory/orders.db")

    def commit_fails_and_the_database_goes(_real_commit: Any) -> None:
        database.engine = unreachable
        raise connection_lost()

    on_confirmation(monkeypatch, commit_fails_and_the_database_goes)
    mug = make_product("MUG-1", stock=5)
    left_for_recovery = compensations("left_for_recovery")
    try:
        response = place(orders.test_client(), customer, {mug["id"]: 2})
    finally:
        database.engine = working
        unreachable.dispose()

    assert response.status_code == 503
    assert compensations("left_for_recovery") == left_for_recovery + 1
    assert rows(shop.orders) == {"keys": 1, "events": 0, "pending": 1}
    assert stock_of(shop, mug["id"]) == 3
    with shop.orders.app_context():
        report = recover(now=utc_now() + LATER)
    assert report.released == 1
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5


def test_when_the_commit_and_the_release_fail_recovery_takes_the_order_at_once(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_orders_app: OrdersAppFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The request proved the order was not placed (it abandoned it): recovery need not wait
    # for PENDING_ORDER_TIMEOUT before releasing it.
    mug = make_product("MUG-1", stock=5)
    catalog_running = ExitStack()
    url = catalog_running.enter_context(serve_app(shop.catalog))
    orders = make_orders_app(CATALOG_URL=url)

    def catalog_stops_then_outbox_fails(*_args: Any, **_kwargs: Any) -> None:
        catalog_running.close()
        raise RuntimeError("the confirming write failed")

    monkeypatch.setattr(placing, "write_placed", catalog_stops_then_outbox_fails)
    response = place(orders.test_client(), customer, {mug["id"]: 2}, key="stuck")

    assert response.status_code == 500
    assert rows(shop.orders) == {"keys": 0, "events": 0, "abandoned": 1}  # the key is free
    assert stock_of(shop, mug["id"]) == 3
    with shop.orders.app_context():
        report = recover()
    assert (report.released, report.failed) == (1, 0)
    assert rows(shop.orders) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5
