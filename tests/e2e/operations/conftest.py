"""The shop behind its front door, started once per web server for the operations tests.

nginx, configured by ``scripts/nginx.py`` exactly as ``make run`` configures it, fronts one
users replica and two replicas each of catalog and orders; every replica is a real web server
on its own port, and the replicas of a service share its PostgreSQL database, as pods of a
deployment do. The whole shop runs once under each server (the ``shop`` fixture's parameter:
Gunicorn, then granian), so every test of this directory runs against both. orders calls
users and catalog-a directly, on their own ports, as in ``make run``: only clients go
through the front door. The tests signal or kill catalog-b,
orders-b and nginx, and route around replicas; each test first has the replicas of the
service it loads running and in nginx's rotation (:meth:`FrontDoor.ensure_serving`), so no
test depends on what an earlier one broke.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from flotilla.auth import SigningKey
from flotilla.serving.processes import stop_process, wait_for_http
from flotilla.testing import (
    SERVERS,
    ServerProcess,
    free_port,
    migrate,
    postgres_database,
    read_json_lines,
    wait_until,
    web_server,
)
from nginx import Tuning, Upstreams, command, render
from orders import create_app as create_orders
from orders.config import OrdersSettings
from users import create_app as create_users
from users.config import UsersSettings

from ..calls import admin_token, call

ROOT = Path(__file__).resolve().parents[3]


REPLICAS: dict[str, tuple[str, ...]] = {
    "users": ("users",),
    "catalog": ("catalog-a", "catalog-b"),
    "orders": ("orders-a", "orders-b"),
}
WORKERS = {"users": 1, "catalog": 2, "orders": 1}
"""Workers per replica: few, on a shared 2-core machine; catalog has two so that a SIGHUP has
several workers to replace."""
THREADS = 4
"""Threads per worker, Gunicorn's and granian's (the chassis default, written out for the
slow-client test)."""
INITIAL_STOCK = 1_000_000
REQUEST_DEADLINE = 3
PENDING_ORDER_TIMEOUT = 4
"""Seconds before ``orders recover`` releases an order a killed request left pending (it
must exceed orders' REQUEST_DEADLINE: no request is still running by then)."""
NO_RATE_LIMITS = Tuning(rate_limits=False)
"""nginx's per-address rate limits off: every test client comes from 127.0.0.1."""
PASSWORD = "correct horse battery"
FLASK_ORDERS = (sys.executable, "-m", "flask", "--app", "orders.wsgi:app")


@dataclass
class FrontDoor:
    """The running shop: its replicas, nginx, the databases, a customer and a product."""

    tmp_path: Path
    databases: dict[str, str]
    envs: dict[str, dict[str, str]]
    ports: dict[str, int]
    server: str = "gunicorn"
    """The web server every replica runs under (``WEB_SERVER``)."""
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None
    nginx_port: int = 0
    nginx_directory: Path = Path()
    routed: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(REPLICAS))
    """The replicas nginx sends each service's requests to."""
    token: str = ""
    customer_id: int = 0
    product_id: int = 0

    @property
    def url(self) -> str:
        """Where the front door answers."""
        return f"http://127.0.0.1:{self.nginx_port}"

    def product_path(self) -> str:
        """The product read every load test sends."""
        return f"/api/v1/products/{self.product_id}"

    def read_path(self, service: str) -> str:
        """A read that ``service`` answers 200 (with the customer's token)."""
        paths = {
            "users": f"/api/v1/users/{self.customer_id}",
            "catalog": self.product_path(),
            "orders": "/api/v1/orders",
        }
        return paths[service]

    def start(self, name: str) -> None:
        """Start replica ``name`` on its port and wait until it is ready."""
        service = name.split("-", maxsplit=1)[0]
        server = web_server(
            self.server,
            f"{service}.wsgi:app",
            env=self.envs[service],
            log_path=self.tmp_path / f"{name}.log",
            port=self.ports[name],
            cwd=self.tmp_path,
        )
        server.start()
        self.servers[name] = server

    def processes(self, name: str) -> list[int]:
        """Replica ``name``'s main process (Gunicorn's master, granian's) and its workers."""
        master = self.servers[name].pid
        return [master, *workers(master)]

    def kill(self, name: str) -> None:
        """SIGKILL every process of replica ``name``, as a crashed node would lose them."""
        for pid in self.processes(name):
            os.kill(pid, signal.SIGKILL)
        process = self.servers[name].process
        assert process is not None
        process.wait(timeout=10)

    def served(self, name: str, path: str) -> int:
        """Requests for paths starting with ``path`` in replica ``name``'s access log."""
        records = read_json_lines(self.tmp_path / f"{name}.log")
        return sum(
            1
            for record in records
            if record.get("message") == "request finished"
            and str(record.get("path", "")).startswith(path)
        )

    def retried_away_from(self, name: str) -> int:
        """Requests nginx sent to replica ``name`` first and then to another, per its access log."""
        address = f"127.0.0.1:{self.ports[name]}"
        records = read_json_lines(self.nginx_directory / "access.log")
        return sum(
            1
            for record in records
            if str(record.get("upstream_addr", "")).startswith(f"{address}, ")
        )

    def upstreams(self) -> Upstreams:
        """Where nginx sends each service's requests: the :attr:`routed` replicas."""
        return Upstreams.partial(
            **{
                service: [f"127.0.0.1:{self.ports[name]}" for name in names]
                for service, names in self.routed.items()
            }
        )

    def render_nginx(self) -> Path:
        """Write nginx's configuration for :meth:`upstreams`; its main file."""
        return render(
            self.nginx_directory, self.upstreams(), port=self.nginx_port, tuning=NO_RATE_LIMITS
        )

    def route(self, service: str, names: tuple[str, ...]) -> None:
        """Send ``service``'s requests to ``names`` only: render, reload nginx, wait for it.

        Returns once nginx's old workers have exited, so no request goes elsewhere after.
        """
        nginx = self.nginx
        assert nginx is not None
        self.routed[service] = names
        self.render_nginx()
        before = set(workers(nginx.pid))
        nginx.send_signal(signal.SIGHUP)
        wait_until(lambda: before.isdisjoint(workers(nginx.pid)), what="nginx's old workers")

    def ensure_serving(self, service: str) -> None:
        """Restart ``service``'s replicas that are down; wait until nginx sends to every one.

        nginx takes a replica it could not reach out of rotation for ``fail_timeout`` (10 s),
        so a restarted replica gets requests again only after that (or after a reload).
        """
        for name in REPLICAS[service]:
            process = self.servers[name].process
            if process is not None and process.poll() is not None:
                self.start(name)
        if self.routed[service] != REPLICAS[service]:
            self.route(service, REPLICAS[service])
        path = self.read_path(service)
        for name in REPLICAS[service]:
            wait_until(
                partial(self._reaches, name, path),
                timeout=30,
                what=f"nginx to send requests to {name}",
            )

    def _reaches(self, name: str, path: str) -> bool:
        before = self.served(name, path)
        for _ in range(4):
            status, _, _ = call("GET", f"{self.url}{path}", token=self.token)
            assert status == 200, status
        return self.served(name, path) > before

    def recover_orders(self) -> str:
        """One pass of ``flask --app orders orders recover``; what it printed."""
        result = subprocess.run(
            [*FLASK_ORDERS, "orders", "recover", "--once"],
            env={**os.environ, **self.envs["orders"]},
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    def rows(self, service: str, query: str) -> list[tuple[Any, ...]]:
        """The rows of ``query`` on ``service``'s database."""
        engine = create_engine(self.databases[service])
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(query))]
        finally:
            engine.dispose()


def workers(master: int) -> list[int]:
    """Direct child processes of ``master`` (a server's workers, nginx's), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{master}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def environments(
    tmp_path: Path, databases: dict[str, str], ports: dict[str, int]
) -> dict[str, dict[str, str]]:
    """Each service's environment: its database, the shared key, its peers, behind one proxy."""
    key = SigningKey.generate()
    users_url = f"http://127.0.0.1:{ports['users']}"
    common = {
        "VAR_DIR": str(tmp_path),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
        "PROXY_HOPS": "1",
        "GUNICORN_THREADS": str(THREADS),
        "GRANIAN_BLOCKING_THREADS": str(THREADS),
        "AUTH_JWKS_URL": f"{users_url}/.well-known/jwks.json",
    }
    envs = {
        "users": {
            "AUTH_SIGNING_KEY": key.private_pem(),
            "ARGON2_MEMORY_KIB": "1024",
            "RATE_LIMITS_ENABLED": "false",
        },
        "catalog": {},
        "orders": {
            "USERS_URL": users_url,
            "CATALOG_URL": f"http://127.0.0.1:{ports['catalog-a']}",
            "SERVICE_TOKEN_URL": f"{users_url}/api/v1/service-tokens",
            "REQUEST_DEADLINE": str(REQUEST_DEADLINE),
            "PENDING_ORDER_TIMEOUT": str(PENDING_ORDER_TIMEOUT),
        },
    }
    for service, env in envs.items():
        env |= {
            **common,
            "DATABASE_URL": databases[service],
            "GUNICORN_WORKERS": str(WORKERS[service]),
            "GRANIAN_WORKERS": str(WORKERS[service]),
        }
    del envs["users"]["AUTH_JWKS_URL"]  # users signs; it verifies with its own keys
    return envs


@pytest.fixture(scope="module", params=sorted(SERVERS, reverse=True))
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FrontDoor]:
    """Every replica (under the parameter's server) and nginx running, a customer signed in,
    a product in stock."""
    server: str = request.param
    tmp_path = tmp_path_factory.mktemp(f"operations-{server}")
    with (
        postgres_database() as users_db,
        postgres_database() as catalog_db,
        postgres_database() as orders_db,
    ):
        databases = {"users": users_db, "catalog": catalog_db, "orders": orders_db}
        ports = {name: free_port() for names in REPLICAS.values() for name in names}
        shop = FrontDoor(
            tmp_path, databases, environments(tmp_path, databases, ports), ports, server
        )
        migrate(create_users(UsersSettings.model_validate(shop.envs["users"])))
        migrate(create_catalog(CatalogSettings.model_validate(shop.envs["catalog"])))
        migrate(create_orders(OrdersSettings.model_validate(shop.envs["orders"])))
        try:
            start_everything(shop)
            stock_the_shop(shop)
            yield shop
        finally:
            stop_everything(shop)


def start_everything(shop: FrontDoor) -> None:
    """Every replica at once (the others fetch users' keys on the first token), then nginx."""
    names = [name for names in REPLICAS.values() for name in names]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        list(pool.map(shop.start, names))
    shop.nginx_port = free_port()
    shop.nginx_directory = shop.tmp_path / "nginx"
    config = shop.render_nginx()
    with (shop.tmp_path / "nginx.log").open("ab") as log:
        shop.nginx = subprocess.Popen(command(config), stdout=log, stderr=log)
    wait_for_http(f"{shop.url}/healthz", timeout=30, process=shop.nginx)


def stop_everything(shop: FrontDoor) -> None:
    """nginx, then every replica at once (each drains on SIGTERM), waiting for each by PID."""
    if shop.nginx is not None:
        stop_process(shop.nginx, timeout=10)
    servers = list(shop.servers.values())
    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        list(pool.map(lambda server: server.stop(), servers))


def stock_the_shop(shop: FrontDoor) -> None:
    """Register and sign in a customer through the front door; create the product."""
    account = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    status, body, _ = call("POST", f"{shop.url}/api/v1/users", account)
    assert status == 201, body
    shop.customer_id = body["id"]
    status, body, _ = call(
        "POST", f"{shop.url}/api/v1/tokens", {"login": "alice", "password": PASSWORD}
    )
    assert status == 200, body
    shop.token = body["access_token"]
    product = {"sku": "MUG-1", "name": "Mug", "price": 1025, "currency": "EUR"}
    status, body, _ = call(
        "POST",
        f"{shop.url}/api/v1/products",
        {**product, "stock": INITIAL_STOCK},
        token=admin_token(shop.envs["users"]["AUTH_SIGNING_KEY"]),
    )
    assert status == 201, body
    shop.product_id = body["id"]
    key = f"first-{uuid.uuid4().hex}"
    order = {"lines": [{"product_id": shop.product_id, "quantity": 1}]}
    headers = {"Idempotency-Key": key}
    url = f"{shop.url}/api/v1/orders"
    wait_until(
        lambda: call("POST", url, order, token=shop.token, headers=headers)[0] == 201,
        timeout=30,
        what="a first order through the front door",
    )
