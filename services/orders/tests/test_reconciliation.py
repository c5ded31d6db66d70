"""Stock catalog holds for orders that do not exist comes back; placed orders keep theirs.

Also the service identity end to end: orders gets its own token from users (client
credentials) and catalog's reservations take it, while an attacker without it is refused.
"""

from __future__ import annotations

from datetime import timedelta

import urllib3
from flask import Flask

from flotilla.data.columns import utc_now
from orders.clients import catalog_client
from orders.recovery import recover

from .conftest import Account, ProductFactory, Shop, json_of, place, reservation_states, stock_of

LATER = timedelta(minutes=5)  # beyond PENDING_ORDER_TIMEOUT (60 s)


def test_recovery_releases_stock_held_for_an_order_orders_never_created(
    shop: Shop, app: Flask, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=10)
    placed = place(app.test_client(), customer, {mug["id"]: 2}, key="kept")
    assert placed.status_code == 201
    with app.app_context():  # a reservation no order of ours stands behind
        catalog_client().reserve(987_654, [{"product_id": mug["id"], "quantity": 5}])
    assert stock_of(shop, mug["id"]) == 3

    with app.app_context():
        recent = recover()  # younger than PENDING_ORDER_TIMEOUT: its order may be coming
    assert recent.orphans_released == 0
    with app.app_context():
        report = recover(now=utc_now() + LATER)
    assert report.orphans_released == 1
    assert stock_of(shop, mug["id"]) == 8
    assert reservation_states(shop) == ["reserved", "released"]  # the placed order, the orphan
    with app.app_context():
        assert recover(now=utc_now() + LATER).orphans_released == 0  # nothing twice
    assert json_of(placed)["state"] == "placed"


def test_without_orders_credential_catalog_refuses_every_reservation_call(
    shop: Shop, app: Flask, customer: Account, make_product: ProductFactory
) -> None:
    mug = make_product("MUG-1", stock=10)
    placed = json_of(place(app.test_client(), customer, {mug["id"]: 2}, key="kept"))
    http = urllib3.PoolManager(retries=False)
    base = f"{shop.catalog_url}/api/v1/reservations"
    made_up = {"order_id": 555_555, "lines": [{"product_id": mug["id"], "quantity": 8}]}
    attempts = [
        http.request("POST", base, json=made_up),
        http.request("POST", base, json=made_up, headers=customer.headers),
        http.request("DELETE", f"{base}/{placed['id']}", headers=customer.headers),
        *(http.request("DELETE", f"{base}/{placed['id'] + n}") for n in range(1, 4)),
    ]
    assert [response.status for response in attempts] == [401, 403, 403, 401, 401, 401]
    assert stock_of(shop, mug["id"]) == 8
    # The next order is not blocked by a tombstone, and the placed one keeps its stock.
    assert place(app.test_client(), customer, {mug["id"]: 1}, key="next").status_code == 201
    assert reservation_states(shop) == ["reserved", "reserved"]
