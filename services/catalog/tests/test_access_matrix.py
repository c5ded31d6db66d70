"""Who may call what: every route of the app, every kind of caller → the expected status.

The table is the catalog's access policy in one place. A route added to the app but not to
the table fails ``test_every_route_is_in_the_matrix``, so no endpoint ships without a
decision about who may call it. Reading products needs no token; changing them needs an
administrator. Reservations take no token at all: they are internal, reachable only by the
orders service (see ``catalog.reservations``), so every caller gets the same answer here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import ADMIN, CUSTOMER, json_of, product_body

ROLES = ("anonymous", "customer", "admin")
HEADERS: dict[str, dict[str, str]] = {"anonymous": {}, "customer": CUSTOMER, "admin": ADMIN}

# (method, rule): expected status for (anonymous, customer, admin)
MATRIX: dict[tuple[str, str], tuple[int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200),
    ("GET", "/healthz/live"): (200, 200, 200),
    ("GET", "/healthz/ready"): (200, 200, 200),
    ("GET", "/metrics"): (200, 200, 200),  # internal port; nginx does not route it
    ("GET", "/openapi.json"): (200, 200, 200),
    ("GET", "/docs"): (200, 200, 200),
    ("POST", "/api/v1/products"): (401, 403, 201),
    ("GET", "/api/v1/products"): (200, 200, 200),
    ("GET", "/api/v1/products/<product_id>"): (200, 200, 200),
    ("GET", "/api/v1/products/by-sku/<sku>"): (200, 200, 200),
    ("PATCH", "/api/v1/products/<product_id>"): (401, 403, 200),
    ("DELETE", "/api/v1/products/<product_id>"): (401, 403, 204),
    ("POST", "/api/v1/reservations"): (201, 201, 201),
    ("GET", "/api/v1/reservations/<order_id>"): (200, 200, 200),
    ("DELETE", "/api/v1/reservations/<order_id>"): (204, 204, 204),
}

_order_ids = itertools.count(1000)
_skus = itertools.count()

BODIES: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("POST", "/api/v1/products"): lambda _: product_body(f"NEW-{next(_skus)}"),
    ("PATCH", "/api/v1/products/<product_id>"): lambda _: {"name": "Renamed"},
    ("POST", "/api/v1/reservations"): lambda product: {
        "order_id": next(_order_ids),
        "lines": [{"product_id": product["id"], "quantity": 1}],
    },
}


def routes_of(app: Flask) -> set[tuple[str, str]]:
    """Every (method, rule) the app answers, with converters reduced to their names."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for argument in rule.arguments:
            start = path.find("<")
            end = path.find(">", start)
            path = f"{path[:start]}<{argument}>{path[end + 1 :]}"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    assert routes_of(app) == set(MATRIX)


@pytest.fixture
def product(client: FlaskClient) -> dict[str, Any]:
    """A product in stock, with a reservation (order 1) held on it."""
    response = client.post("/api/v1/products", json=product_body(stock=100), headers=ADMIN)
    created = json_of(response)
    body = {"order_id": 1, "lines": [{"product_id": created["id"], "quantity": 1}]}
    assert client.post("/api/v1/reservations", json=body).status_code == 201
    return json_of(client.get(f"/api/v1/products/{created['id']}"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "rule"), list(MATRIX))
def test_access(
    client: FlaskClient, product: dict[str, Any], method: str, rule: str, role: str
) -> None:
    path = (
        rule.replace("<product_id>", str(product["id"]))
        .replace("<sku>", product["sku"])
        .replace("<order_id>", "1")
    )
    body = BODIES[(method, rule)](product) if (method, rule) in BODIES else None
    response = client.open(path, method=method, json=body, headers=HEADERS[role])
    assert response.status_code == MATRIX[(method, rule)][ROLES.index(role)], response.data


def test_a_refused_write_changes_nothing(client: FlaskClient, product: dict[str, Any]) -> None:
    path = f"/api/v1/products/{product['id']}"
    for headers in ({}, CUSTOMER):
        client.patch(path, json={"price": 1}, headers=headers)
        client.delete(path, headers=headers)
        client.post("/api/v1/products", json=product_body("SNEAKY"), headers=headers)
    assert json_of(client.get(path)) == product
    assert client.get("/api/v1/products/by-sku/SNEAKY").status_code == 404
