"""Fixtures: the orders app and its real peers, users and catalog, served over HTTP.

Each backend (SQLite, PostgreSQL) gets, for the session, a users app and a catalog app on
databases of their own, each served by :func:`~flotilla.testing.wsgi.serve_app`, and an
orders app pointed at their URLs. Users signs tokens with a key made for the session;
catalog and orders verify them with the JWKS the served users app publishes, as in
production. Every table of the three services is emptied after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import select
from werkzeug.test import TestResponse

import catalog
import users
from catalog.config import CatalogSettings
from catalog.models import Product, Reservation
from catalog.models import db as catalog_db
from catalog.service import product_cache
from flotilla.auth import SigningKey, issue_access_token
from flotilla.data.migrations import upgrade
from flotilla.resilience.http import DownstreamTimeout
from flotilla.testing import BACKENDS, capture_logs, empty_tables, fresh_database
from flotilla.testing.wsgi import serve_app
from orders import create_app
from orders.config import OrdersSettings
from orders.models import Order, outbox
from orders.models import db as orders_db
from users.config import UsersSettings
from users.models import db as users_db

TEST: dict[str, Any] = {"ENVIRONMENT": "test", "RATE_LIMITS_ENABLED": False}
CLIENT_SECRET = "orders-client-secret-for-the-tests-only-0123456789"
"""orders' client secret, which users knows it by: each service has a VAR_DIR of its own."""
FAST_CALLS: dict[str, Any] = {"HTTP_RETRY_BACKOFF": 0.01, "HTTP_RETRY_BACKOFF_MAX": 0.05}
"""Retries still happen, without the production backoff between them."""


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> OrdersSettings:
    """Test settings for an orders app on ``database_url``."""
    values: dict[str, Any] = {**TEST, **FAST_CALLS, **overrides}
    return OrdersSettings(DATABASE_URL=database_url, VAR_DIR=var_dir, **values)


@dataclass(frozen=True)
class Shop:
    """The three services of one backend: orders in process, its peers over HTTP."""

    backend: str
    directory: Path
    users: Flask
    users_url: str
    catalog: Flask
    catalog_url: str
    orders: Flask
    signing_key: SigningKey

    def orders_settings(self, **overrides: Any) -> OrdersSettings:
        """Settings of an orders app on this shop's orders database, with ``overrides``."""
        settings: OrdersSettings = self.orders.extensions["flotilla.settings"]
        return settings.model_copy(update=overrides)


def _users_app(url: str, directory: Path, key: SigningKey) -> Flask:
    fast_hashing: dict[str, Any] = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64}
    settings = UsersSettings(
        DATABASE_URL=url,
        VAR_DIR=directory,
        AUTH_SIGNING_KEY=key.private_pem(),
        SERVICE_CLIENT_SECRETS=f"orders={CLIENT_SECRET}",
        **TEST,
        **fast_hashing,
    )
    return users.create_app(settings)


def _catalog_app(url: str, directory: Path, jwks_url: str) -> Flask:
    settings = CatalogSettings(DATABASE_URL=url, VAR_DIR=directory, AUTH_JWKS_URL=jwks_url, **TEST)
    return catalog.create_app(settings)


@pytest.fixture(scope="session", params=BACKENDS)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """Users, catalog and orders on fresh, migrated databases of one backend."""
    directory = tmp_path_factory.mktemp(f"shop-{request.param}")
    key = SigningKey.generate()
    with ExitStack() as stack:

        def database(name: str) -> tuple[str, Path]:
            (directory / name).mkdir()
            url = stack.enter_context(fresh_database(request.param, directory / name))
            return url, directory / name

        users_app = _users_app(*database("users"), key)
        users_url = _serve_migrated(stack, users_app)
        jwks_url = f"{users_url}/.well-known/jwks.json"
        catalog_app = _catalog_app(*database("catalog"), jwks_url)
        catalog_url = _serve_migrated(stack, catalog_app)
        orders_app = create_app(
            make_settings(
                *database("orders"),
                USERS_URL=users_url,
                CATALOG_URL=catalog_url,
                AUTH_JWKS_URL=jwks_url,
                SERVICE_TOKEN_URL=f"{users_url}/api/v1/service-tokens",
                SERVICE_CLIENT_SECRET=CLIENT_SECRET,
            )
        )
        upgrade(orders_app)
        stack.callback(orders_app.extensions["flotilla.db"].engine.dispose)
        yield Shop(
            request.param,
            directory,
            users_app,
            users_url,
            catalog_app,
            catalog_url,
            orders_app,
            key,
        )


def _serve_migrated(stack: ExitStack, app: Flask) -> str:
    """Migrate ``app``, serve it until ``stack`` closes, close its pool after; its URL."""
    upgrade(app)
    stack.callback(app.extensions["flotilla.db"].engine.dispose)
    return stack.enter_context(serve_app(app))


@pytest.fixture
def app(shop: Shop) -> Iterator[Flask]:
    """The orders app; afterwards every table of the three services is empty again."""
    yield shop.orders
    for service_app, database in (
        (shop.orders, orders_db),
        (shop.catalog, catalog_db),
        (shop.users, users_db),
    ):
        with service_app.app_context():
            empty_tables(database.engine, database.metadata)
    with shop.catalog.app_context():
        product_cache.clear()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the orders app."""
    return app.test_client()


OrdersAppFactory = Callable[..., Flask]


@pytest.fixture
def make_orders_app(shop: Shop, app: Flask) -> Iterator[OrdersAppFactory]:
    """More orders apps on the same database, e.g. pointed at a catalog that goes down.

    Each has its own clients (and circuit breakers), so failures they provoke never
    reach the shared app's breakers.
    """
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app(shop.orders_settings(**overrides))
        made.append(other)
        return other

    yield make
    for other in made:
        other.extensions["flotilla.db"].engine.dispose()


@pytest.fixture
def catalog_down(shop: Shop, make_orders_app: OrdersAppFactory) -> Flask:
    """An orders app on the same database whose catalog has stopped: its port refuses."""
    with serve_app(shop.catalog) as url:
        pass
    return make_orders_app(CATALOG_URL=url)


@dataclass(frozen=True)
class Account:
    """A registered account and the Authorization header of a token for it."""

    id: int
    username: str
    email: str
    display_name: str | None
    roles: tuple[str, ...]
    headers: dict[str, str]


def access_token(
    shop: Shop, user_id: int, roles: tuple[str, ...], profile: dict[str, str] | None = None
) -> str:
    """A token for ``user_id`` signed with the shop's key.

    Without ``profile`` it is a token as issued before tokens carried the customer's e-mail
    and name, for which orders asks users; with one, as a login issues it now.
    """
    settings: UsersSettings = shop.users.extensions["flotilla.settings"]
    return issue_access_token(
        shop.signing_key,
        subject=str(user_id),
        roles=roles,
        issuer=settings.AUTH_ISSUER,
        audience=settings.AUTH_AUDIENCE,
        lifetime=timedelta(minutes=15),
        profile=profile,
    )


@pytest.fixture
def make_account(shop: Shop, app: Flask) -> Callable[..., Account]:
    """Register accounts in the users service, with a token each."""

    def make(username: str, *, roles: tuple[str, ...] = ("customer",)) -> Account:
        email = f"{username}@example.com"
        display_name = username.capitalize()
        with shop.users.app_context():
            user = users.service.register_user(
                username=username,
                email=email,
                password="correct horse battery",
                display_name=display_name,
                roles=roles,
            )
        token = access_token(shop, user.id, roles)
        headers = {"Authorization": f"Bearer {token}"}
        return Account(user.id, username, email, display_name, roles, headers)

    return make


@pytest.fixture
def customer(make_account: Callable[..., Account]) -> Account:
    """A signed-in customer."""
    return make_account("carol")


@pytest.fixture
def other_customer(make_account: Callable[..., Account]) -> Account:
    """Another signed-in customer."""
    return make_account("oscar")


@pytest.fixture
def admin(make_account: Callable[..., Account]) -> Account:
    """A signed-in administrator."""
    return make_account("ada", roles=("customer", "admin"))


ProductFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def make_product(shop: Shop, app: Flask) -> ProductFactory:
    """Create products in catalog through its API, as an administrator."""
    headers = {"Authorization": f"Bearer {access_token(shop, 1, ('customer', 'admin'))}"}
    client = shop.catalog.test_client()

    def make(sku: str, *, price: int = 1250, stock: int = 10, **fields: Any) -> dict[str, Any]:
        body = {"sku": sku, "name": f"Product {sku}", "price": price, "currency": "EUR"}
        response = client.post(
            "/api/v1/products", json={**body, "stock": stock, **fields}, headers=headers
        )
        assert response.status_code == 201, response.data
        return json_of(response)

    return make


def stock_of(shop: Shop, product_id: int) -> int:
    """The product's stock as catalog's database holds it now."""
    with shop.catalog.app_context(), catalog_db.reading() as session:
        product = session.get(Product, product_id)
    assert product is not None
    return product.stock


def reservation_states(shop: Shop) -> list[str]:
    """The state of every reservation catalog holds, by order id."""
    query = select(Reservation.state).order_by(Reservation.order_id)
    with shop.catalog.app_context(), catalog_db.reading() as session:
        return list(session.scalars(query))


def compensations(outcome: str) -> float:
    """How many failed placings were undone with ``outcome`` so far in this process."""
    value = REGISTRY.get_sample_value("orders_compensations_total", {"outcome": outcome})
    return value or 0.0


def json_of(response: TestResponse) -> dict[str, Any]:
    """The JSON object a response carries."""
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    return body


def place(
    client: FlaskClient,
    account: Account,
    lines: dict[int, int],
    *,
    key: str | None = "key-1",
) -> TestResponse:
    """POST an order of ``{product_id: quantity}`` as ``account`` with Idempotency-Key ``key``."""
    body = {"lines": [{"product_id": product, "quantity": qty} for product, qty in lines.items()]}
    headers = dict(account.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/orders", json=body, headers=headers)


def rows(app: Flask) -> dict[str, int]:
    """How many orders (by state), idempotency keys and outbox events exist."""
    with app.app_context(), orders_db.reading() as session:
        keys = select(Order.id).where(Order.idempotency_key.is_not(None))
        counts = {"keys": len(session.scalars(keys).all())}
        counts["events"] = len(session.execute(select(outbox.table)).all())
        for order in session.scalars(select(Order)):
            counts[order.state] = counts.get(order.state, 0) + 1
    return counts


def events(app: Flask) -> list[Any]:
    """Every outbox row, oldest first."""
    with app.app_context(), orders_db.reading() as session:
        return list(session.execute(select(outbox.table).order_by(outbox.table.c.position)))


def order_ids(app: Flask, state: str) -> list[int]:
    """The ids of orders in ``state`` now."""
    query = select(Order.id).where(Order.state == state).order_by(Order.id)
    with app.app_context(), orders_db.reading() as session:
        return list(session.scalars(query))


@dataclass(frozen=True)
class StuckOrder:
    """An order left behind by a failed request, and the product it holds stock of."""

    order_id: int
    product_id: int
    log_messages: list[str]


@pytest.fixture
def stuck_order(
    shop: Shop,
    customer: Account,
    make_product: ProductFactory,
    make_orders_app: OrdersAppFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> StuckOrder:
    """An order whose reservation timed out after catalog reserved, and whose release failed.

    The request (Idempotency-Key ``stuck``, two of a product with a stock of 5) reserves;
    then catalog stops before its answer arrives, as if frozen: the reservation times out
    (504) and the release cannot reach catalog, so the order is left ``abandoned`` for
    recovery, its key free.
    """
    mug = make_product("MUG-1", stock=5)
    catalog_running = ExitStack()
    url = catalog_running.enter_context(serve_app(shop.catalog))
    orders = make_orders_app(CATALOG_URL=url)
    catalog_client = orders.extensions["orders.catalog"]
    reserve = catalog_client.reserve

    def reserve_then_catalog_stops(order_id: int, lines: Any) -> Any:
        reserve(order_id, lines)
        catalog_running.close()
        raise DownstreamTimeout("catalog did not answer.", target="catalog", maybe_processed=True)

    monkeypatch.setattr(catalog_client, "reserve", reserve_then_catalog_stops)
    with capture_logs() as logs:
        response = place(orders.test_client(), customer, {mug["id"]: 2}, key="stuck")
    assert response.status_code == 504
    (order_id,) = order_ids(shop.orders, "abandoned")
    return StuckOrder(order_id, mug["id"], [record["message"] for record in logs])


CatalogAppFactory = Callable[[], Flask]


@pytest.fixture
def make_catalog_app(shop: Shop, app: Flask) -> Iterator[CatalogAppFactory]:
    """More catalog apps on catalog's database, for a test to add faults to (lost answers).

    Serve one with :func:`~flotilla.testing.wsgi.serve_app` and point an orders app from
    ``make_orders_app`` at it.
    """
    made: list[Flask] = []

    def make() -> Flask:
        other = catalog.create_app(shop.catalog.extensions["flotilla.settings"])
        made.append(other)
        return other

    yield make
    for other in made:
        other.extensions["flotilla.db"].engine.dispose()
