"""Product reads go through the cache, counted in the metric; every write invalidates them.

Each test runs with the cache in process memory (the session app) and in Redis (a second
app on the same database, under a service name of its own so its keys are cleaned up).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from catalog import create_app
from catalog.config import CatalogSettings
from catalog.service import product_cache
from flotilla.testing import capture_logs, free_port, service_redis

from .conftest import ADMIN, ORDERS, json_of, make_settings, product_body, reserve


@pytest.fixture(params=["memory", "redis"])
def cached(
    request: pytest.FixtureRequest, app: Flask, tmp_path: Path
) -> Iterator[tuple[FlaskClient, str]]:
    """A client of a catalog caching in ``request.param``, and the service's name."""
    if request.param == "memory":
        yield app.test_client(), app.extensions["flotilla.settings"].SERVICE_NAME
        return
    name = f"catalog-cache-{uuid.uuid4().hex[:8]}"
    with service_redis(name) as url:
        other = sibling(app, tmp_path, REDIS_URL=url, SERVICE_NAME=name)
        yield other.test_client(), name
        close(other)


def sibling(app: Flask, tmp_path: Path, **overrides: Any) -> Flask:
    """Another catalog app on ``app``'s database, with ``overrides``."""
    settings: CatalogSettings = app.extensions["flotilla.settings"]
    return create_app(make_settings(settings.DATABASE_URL, tmp_path, **overrides))


def close(app: Flask) -> None:
    """Close ``app``'s connections (its database is another app's)."""
    with app.app_context():
        product_cache.close()
    app.extensions["flotilla.db"].engine.dispose()


def lookups(client: FlaskClient, result: str) -> float:
    """``flotilla_cache_requests_total{cache="products", result=...}`` in the scrape."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "flotilla_cache_requests_total" and sample.labels == {
                "cache": "products",
                "result": result,
            }:
                return sample.value
    return 0.0


def counts(client: FlaskClient) -> tuple[float, float]:
    """(hits, misses) so far."""
    return lookups(client, "hit"), lookups(client, "miss")


def create(client: FlaskClient, sku: str = "MUG-1", **fields: Any) -> dict[str, Any]:
    """A product created as an administrator."""
    response = client.post("/api/v1/products", json=product_body(sku, **fields), headers=ADMIN)
    assert response.status_code == 201
    return json_of(response)


def test_a_second_read_is_a_hit(cached: tuple[FlaskClient, str]) -> None:
    client, _ = cached
    product = create(client)
    hits, misses = counts(client)
    for path in (f"/api/v1/products/{product['id']}", "/api/v1/products/by-sku/mug-1"):
        assert json_of(client.get(path)) == product
        assert json_of(client.get(path)) == product
    assert counts(client) == (hits + 2, misses + 2)


def test_a_hit_answers_the_bytes_the_miss_rendered(cached: tuple[FlaskClient, str]) -> None:
    # The cache keeps the document the schema dumped; a hit sends it as it is.
    client, _ = cached
    product = create(client, "TEA-2")
    miss = client.get(f"/api/v1/products/{product['id']}")
    hit = client.get(f"/api/v1/products/{product['id']}")
    assert miss.status_code == hit.status_code == 200
    assert miss.content_type == hit.content_type == "application/json"
    assert miss.get_data() == hit.get_data()
    assert json_of(hit) == product  # what POST answered, dumped by ProductPublic


def test_an_absent_product_is_a_miss_every_time(cached: tuple[FlaskClient, str]) -> None:
    client, _ = cached
    hits, misses = counts(client)
    for _ in range(2):
        assert client.get("/api/v1/products/4242").status_code == 404
    assert counts(client) == (hits, misses + 2)


WRITES: dict[str, Callable[[FlaskClient, dict[str, Any]], Any]] = {
    "update": lambda client, product: client.patch(
        f"/api/v1/products/{product['id']}", json={"price": 999}, headers=ADMIN
    ),
    "deactivate": lambda client, product: client.delete(
        f"/api/v1/products/{product['id']}", headers=ADMIN
    ),
    "reserve": lambda client, product: reserve(client, 7, {product["id"]: 2}),
    "release": lambda client, product: client.delete("/api/v1/reservations/8", headers=ORDERS),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_write_invalidates_both_reads(cached: tuple[FlaskClient, str], write: str) -> None:
    client, _ = cached
    product = create(client, stock=10)
    assert reserve(client, 8, {product["id"]: 3}).status_code == 201  # what "release" gives back
    paths = (f"/api/v1/products/{product['id']}", "/api/v1/products/by-sku/MUG-1")
    before = [json_of(client.get(path)) for path in paths]  # now cached
    assert WRITES[write](client, product).status_code in (200, 201, 204)
    after = [json_of(client.get(path)) for path in paths]
    assert after[0] == after[1]
    assert after[0] != before[0]
    assert after[0]["updated_at"] > before[0]["updated_at"]
    expected = {"update": ("price", 999), "deactivate": ("active", False)}.get(write)
    if expected:
        assert after[0][expected[0]] == expected[1]
    else:
        assert after[0]["stock"] == {"reserve": 5, "release": 10}[write]


def test_a_created_product_is_found_after_a_miss(cached: tuple[FlaskClient, str]) -> None:
    client, _ = cached
    assert client.get("/api/v1/products/by-sku/MUG-1").status_code == 404
    create(client)
    assert client.get("/api/v1/products/by-sku/MUG-1").status_code == 200


def test_redis_holds_products_under_the_service_name(app: Flask, tmp_path: Path) -> None:
    name = f"catalog-cache-{uuid.uuid4().hex[:8]}"
    with service_redis(name) as url:
        other = sibling(app, tmp_path, REDIS_URL=url, SERVICE_NAME=name)
        client = other.test_client()
        product = create(client)
        client.get(f"/api/v1/products/{product['id']}")
        with redis.Redis.from_url(url) as connection:
            keys = sorted(connection.scan_iter(match=f"flotilla:{name}:cache:products:*"))
            ttl = connection.ttl(keys[0])
        close(other)
    assert keys == [f"flotilla:{name}:cache:products:v1:id:{product['id']}".encode()]
    assert 0 < ttl <= 60


def test_reads_go_on_when_redis_is_down(app: Flask, tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    other = sibling(app, tmp_path, REDIS_URL=down, SERVICE_NAME="catalog-no-redis")
    client = other.test_client()
    errors = lookups(client, "error")
    try:
        with capture_logs() as logs:
            product = create(client)
            for _ in range(3):
                assert json_of(client.get(f"/api/v1/products/{product['id']}")) == product
            changed = client.patch(
                f"/api/v1/products/{product['id']}", json={"price": 1}, headers=ADMIN
            )
            assert changed.status_code == 200
            assert json_of(client.get(f"/api/v1/products/{product['id']}"))["price"] == 1
    finally:
        close(other)
    warnings = [record for record in logs if record["logger"] == "flotilla.cache"]
    assert len(warnings) == 1
    assert lookups(client, "error") == errors + 4
