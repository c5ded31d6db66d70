"""The shop the orders benchmark loads: users, catalog and orders under Gunicorn on PostgreSQL.

* users runs on the benchmark's database, whose seeded users include the customer (the
  account the run's token speaks for: orders asks users for it on every order). catalog and
  orders get throw-away databases of their own, migrated as a deployment's pre-start step
  does (``flotilla.testing.migrate``).
* catalog is seeded with :data:`PRODUCTS` products in one set-based INSERT, each with a stock
  no run can exhaust, so no order is ever refused for stock.
* The three start in dependency order: catalog and orders verify tokens with the key set
  users publishes (``AUTH_JWKS_URL``), and orders calls both (``USERS_URL``, ``CATALOG_URL``).
* Each runs the chassis' Gunicorn config of the read benchmark with worker recycling off
  (``GUNICORN_MAX_REQUESTS=0``): at these rates recycling replaces a worker every few seconds
  and moves rates by tens of percent (RESULTS.md, "Findings"), which would blur the ratios.
* :func:`place_orders` places the orders the reads draw from over HTTP, as a client does;
  :func:`send` is that client, and checks every answer's status.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from database import libpq_url
from flotilla import load_settings
from flotilla.testing import migrate, postgres_database
from orders import create_app as create_orders
from orders.config import OrdersSettings
from targets import (
    CHASSIS_GUNICORN,
    GUNICORN_WORKERS,
    Target,
    chassis_env,
    count_worker_boots,
    running,
)

PRODUCTS = 1_000
"""Products an order draws from: enough that concurrent orders seldom lock the same row."""
PRODUCT_STOCK = 1_000_000_000
"""Each product's stock: far beyond what any run orders (the column is a 32-bit integer)."""
JWKS_PATH = "/.well-known/jwks.json"
QUIET = {"LOG_LEVEL": "WARNING", "RATE_LIMITS_ENABLED": "false"}
"""What every users target gets too: warnings only, no rate limits for one client address."""


@dataclass(frozen=True)
class Shop:
    """The running services: where each answers, the seeded product ids, their logs."""

    urls: Mapping[str, str]
    product_ids: tuple[int, int]
    logs: tuple[Path, ...]

    def worker_restarts(self) -> int:
        """Workers forked beyond the first ones, in all three servers, so far."""
        boots = sum(count_worker_boots(log) for log in self.logs)
        return boots - GUNICORN_WORKERS * len(self.logs)


@contextmanager
def running_shop(users: Mapping[str, str], logs: Path) -> Iterator[Shop]:
    """Prepare catalog's and orders' databases, start the three servers; stop them by PID.

    ``users`` is the users service's environment (``targets.users_env``) on the seeded
    database; the databases made here are dropped afterwards.
    """
    with (
        postgres_database() as catalog_database,
        postgres_database() as orders_database,
        ExitStack() as servers,
    ):
        product_ids = prepare_catalog(catalog_database)
        settings = load_settings(OrdersSettings, **QUIET, DATABASE_URL=orders_database)
        migrate(create_orders(settings))

        def start(name: str, env: Mapping[str, str]) -> str:
            env = {**chassis_env(env), "GUNICORN_MAX_REQUESTS": "0"}
            target = Target(name, name, (*CHASSIS_GUNICORN, f"{name}.wsgi:app"), env)
            log = logs / f"{name}.log"
            return servers.enter_context(running(target, log, probe_id=0))  # probes READY_PATH

        urls = {"users": start("users", {**QUIET, **users})}
        jwks = {"AUTH_JWKS_URL": urls["users"] + JWKS_PATH}
        urls["catalog"] = start("catalog", {**QUIET, **jwks, "DATABASE_URL": catalog_database})
        urls["orders"] = start(
            "orders",
            {
                **QUIET,
                **jwks,
                "DATABASE_URL": orders_database,
                "USERS_URL": urls["users"],
                "CATALOG_URL": urls["catalog"],
            },
        )
        yield Shop(urls, product_ids, tuple(logs / f"{name}.log" for name in urls))


def prepare_catalog(database_url: str) -> tuple[int, int]:
    """Migrate catalog, seed :data:`PRODUCTS` products; return the lowest and highest id."""
    migrate(create_catalog(load_settings(CatalogSettings, **QUIET, DATABASE_URL=database_url)))
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute(
            """
            INSERT INTO products (sku, name, description, price, currency, stock, active,
                                  created_at, updated_at)
            SELECT 'BENCH-' || n, 'Product ' || n, '', 100 + n, 'EUR', %(stock)s, true,
                   now(), now()
            FROM generate_series(1, %(count)s) AS n
            """,
            {"stock": PRODUCT_STOCK, "count": PRODUCTS},
        )
        connection.execute("VACUUM ANALYZE products")
        row = connection.execute("SELECT min(id), max(id) FROM products").fetchone()
    assert row is not None
    print(f"seeded {PRODUCTS} products (ids {row[0]}..{row[1]})", flush=True)
    return int(row[0]), int(row[1])


def place_orders(shop: Shop, access_token: str, count: int, customer: int) -> tuple[int, int]:
    """Place ``count`` orders over HTTP, one after another; the lowest and highest id.

    One after another into an empty table, they get consecutive ids, so the reads may draw
    any id between the two; anything else stops the run.
    """
    low, high = shop.product_ids
    ids: list[int] = []
    for number in range(count):
        product_id = low + number % (high - low + 1)
        body = {"lines": [{"product_id": product_id, "quantity": 1}]}
        headers = {"Idempotency-Key": f"placed-{number}"}
        url = f"{shop.urls['orders']}/api/v1/orders"
        order = send(url, 201, access_token=access_token, body=body, headers=headers)
        check_order(order, customer)
        ids.append(order["id"])
    if ids != list(range(ids[0], ids[0] + count)):
        raise RuntimeError(f"the placed orders got ids {ids}, not consecutive ones")
    print(f"placed {count} orders (ids {ids[0]}..{ids[-1]})", flush=True)
    return ids[0], ids[-1]


def check_order(order: Mapping[str, Any], customer: int, order_id: int | None = None) -> None:
    """``order`` must be a placed order of one unit of one product, of ``customer``."""
    lines = order.get("lines") or [{}]
    if (
        order.get("state") != "placed"
        or order.get("user_id") != customer
        or order_id not in (None, order.get("id"))
        or len(lines) != 1
        or lines[0].get("quantity") != 1
    ):
        raise RuntimeError(f"orders answered {order!r}")


def send(
    url: str,
    status: int,
    *,
    access_token: str | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One GET, or POST of ``body``, to ``url``; its JSON answer, which must have ``status``."""
    request = urllib.request.Request(url, method="POST" if body is not None else "GET")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if access_token is not None:
        request.add_header("Authorization", f"Bearer {access_token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # a 127.0.0.1 URL
            answered, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        answered, text = error.code, error.read()
    if answered != status:
        raise RuntimeError(f"{url} answered {answered}, not {status}: {text[:500]!r}")
    answer: dict[str, Any] = json.loads(text)
    return answer
