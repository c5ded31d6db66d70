"""Reservations under real concurrency: never oversold, never twice, released once.

The catalog runs under Gunicorn (3 workers, 8 threads each) on each database, PostgreSQL and
a SQLite file shared by the worker processes; client threads start their requests together
at a barrier. Outcomes are read from the database itself, not through the service's cache.
"""

from __future__ import annotations

import functools
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from catalog import create_app
from flotilla.auth import public_pem
from flotilla.testing import BACKENDS, GunicornServer, fresh_database, migrate

from .concurrency import (
    STOCK,
    Answer,
    Catalog,
    check_no_oversell,
    http_call,
    new_order_id,
    new_product,
    reservation,
    reserved_in_database,
    stock_in_database,
    together,
)
from .conftest import SIGNING_KEY, make_settings


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    """The catalog under Gunicorn with several workers and threads, on each database."""
    directory = tmp_path_factory.mktemp(f"served-{request.param}")
    with fresh_database(request.param, directory) as url:
        migrate(create_app(make_settings(url, directory)))
        env = {
            "ENVIRONMENT": "test",
            "DATABASE_URL": url,
            "VAR_DIR": str(directory),
            "AUTH_PUBLIC_KEYS": public_pem(SIGNING_KEY.public_key),
            "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
            "GUNICORN_WORKERS": "3",
            "GUNICORN_THREADS": "8",
        }
        log_path = directory / "gunicorn.log"
        engine = create_engine(url)
        try:
            with GunicornServer(
                "catalog.wsgi:app", env=env, log_path=log_path, cwd=directory
            ) as server:
                yield Catalog(http_call(server.url), engine, server.url)
        finally:
            engine.dispose()


@pytest.mark.process
def test_fifty_concurrent_orders_for_ten_in_stock_reserve_exactly_ten(served: Catalog) -> None:
    check_no_oversell(served)


@pytest.mark.process
def test_concurrent_repeats_of_one_order_reserve_once(served: Catalog) -> None:
    product_id = new_product(served)
    order_id = new_order_id()
    body = reservation(order_id, product_id, quantity=3)
    answers = together(
        [lambda: served.call("POST", "/api/v1/reservations", body) for _ in range(20)]
    )
    assert Counter(status for status, _ in answers) == {201: 1, 200: 19}
    assert len({orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for _, body in answers}) == 1
    assert stock_in_database(served, product_id) == STOCK - 3
    assert reserved_in_database(served, product_id) == {order_id: 3}


@pytest.mark.process
def test_concurrent_releases_give_the_stock_back_once(served: Catalog) -> None:
    product_id = new_product(served)
    order_id = new_order_id()
    status, _ = served.call("POST", "/api/v1/reservations", reservation(order_id, product_id, 4))
    assert status == 201
    path = f"/api/v1/reservations/{order_id}"
    answers = together([lambda: served.call("DELETE", path) for _ in range(20)])
    assert {status for status, _ in answers} == {204}
    assert stock_in_database(served, product_id) == STOCK
    assert served.call("GET", path)[1]["state"] == "released"


@pytest.mark.process
def test_a_release_racing_its_reservation_leaves_nothing_held(served: Catalog) -> None:
    product_id = new_product(served)
    order_ids = [new_order_id() for _ in range(10)]
    calls: list[Callable[[], Answer]] = []
    for order_id in order_ids:
        body = reservation(order_id, product_id)
        calls.append(functools.partial(served.call, "POST", "/api/v1/reservations", body))
        calls.append(functools.partial(served.call, "DELETE", f"/api/v1/reservations/{order_id}"))
    answers = together(calls)
    assert {status for status, _ in answers[1::2]} == {204}
    assert {status for status, _ in answers[0::2]} <= {201, 409}
    assert stock_in_database(served, product_id) == STOCK  # whichever came first
    assert reserved_in_database(served, product_id) == {}
    for order_id in order_ids:
        assert served.call("GET", f"/api/v1/reservations/{order_id}")[1]["state"] == "released"


@pytest.mark.process
def test_lines_in_opposite_orders_never_deadlock(served: Catalog) -> None:
    first, second = new_product(served, stock=100), new_product(served, stock=100)
    calls: list[Callable[[], Answer]] = []
    for index in range(40):
        pairs = [(first, 1), (second, 1)] if index % 2 else [(second, 1), (first, 1)]
        body = {
            "order_id": new_order_id(),
            "lines": [{"product_id": product, "quantity": quantity} for product, quantity in pairs],
        }
        calls.append(functools.partial(served.call, "POST", "/api/v1/reservations", body))
    answers = together(calls)
    assert Counter(status for status, _ in answers) == {201: 40}
    assert (stock_in_database(served, first), stock_in_database(served, second)) == (60, 60)


def cache_lookups(served: Catalog) -> Counter[str]:
    """Lookups of the product cache by result, summed over every worker's metrics."""
    with urllib.request.urlopen(f"{served.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "flotilla_cache_requests_total":
                found[sample.labels["result"]] += int(sample.value)
    return found


@pytest.mark.process
def test_cache_lookups_of_every_worker_are_counted(served: Catalog) -> None:
    product_id = new_product(served)
    before = cache_lookups(served)
    for _ in range(6):
        assert served.call("GET", f"/api/v1/products/{product_id}")[0] == 200
    counted = cache_lookups(served) - before
    assert counted["hit"] + counted["miss"] == 6
    assert counted["miss"] <= 3  # at most one per worker: each keeps its own entries
