"""Concurrent calls to a running catalog and checks on what its database holds afterwards.

Shared by the tests that run the catalog under Gunicorn and those that call it in process.
"""

from __future__ import annotations

import functools
import itertools
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from flask import Flask
from sqlalchemy import Engine, text

from .conftest import ADMIN, ORDERS, product_body

CLIENTS = 50
STOCK = 10

Answer = tuple[int, dict[str, Any]]
_order_ids = itertools.count(1)


def new_order_id() -> int:
    """An order id no other call of this process has used."""
    return next(_order_ids)


class Caller(Protocol):
    """Sends one request to a catalog: (status, JSON body or {})."""

    def __call__(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer: ...


@dataclass
class Catalog:
    """A way to call a running catalog, and its database."""

    call: Caller
    database: Engine
    url: str = ""
    """The server's base URL, when it runs in its own processes."""


def http_call(base_url: str) -> Caller:
    """Call ``base_url`` over HTTP, a new connection per request: (status, JSON body or {}).

    Without ``headers`` a call carries the orders service's token, as reservations need.
    """

    def call(
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = orjson.dumps(body) if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or ORDERS)}
        request = urllib.request.Request(
            base_url + path, data=data, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, raw = error.code, error.read()
        return status, orjson.loads(raw) if raw else {}

    return call


def app_call(app: Flask) -> Caller:
    """Call ``app`` in process; each call its own test client, so threads share nothing."""

    def call(
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        response = app.test_client().open(path, method=method, json=body, headers=headers or ORDERS)
        return response.status_code, response.get_json(silent=True) or {}

    return call


def new_product(catalog: Catalog, stock: int = STOCK) -> int:
    """The id of a new product with ``stock``."""
    sku = f"HOT-{new_order_id()}"
    status, body = catalog.call("POST", "/api/v1/products", product_body(sku, stock=stock), ADMIN)
    assert status == 201, body
    product_id: int = body["id"]
    return product_id


def together(calls: list[Callable[[], Answer]]) -> list[Answer]:
    """Run ``calls`` on as many threads, released at once by a barrier; answers in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Answer]) -> Answer:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def reservation(order_id: int, product_id: int, quantity: int = 1) -> dict[str, Any]:
    """A reservation body of one line."""
    return {"order_id": order_id, "lines": [{"product_id": product_id, "quantity": quantity}]}


def stock_in_database(catalog: Catalog, product_id: int) -> int:
    """The product's stock as committed."""
    with catalog.database.connect() as connection:
        query = text("SELECT stock FROM products WHERE id = :id")
        return int(connection.execute(query, {"id": product_id}).scalar_one())


def reserved_in_database(catalog: Catalog, product_id: int) -> dict[int, int]:
    """``{order_id: quantity}`` of the product's lines whose reservation is held."""
    query = text(
        "SELECT r.order_id, l.quantity FROM reservations r"
        " JOIN reservation_lines l ON l.order_id = r.order_id"
        " WHERE l.product_id = :id AND r.state = 'reserved'"
    )
    with catalog.database.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(query, {"id": product_id})}


def check_no_oversell(catalog: Catalog) -> None:
    """50 orders of one unit each at once, for 10 in stock."""
    product_id = new_product(catalog)
    order_ids = [new_order_id() for _ in range(CLIENTS)]
    post = functools.partial(catalog.call, "POST", "/api/v1/reservations")
    answers = together([functools.partial(post, reservation(o, product_id)) for o in order_ids])
    assert Counter(status for status, _ in answers) == {201: STOCK, 409: CLIENTS - STOCK}
    refusals = {body["type"] for status, body in answers if status == 409}
    assert refusals == {"urn:flotilla:problem:insufficient-stock"}
    winners = {
        order_id for order_id, (status, _) in zip(order_ids, answers, strict=True) if status == 201
    }
    assert stock_in_database(catalog, product_id) == 0
    assert reserved_in_database(catalog, product_id) == dict.fromkeys(winners, 1)
