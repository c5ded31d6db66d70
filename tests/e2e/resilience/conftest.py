"""The shop on PostgreSQL, with handles to break it: kill, freeze, slow down.

users, catalog and orders each run as a real web server on a database of their own, under
each server in turn (the ``shop`` fixture's parameter: Gunicorn, then granian); orders
reaches users through a :class:`~flotilla.testing.TcpProxy` so a test can delay users'
answers at the TCP level, and reaches catalog directly so a test can kill or freeze its
processes. orders runs two workers sharing their breaker through Redis.

:meth:`Shop.ledger` reads the three databases, so each test can check what matters after a
fault: no order without its reservation, no reservation without its order, stock where the
placed orders say it must be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from flotilla.auth import SigningKey
from flotilla.testing import (
    SERVERS,
    ServerProcess,
    TcpProxy,
    free_port,
    migrate,
    postgres_database,
    service_redis,
    wait_until,
    web_server,
)
from orders import create_app as create_orders
from orders.config import OrdersSettings
from users import create_app as create_users
from users.config import UsersSettings

from ..calls import admin_token, call, signed_token

PASSWORD = "correct horse battery"
INITIAL_STOCK = 1_000
FLASK_ORDERS = [sys.executable, "-m", "flask", "--app", "orders.wsgi:app"]


@dataclass(frozen=True)
class Ledger:
    """What the three databases hold, reduced to what the invariants compare."""

    placed: dict[int, int]
    """Quantity of the product per placed order id."""
    pending: int
    reserved: dict[int, int]
    """Quantity of the product per order id catalog holds reserved."""
    stock: int


@dataclass
class Shop:
    """The running services, their databases, and a customer with a product to buy."""

    tmp_path: Path
    databases: dict[str, str]
    envs: dict[str, dict[str, str]]
    servers: dict[str, ServerProcess]
    users_proxy: TcpProxy
    server: str = "gunicorn"
    """The web server every service runs under (``WEB_SERVER``)."""
    token: str = ""
    profileless_token: str = ""
    product_id: int = 0
    frozen: list[int] = field(default_factory=list)

    @property
    def orders_url(self) -> str:
        """Where orders answers."""
        return self.servers["orders"].url

    def place_order(
        self, key: str | None = None, token: str | None = None, **headers: str
    ) -> tuple[int, dict[str, str]]:
        """Order one unit of the product: the status and the problem or order body."""
        status, body, _ = call(
            "POST",
            f"{self.orders_url}/api/v1/orders",
            {"lines": [{"product_id": self.product_id, "quantity": 1}]},
            token=token or self.token,
            headers={"Idempotency-Key": key or uuid.uuid4().hex, **headers},
        )
        return status, body

    def catalog_processes(self) -> list[int]:
        """The catalog server's main process and its workers."""
        master = self.servers["catalog"].pid
        return [master, *children(master)]

    def kill_catalog(self) -> None:
        """SIGKILL catalog's master and workers: connections are refused from now on.

        Returns once every one of them is gone: a worker still dying holds its keep-alive
        connections open, and an order sent on one then fails after it was sent, which
        orders rightly treats as "catalog may have reserved" and leaves for recovery.
        """
        processes = self.catalog_processes()
        for pid in processes:
            os.kill(pid, signal.SIGKILL)
        self.servers["catalog"].process.wait(timeout=10)  # type: ignore[union-attr]
        wait_until(
            lambda: not any(alive(pid) for pid in processes),
            timeout=10,
            what="catalog's workers to die",
        )

    def freeze_catalog(self) -> None:
        """SIGSTOP every catalog process: it accepts connections and never answers."""
        self.frozen = self.catalog_processes()
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw_catalog(self) -> None:
        """SIGCONT what :meth:`freeze_catalog` stopped."""
        for pid in self.frozen:
            os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def start_catalog(self) -> None:
        """Start catalog again on its port (after :meth:`kill_catalog`)."""
        self.servers["catalog"] = serve(
            self.server,
            "catalog",
            self.envs["catalog"],
            self.tmp_path,
            port=self.servers["catalog"].port,
        )

    def recover_orders(self) -> str:
        """Run one pass of ``flask --app orders orders recover``; its output."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "orders.wsgi:app",
                "orders",
                "recover",
                "--once",
            ],
            env={**os.environ, **self.envs["orders"]},
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout + result.stderr

    def ledger(self) -> Ledger:
        """Read the orders and catalog databases."""
        placed = self._rows(
            "orders",
            "SELECT o.id, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id "
            "WHERE o.state = 'placed'",
        )
        pending = self._rows(
            "orders", "SELECT 'pending', count(*) FROM orders WHERE state = 'pending'"
        )
        reserved = self._rows(
            "catalog",
            "SELECT r.order_id, l.quantity FROM reservations r "
            "JOIN reservation_lines l ON l.order_id = r.order_id WHERE r.state = 'reserved'",
        )
        stock = self._rows(
            "catalog", f"SELECT 'stock', stock FROM products WHERE id = {self.product_id}"
        )
        return Ledger(placed, pending["pending"], reserved, stock["stock"])

    def _rows(self, service: str, query: str) -> dict[Any, int]:
        """Two-column ``query`` on ``service``'s database, as a dict."""
        engine = create_engine(self.databases[service])
        try:
            with engine.connect() as connection:
                return {key: int(value) for key, value in connection.execute(text(query))}
        finally:
            engine.dispose()

    def assert_consistent(self) -> Ledger:
        """Nothing lost, nothing doubled: every placed order and only those hold stock."""
        ledger = self.ledger()
        assert ledger.pending == 0, "an order was left half-placed"
        assert ledger.reserved == ledger.placed, "orders and reservations disagree"
        assert ledger.stock == INITIAL_STOCK - sum(ledger.placed.values()), "stock leaked"
        return ledger


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rpartition(")")[2].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (a server's workers), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def serve(
    server_name: str, name: str, env: dict[str, str], tmp_path: Path, *, port: int
) -> ServerProcess:
    """Start ``name`` under ``server_name`` on ``port`` and wait until it is ready."""
    server = web_server(
        server_name,
        f"{name}.wsgi:app",
        env=env,
        log_path=tmp_path / f"{name}.log",
        port=port,
        cwd=tmp_path,
    )
    server.start()
    return server


def environments(
    tmp_path: Path,
    databases: dict[str, str],
    redis_url: str,
    ports: dict[str, int],
    proxy: TcpProxy,
) -> dict[str, dict[str, str]]:
    """Each service's environment: its database, the shared key, its peers."""
    key = SigningKey.generate()
    jwks = f"http://127.0.0.1:{ports['users']}/.well-known/jwks.json"
    common = {"VAR_DIR": str(tmp_path), "ENVIRONMENT": "test", "LOG_LEVEL": "INFO"}
    return {
        "users": {
            **common,
            "DATABASE_URL": databases["users"],
            "AUTH_SIGNING_KEY": key.private_pem(),
            "ARGON2_MEMORY_KIB": "1024",
            "RATE_LIMITS_ENABLED": "false",
            "GUNICORN_WORKERS": "1",
            "GRANIAN_WORKERS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "users-metrics"),
        },
        "catalog": {
            **common,
            "DATABASE_URL": databases["catalog"],
            "AUTH_JWKS_URL": jwks,
            "GUNICORN_WORKERS": "1",
            "GRANIAN_WORKERS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "catalog-metrics"),
        },
        "orders": {
            **common,
            "DATABASE_URL": databases["orders"],
            "REDIS_URL": redis_url,
            "SERVICE_NAME": f"orders-e2e-{uuid.uuid4().hex[:8]}",
            "AUTH_JWKS_URL": jwks,
            "USERS_URL": proxy.http_url,
            # Its own token straight from users, under the name catalog lets in.
            "SERVICE_TOKEN_URL": f"http://127.0.0.1:{ports['users']}/api/v1/service-tokens",
            "SERVICE_CLIENT_ID": "orders",
            "CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
            "HTTP_BREAKER_COOLDOWN": "1",
            "REQUEST_DEADLINE": "5",
            "PENDING_ORDER_TIMEOUT": "6",
            "GUNICORN_WORKERS": "2",
            "GRANIAN_WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "orders-metrics"),
        },
    }


@pytest.fixture(params=sorted(SERVERS, reverse=True))
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """users, catalog and orders running under the parameter's server, a customer signed in,
    a product in stock."""
    server: str = request.param
    with (
        postgres_database() as users_db,
        postgres_database() as catalog_db,
        postgres_database() as orders_db,
        service_redis("orders-e2e") as redis_url,
    ):
        databases = {"users": users_db, "catalog": catalog_db, "orders": orders_db}
        ports = {name: free_port() for name in databases}
        proxy = TcpProxy(("127.0.0.1", ports["users"]))
        envs = environments(tmp_path, databases, redis_url, ports, proxy)
        migrate(create_users(UsersSettings.model_validate(envs["users"])))
        migrate(create_catalog(CatalogSettings.model_validate(envs["catalog"])))
        migrate(create_orders(OrdersSettings.model_validate(envs["orders"])))
        shop = Shop(tmp_path, databases, envs, {}, proxy, server)
        try:
            for name in ("users", "catalog", "orders"):
                shop.servers[name] = serve(server, name, envs[name], tmp_path, port=ports[name])
            stock_the_shop(shop)
            yield shop
        finally:
            shop.thaw_catalog()
            for running in shop.servers.values():
                running.stop()
            proxy.close()


def stock_the_shop(shop: Shop) -> None:
    """Register and sign in a customer; create the product as an administrator."""
    users = shop.servers["users"].url
    status, account, _ = call(
        "POST",
        f"{users}/api/v1/users",
        {"username": "alice", "email": "alice@example.com", "password": PASSWORD},
    )
    assert status == 201, account
    status, tokens, _ = call(
        "POST", f"{users}/api/v1/tokens", {"login": "alice", "password": PASSWORD}
    )
    assert status == 200, tokens
    shop.token = tokens["access_token"]
    key = shop.envs["users"]["AUTH_SIGNING_KEY"]
    shop.profileless_token = signed_token(key, subject=str(account["id"]), roles=("customer",))
    status, product, _ = call(
        "POST",
        f"{shop.servers['catalog'].url}/api/v1/products",
        {"sku": "MUG-1", "name": "Mug", "price": 1025, "currency": "EUR", "stock": INITIAL_STOCK},
        token=admin_token(shop.envs["users"]["AUTH_SIGNING_KEY"]),
    )
    assert status == 201, product
    shop.product_id = product["id"]
    wait_until(lambda: shop.place_order()[0] == 201, timeout=30, what="a first order")
