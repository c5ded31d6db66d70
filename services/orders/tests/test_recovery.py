"""Recovery: orders left pending are released at catalog and deleted; old keys are pruned."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from flotilla.columns import utc_now
from flotilla.testing import capture_logs
from orders import recovery
from orders.models import IdempotencyKey, Order, db
from orders.recovery import RecoveryReport, recover

from .conftest import (
    Account,
    ProductFactory,
    Shop,
    StuckOrder,
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
    shop: Shop, app: Flask, stuck_order: StuckOrder
) -> None:
    with app.app_context():
        report = recover()
    assert (report.released, report.failed) == (0, 0)
    assert rows(app) == {"keys": 1, "events": 0, "pending": 1}
    assert stock_of(shop, stuck_order.product_id) == 3


def test_when_catalog_is_still_down_the_order_waits_abandoned_for_the_next_pass(
    shop: Shop,
    app: Flask,
    stuck_order: StuckOrder,
    catalog_down: Flask,
) -> None:
    with catalog_down.app_context():
        failed = recover(now=utc_now() + LATER)
    assert (failed.released, failed.failed) == (0, 1)
    assert rows(app) == {"keys": 1, "events": 0, "abandoned": 1}
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
    assert result.output.strip() == "released 1 orders, 0 failed, pruned 0 idempotency keys"
    assert stock_of(shop, stuck_order.product_id) == 5


def test_completed_keys_are_pruned_after_the_retention(
    app: Flask, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=5)
    client = app.test_client()
    assert place(client, customer, {mug["id"]: 1}, key="old").status_code == 201
    assert place(client, customer, {mug["id"]: 1}, key="new").status_code == 201
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utc_now() - timedelta(days=2))
        )
    with app.app_context():
        report = recover()
    assert report.pruned_keys == 1
    with app.app_context(), db.reading() as session:
        assert list(session.scalars(select(IdempotencyKey.key))) == ["new"]
    assert rows(app)["placed"] == 2  # the orders stay


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
