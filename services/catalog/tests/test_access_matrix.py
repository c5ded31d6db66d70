"""Who may call what: every route of the app, every kind of caller → the expected status.

The table is the catalog's access policy in one place. A route added to the app but not to
the table fails ``test_every_route_is_in_the_matrix``, so no endpoint ships without a
decision about who may call it. Reading products needs no token; changing them needs an
administrator. Reservations take the orders service's own token and nothing else (see
``catalog.reservations``): no user, administrators included, and no other service. The rows
of the reservations are the outside tester's attacks (reserve for a made-up order, release
the next orders' ids, release a placed order's stock) made by every caller but orders.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flotilla.web.swagger_ui import SWAGGER_UI_URL

from .conftest import ADMIN, CUSTOMER, ORDERS, json_of, product_body, service_bearer

SWAGGER_UI_FILE = "swagger-ui.css"

ROLES = ("anonymous", "customer", "admin", "orders", "other service")
HEADERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "customer": CUSTOMER,
    "admin": ADMIN,
    "orders": ORDERS,
    "other service": service_bearer("notifications"),
}

# (method, rule): expected status for (anonymous, customer, admin, orders, other service)
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200, 200),
    ("GET", "/healthz/live"): (200, 200, 200, 200, 200),
    ("GET", "/healthz/ready"): (200, 200, 200, 200, 200),
    ("GET", "/metrics"): (200, 200, 200, 200, 200),  # internal port; nginx does not route it
    ("GET", "/openapi.json"): (200, 200, 200, 200, 200),
    ("GET", "/docs"): (200, 200, 200, 200, 200),
    ("GET", f"{SWAGGER_UI_URL}<name>"): (200, 200, 200, 200, 200),  # its files, served locally
    ("POST", "/api/v1/products"): (401, 403, 201, 403, 403),
    ("GET", "/api/v1/products"): (200, 200, 200, 200, 200),
    ("GET", "/api/v1/products/<product_id>"): (200, 200, 200, 200, 200),
    ("GET", "/api/v1/products/by-sku/<sku>"): (200, 200, 200, 200, 200),
    ("PATCH", "/api/v1/products/<product_id>"): (401, 403, 200, 403, 403),
    ("DELETE", "/api/v1/products/<product_id>"): (401, 403, 204, 403, 403),
    ("POST", "/api/v1/reservations"): (401, 403, 403, 201, 403),
    ("GET", "/api/v1/reservations"): (401, 403, 403, 200, 403),
    ("GET", "/api/v1/reservations/<order_id>"): (401, 403, 403, 200, 403),
    ("DELETE", "/api/v1/reservations/<order_id>"): (401, 403, 403, 204, 403),
}
HELD_WINDOW = "?reserved_after=2000-01-01T00:00:00Z&reserved_before=2100-01-01T00:00:00Z"

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
    assert client.post("/api/v1/reservations", json=body, headers=ORDERS).status_code == 201
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
        .replace("<name>", SWAGGER_UI_FILE)
    )
    if (method, rule) == ("GET", "/api/v1/reservations"):
        path += HELD_WINDOW
    body = BODIES[(method, rule)](product) if (method, rule) in BODIES else None
    with client.open(path, method=method, json=body, headers=HEADERS[role]) as response:
        assert response.status_code == MATRIX[(method, rule)][ROLES.index(role)], response.data


def test_a_refused_write_changes_nothing(client: FlaskClient, product: dict[str, Any]) -> None:
    path = f"/api/v1/products/{product['id']}"
    for headers in ({}, CUSTOMER):
        client.patch(path, json={"price": 1}, headers=headers)
        client.delete(path, headers=headers)
        client.post("/api/v1/products", json=product_body("SNEAKY"), headers=headers)
    assert json_of(client.get(path)) == product
    assert client.get("/api/v1/products/by-sku/SNEAKY").status_code == 404


def test_a_refused_reservation_call_holds_and_frees_nothing(
    client: FlaskClient, product: dict[str, Any]
) -> None:
    # The three attacks, by everyone but orders: stock for an order nobody placed, releasing
    # the next order ids ahead of orders, and releasing an order's held stock.
    made_up = {"order_id": 999_999, "lines": [{"product_id": product["id"], "quantity": 50}]}
    for role in ("anonymous", "customer", "admin", "other service"):
        headers = HEADERS[role]
        assert client.post("/api/v1/reservations", json=made_up, headers=headers).status_code in (
            401,
            403,
        )
        for order_id in (1, 2, 3):
            response = client.delete(f"/api/v1/reservations/{order_id}", headers=headers)
            assert response.status_code in (401, 403)
    assert json_of(client.get(f"/api/v1/products/{product['id']}")) == product  # stock 99
    assert client.get("/api/v1/reservations/999999", headers=ORDERS).status_code == 404
    assert client.get("/api/v1/reservations/2", headers=ORDERS).status_code == 404  # no tombstone
    held = json_of(client.get("/api/v1/reservations/1", headers=ORDERS))
    assert held["state"] == "reserved"
    # With orders' token the next order reserves as usual: nothing was tombstoned ahead of it.
    body = {"order_id": 2, "lines": [{"product_id": product["id"], "quantity": 1}]}
    assert client.post("/api/v1/reservations", json=body, headers=ORDERS).status_code == 201
