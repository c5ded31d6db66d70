"""Fixtures: the catalog app on SQLite and on PostgreSQL, emptied after every test; tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from catalog import create_app
from catalog.config import CatalogSettings
from catalog.models import Product, db
from catalog.service import product_cache
from flotilla.auth import SigningKey, issue_access_token, public_pem
from flotilla.testing import app_fixture, empty_tables

SIGNING_KEY = SigningKey.generate()
"""Stands in for the users service's key: catalog verifies with its public half."""


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> CatalogSettings:
    """Test settings for a catalog app on ``database_url``, trusting :data:`SIGNING_KEY`."""
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "RATE_LIMITS_ENABLED": False,
        "AUTH_PUBLIC_KEYS": public_pem(SIGNING_KEY.public_key),
        **overrides,
    }
    return CatalogSettings(DATABASE_URL=database_url, VAR_DIR=var_dir, **values)


migrated_app = app_fixture(create_app, make_settings, scope="session", migrate=True)
"""One catalog app per backend for the session, migrated to head."""


@pytest.fixture
def app(migrated_app: Flask) -> Iterator[Flask]:
    """The catalog app with empty tables and an empty cache."""
    yield migrated_app
    with migrated_app.app_context():
        empty_tables(db.engine, db.metadata)
        product_cache.clear()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the catalog app."""
    return app.test_client()


TOKEN_LIFETIME = timedelta(hours=12)
"""The tokens below are made once, when the tests are collected, and a whole run outlasts the
15 minutes of a user's token and the 5 of a service's: they would expire before the last test
uses them. What expiry does is tested in the chassis' own tests."""


def bearer(*roles: str, user_id: int = 1) -> dict[str, str]:
    """The Authorization header of a token for ``user_id`` with ``roles``, as users issues it."""
    token = issue_access_token(
        SIGNING_KEY,
        subject=str(user_id),
        roles=roles,
        issuer="urn:flotilla:users",
        audience="flotilla",
        lifetime=TOKEN_LIFETIME,
    )
    return {"Authorization": f"Bearer {token}"}


def service_bearer(client_id: str) -> dict[str, str]:
    """The Authorization header of a service's own token, as users issues it to ``client_id``."""
    token = issue_access_token(
        SIGNING_KEY,
        subject=client_id,
        roles=["service"],
        issuer="urn:flotilla:users",
        audience="flotilla",
        lifetime=TOKEN_LIFETIME,
        client_id=client_id,
    )
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer("customer", "admin", user_id=1)
CUSTOMER = bearer("customer", user_id=2)
ORDERS = service_bearer("orders")
"""The orders service: the one caller the reservations API takes."""


def json_of(response: TestResponse) -> dict[str, Any]:
    """The JSON object a response carries."""
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    return body


def product_body(sku: str = "MUG-1", **fields: Any) -> dict[str, Any]:
    """A valid ProductCreate body."""
    return {"sku": sku, "name": f"Product {sku}", "price": 1250, "currency": "EUR", **fields}


@pytest.fixture
def make_product(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Create products through the API as an administrator; returns the product JSON."""

    def make(sku: str = "MUG-1", **fields: Any) -> dict[str, Any]:
        response = client.post("/api/v1/products", json=product_body(sku, **fields), headers=ADMIN)
        assert response.status_code == 201, response.data
        return json_of(response)

    return make


def reserve(
    client: FlaskClient, order_id: int, lines: dict[int, int] | list[tuple[int, int]]
) -> TestResponse:
    """POST a reservation of ``{product_id: quantity}`` (or pairs) for ``order_id``."""
    pairs = lines.items() if isinstance(lines, dict) else lines
    body = {
        "order_id": order_id,
        "lines": [{"product_id": product, "quantity": quantity} for product, quantity in pairs],
    }
    return client.post("/api/v1/reservations", json=body, headers=ORDERS)


def stock_of(app: Flask, product_id: int) -> int:
    """The product's stock as the database holds it now (not through the cache)."""
    with app.app_context(), db.reading() as session:
        product = session.get(Product, product_id)
    assert product is not None
    return product.stock
