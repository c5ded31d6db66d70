"""Recovery: stuck orders are released (or their cancel finished); old keys are pruned."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update

from flotilla.data.columns import utc_now
from flotilla.resilience.http import BadGateway
from flotilla.testing import capture_logs
from orders import recovery
from orders.models import Order, db
from orders.recovery import RecoveryReport, recover

from .conftest import (
    Account,
    ProductFactory,
    Shop,
    StuckOrder,
    events,
    json_of,
    place,
    rows,
    stock_of,
)

LATER = timedelta(minutes=5)  # beyond PENDING_ORDER_TIMEOUT (60 s)


def test_recovery_releases_a_stuck_order_and_deletes_it(
    shop: Shop, app: Flask, stuck_order: StuckOrder, customer: Account
) -> None:
    with app.app_context():
        report = recover(now=utc_now() + LATER)
    assert (report.released, report.failed) == (1, 0)
    assert stock_of(shop, stuck_order.product_id) == 5
    assert rows(app) == {"keys": 0, "events": 0}
    # The key is free again: the customer's retry places the order.
    retry = place(app.test_client(), customer, {stuck_order.product_id: 2}, key="stuck")
    assert retry.status_code == 201
    assert json_of(retry)["id"] > stuck_order.order_id  # ids are never reused


def test_a_recent_pending_order_is_left_to_its_request(
    shop: Shop, app: Flask, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    now = utc_now()
    stuck_in(app, customer.id, mug["id"], 2, state="pending", updated_at=now, created_at=now)
    with app.app_context():
        report = recover()
    assert (report.released, report.failed) == (0, 0)
    assert rows(app) == {"keys": 0, "events": 0, "pending": 1}
    assert stock_of(shop, mug["id"]) == 3


def test_when_catalog_is_still_down_the_order_waits_abandoned_for_the_next_pass(
    shop: Shop,
    app: Flask,
    stuck_order: StuckOrder,
    catalog_down: Flask,
) -> None:
    with catalog_down.app_context():
        failed = recover(now=utc_now() + LATER)
    assert (failed.released, failed.failed) == (0, 1)
    assert rows(app) == {"keys": 0, "events": 0, "abandoned": 1}
    # Abandoned: a request still running could no longer place it.
    with app.app_context():
        again = recover()  # abandoned orders are retried whatever their age
    assert (again.released, again.failed) == (1, 0)
    assert rows(app) == {"keys": 0, "events": 0}
    assert stock_of(shop, stuck_order.product_id) == 5


def test_a_request_still_running_cannot_place_an_order_recovery_abandoned(
    shop: Shop,
    app: Flask,
    customer: Account,
    make_product: ProductFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Recovery abandons the order while its request waits for catalog; when the request
    # resumes, placing needs "pending": it releases the stock and leaves no order.
    mug = make_product("MUG-1", stock=5)
    catalog = app.extensions["orders.catalog"]
    reserve = catalog.reserve

    def reserve_then_recovery_abandons(order_id: int, lines: Any) -> Any:
        reservation = reserve(order_id, lines)
        with db.engine.begin() as connection:
            connection.execute(update(Order).values(state="abandoned"))
        return reservation

    monkeypatch.setattr(catalog, "reserve", reserve_then_recovery_abandons)
    response = place(app.test_client(), customer, {mug["id"]: 2})

    assert response.status_code == 500
    assert rows(app) == {"keys": 0, "events": 0}
    assert stock_of(shop, mug["id"]) == 5


def test_the_cli_runs_one_pass(shop: Shop, app: Flask, stuck_order: StuckOrder) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(update(Order).values(created_at=utc_now() - LATER))
    result = app.test_cli_runner().invoke(args=["orders", "recover", "--once"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "released 1 orders, finished 0 cancels, 0 failed, pruned 0 idempotency keys, "
        "released 0 reservations of no order"
    )
    assert stock_of(shop, stuck_order.product_id) == 5


def stuck_in(
    app: Flask,
    user_id: int,
    product_id: int,
    quantity: int,
    *,
    state: str,
    updated_at: datetime,
    created_at: datetime | None = None,
) -> int:
    """An order left in ``state`` (created long ago by default), holding ``quantity`` of the
    product at catalog."""
    created_at = created_at or utc_now() - LATER
    row = {"user_id": user_id, "state": state, "created_at": created_at, "updated_at": updated_at}
    with app.app_context():
        with db.engine.begin() as connection:
            order_id: int = connection.execute(
                insert(Order).values(row).returning(Order.id)
            ).scalar_one()
        lines = [{"product_id": product_id, "quantity": quantity}]
        app.extensions["orders.catalog"].reserve(order_id, lines)
    return order_id


def test_an_order_whose_release_keeps_failing_does_not_block_the_others(
    shop: Shop,
    app: Flask,
    customer: Account,
    make_product: ProductFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mug = make_product("MUG-1", stock=10)
    oldest = utc_now() - 2 * LATER
    failing = stuck_in(app, customer.id, mug["id"], 1, state="abandoned", updated_at=oldest)
    stuck_in(app, customer.id, mug["id"], 2, state="pending", updated_at=oldest + LATER)
    catalog = app.extensions["orders.catalog"]
    release = catalog.release

    def release_fails_for_one(order_id: int) -> None:
        if order_id == failing:
            raise BadGateway("catalog answered 500.", target="catalog", maybe_processed=True)
        release(order_id)

    monkeypatch.setattr(catalog, "release", release_fails_for_one)
    monkeypatch.setattr(recovery, "BATCH_SIZE", 1)
    with app.app_context():
        first, second = recover(), recover()

    assert (first.released, first.failed) == (0, 1)
    assert (second.released, second.failed) == (1, 0)
    assert rows(app) == {"keys": 0, "events": 0, "abandoned": 1}
    assert stock_of(shop, mug["id"]) == 9  # only the failing order's unit is still held


def cancel_while_catalog_is_down(
    client: FlaskClient, down: Flask, account: Account, product: dict[str, Any]
) -> dict[str, Any]:
    """Place an order of two of ``product``, and cancel it through ``down``: it is cancelling."""
    order = json_of(place(client, account, {product["id"]: 2}))
    path = f"/api/v1/orders/{order['id']}/cancel"
    response = down.test_client().post(path, json={"reason": "Lost"}, headers=account.headers)
    assert response.status_code == 503
    return order


def test_recovery_finishes_a_cancel_left_cancelling(
    shop: Shop,
    app: Flask,
    customer: Account,
    make_product: ProductFactory,
    catalog_down: Flask,
) -> None:
    mug = make_product("MUG-1", stock=5)
    order = cancel_while_catalog_is_down(app.test_client(), catalog_down, customer, mug)
    with app.app_context():
        recent = recover()  # its request may still be running: left alone
    assert (recent.cancelled, rows(app)) == (0, {"keys": 1, "events": 1, "cancelling": 1})

    with app.app_context():
        report = recover(now=utc_now() + LATER)

    assert (report.cancelled, report.released, report.failed) == (1, 0, 0)
    assert rows(app) == {"keys": 1, "events": 2, "cancelled": 1}
    assert stock_of(shop, mug["id"]) == 5
    cancelled = events(app)[-1]
    assert (cancelled.type, cancelled.payload["order_id"]) == ("order.cancelled", order["id"])
    assert (cancelled.payload["email"], cancelled.payload["reason"]) == (customer.email, "Lost")
    assert cancelled.payload["total"] == order["total"]


def test_a_cancel_recovery_cannot_finish_waits_for_a_later_pass(
    shop: Shop,
    app: Flask,
    customer: Account,
    make_product: ProductFactory,
    catalog_down: Flask,
) -> None:
    mug = make_product("MUG-1", stock=5)
    cancel_while_catalog_is_down(app.test_client(), catalog_down, customer, mug)
    with catalog_down.app_context():
        failed = recover(now=utc_now() + LATER)
    assert (failed.cancelled, failed.failed) == (0, 1)
    assert rows(app) == {"keys": 1, "events": 1, "cancelling": 1}
    with app.app_context():
        again = recover(now=utc_now() + LATER)
    assert (again.cancelled, again.failed) == (1, 0)
    assert rows(app) == {"keys": 1, "events": 2, "cancelled": 1}
    assert stock_of(shop, mug["id"]) == 5


def test_completed_keys_are_pruned_after_the_retention(
    app: Flask, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    client = app.test_client()
    assert place(client, customer, {mug["id"]: 1}, key="old").status_code == 201
    assert place(client, customer, {mug["id"]: 1}, key="new").status_code == 201
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            update(Order)
            .where(Order.idempotency_key == "old")
            .values(created_at=utc_now() - timedelta(days=2))
        )
    with app.app_context():
        report = recover()
    assert report.pruned_keys == 1
    with app.app_context(), db.reading() as session:
        held = session.scalars(
            select(Order.idempotency_key).where(Order.idempotency_key.is_not(None))
        )
        assert list(held) == ["new"]
    assert rows(app)["placed"] == 2  # the orders stay
    assert place(client, customer, {mug["id"]: 1}, key="old").status_code == 201  # a new order


def test_the_recovery_loop_survives_a_failed_pass(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    passes: list[int] = []

    def one_pass(**_kwargs: Any) -> RecoveryReport:
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("catalog and database both gone")
        stop.set()
        return RecoveryReport()

    monkeypatch.setattr(recovery, "recover", one_pass)
    with app.app_context(), capture_logs() as logs:
        recovery.run_recovery(interval=0.01, stop=stop)
    assert len(passes) == 2
    failed = [record for record in logs if record["message"] == "recovery pass failed"]
    assert len(failed) == 1
    assert "catalog and database both gone" in failed[0]["error"]
