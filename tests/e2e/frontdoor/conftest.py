"""The shop behind its front door: real nginx in front of users, catalog and orders.

Users, catalog and orders run under Gunicorn on PostgreSQL databases of their own, with
``PROXY_HOPS=1`` as behind any proxy, and are started once for the whole package (the
console is not: its route answers nginx's 502 here). Two nginx processes run the
configuration ``scripts/nginx.py`` renders from ``deploy/nginx/``, as ``make run`` does: one
serves the API over plain HTTP, the other over HTTPS with its plain port redirecting there.
Tests that need upstreams which fail on purpose, or static files of their own, start their
own nginx (:class:`Nginx`).

Requests go out through :func:`fetch`, which can send from another loopback address
(127.0.0.2, ...) so that a test sees the client address travel to the service, and keeps
every response header, so that a test can count duplicates.
"""

from __future__ import annotations

import gzip
import http.client
import ssl
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from flotilla.auth import SigningKey
from flotilla.serving.processes import stop_process, wait_for_http
from flotilla.testing import (
    GunicornServer,
    free_port,
    migrate,
    postgres_database,
    read_json_lines,
    wait_until,
)
from nginx import Tuning, Upstreams, command, render
from orders import create_app as create_orders
from orders.config import OrdersSettings
from users import create_app as create_users
from users.config import UsersSettings

from ..calls import admin_token

ROOT = Path(__file__).resolve().parents[3]


PASSWORD = "correct horse battery"
PRODUCTS = 12
"""Enough products that a page of them is worth compressing (gzip_min_length 1024)."""
SERVICES = ("users", "catalog", "orders")


@dataclass(frozen=True)
class Answer:
    """One HTTP response with every header as sent, duplicates included."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The one value of ``name``, or None; more than one fails the test."""
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self) -> dict[str, Any]:
        """The body as JSON, decompressed if nginx gzipped it."""
        raw = gzip.decompress(self.body) if self.header("Content-Encoding") == "gzip" else self.body
        body: dict[str, Any] = orjson.loads(raw)
        return body


def fetch(
    url: str,
    method: str = "GET",
    *,
    body: bytes | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    source: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """Send one request on a new connection from ``source``; the path is sent as written."""
    parts = urlsplit(url)
    sent = dict(headers or {})
    if isinstance(body, Mapping):
        body = orjson.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    if token:
        sent["Authorization"] = f"Bearer {token}"
    connection = _connection(parts.scheme, parts.netloc, source, tls)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def _connection(
    scheme: str, netloc: str, source: str, tls: ssl.SSLContext | None
) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(
            netloc, timeout=30, source_address=(source, 0), context=tls
        )
    return http.client.HTTPConnection(netloc, timeout=30, source_address=(source, 0))


def new_request_id() -> str:
    """A request id no other request of the run carries."""
    return f"test-{uuid.uuid4().hex}"


@dataclass
class Nginx:
    """nginx running a configuration rendered by ``scripts/nginx.py``, stopped by PID."""

    config: Path
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        directory: Path,
        upstreams: Upstreams,
        *,
        tls_port: int | None = None,
        tuning: Tuning | None = None,
        static: Path | None = None,
        brotli: bool | None = None,
    ) -> Nginx:
        """Render into ``directory``, start nginx, wait until its ``/healthz`` answers."""
        port = free_port()
        config = render(
            directory,
            upstreams,
            port=port,
            tls_port=tls_port,
            tuning=tuning or Tuning(),
            static=static,
            brotli=brotli,
        )
        with (directory / "nginx.log").open("ab") as log:
            process = subprocess.Popen(command(config), stdout=log, stderr=log)
        started = cls(config, port, process)
        try:
            wait_for_http(f"{started.url}/healthz", timeout=30, process=process)
        except BaseException:
            started.stop()
            raise
        return started

    @property
    def url(self) -> str:
        """Where the plain HTTP port answers."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM: nginx's fast shutdown."""
        stop_process(self.process, timeout=10)

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access log lines written so far."""
        path = self.config.parent / "access.log"
        return read_json_lines(path) if path.exists() else []

    def logged(self, request_id: str) -> dict[str, Any]:
        """The access log line of ``request_id``, once nginx has written it."""
        wait_until(
            lambda: any(line["request_id"] == request_id for line in self.access_log()),
            timeout=10,
            what=f"nginx's access log line of {request_id}",
        )
        return next(line for line in self.access_log() if line["request_id"] == request_id)


@dataclass
class Shop:
    """The three services, the two front doors, and what the tests sign in with."""

    servers: dict[str, GunicornServer]
    http: Nginx
    https: Nginx
    tls_port: int
    token: str = ""
    admin_token: str = ""
    product_ids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The API over plain HTTP."""
        return self.http.url

    @property
    def https_url(self) -> str:
        """The API over HTTPS."""
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def certificate(self) -> Path:
        """The development certificate the HTTPS front door serves."""
        return self.https.config.parent / "tls" / "certificate.pem"

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts only the generated certificate."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def access_lines(self, service: str, request_id: str) -> list[dict[str, Any]]:
        """``service``'s Gunicorn access-log lines of ``request_id``."""
        return [
            record
            for record in self.servers[service].log_records()
            if record.get("request_id") == request_id
            and record.get("message") == "request finished"
        ]

    def served_by(self, request_id: str) -> list[str]:
        """The services that logged ``request_id``, once one has (Gunicorn logs after sending)."""
        wait_until(
            lambda: any(self.access_lines(name, request_id) for name in SERVICES),
            timeout=10,
            what=f"a service's access log line of {request_id}",
        )
        return [name for name in SERVICES if self.access_lines(name, request_id)]


def environments(
    tmp_path: Path, databases: Mapping[str, str], ports: Mapping[str, int], key: SigningKey
) -> dict[str, dict[str, str]]:
    """Each service's environment: its database, one trusted proxy hop, its peers."""
    users_url = f"http://127.0.0.1:{ports['users']}"
    common = {
        "VAR_DIR": str(tmp_path),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
        "PROXY_HOPS": "1",
        "GUNICORN_WORKERS": "1",
        "RATE_LIMITS_ENABLED": "false",
    }
    envs = {
        "users": {"AUTH_SIGNING_KEY": key.private_pem(), "ARGON2_MEMORY_KIB": "1024"},
        "catalog": {"AUTH_JWKS_URL": f"{users_url}/.well-known/jwks.json"},
        "orders": {
            "AUTH_JWKS_URL": f"{users_url}/.well-known/jwks.json",
            "USERS_URL": users_url,
            "CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
            "SERVICE_TOKEN_URL": f"{users_url}/api/v1/service-tokens",
        },
    }
    return {
        name: {
            **common,
            **env,
            "DATABASE_URL": databases[name],
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"{name}-metrics"),
        }
        for name, env in envs.items()
    }


def migrate_all(envs: Mapping[str, Mapping[str, str]]) -> None:
    """Bring every service's database to the latest revision."""
    migrate(create_users(UsersSettings.model_validate(envs["users"])))
    migrate(create_catalog(CatalogSettings.model_validate(envs["catalog"])))
    migrate(create_orders(OrdersSettings.model_validate(envs["orders"])))


@pytest.fixture(scope="package")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The services running, both front doors in front of them, a customer and products."""
    tmp_path = tmp_path_factory.mktemp("frontdoor")
    with (
        postgres_database() as users,
        postgres_database() as catalog,
        postgres_database() as orders,
    ):
        databases = {"users": users, "catalog": catalog, "orders": orders}
        ports = {name: free_port() for name in SERVICES}
        key = SigningKey.generate()
        envs = environments(tmp_path, databases, ports, key)
        migrate_all(envs)
        servers: dict[str, GunicornServer] = {}
        doors: list[Nginx] = []
        try:
            for name in SERVICES:
                servers[name] = GunicornServer(
                    f"{name}.wsgi:app",
                    env=envs[name],
                    log_path=tmp_path / f"{name}.log",
                    port=ports[name],
                    cwd=tmp_path,
                )
                servers[name].start()
            upstreams = Upstreams(
                users=[f"127.0.0.1:{ports['users']}"],
                catalog=[f"127.0.0.1:{ports['catalog']}"],
                orders=[f"127.0.0.1:{ports['orders']}"],
                console=[f"127.0.0.1:{free_port()}"],  # nothing listens there
            )
            doors.append(Nginx.start(tmp_path / "http", upstreams))
            tls_port = free_port()
            doors.append(Nginx.start(tmp_path / "https", upstreams, tls_port=tls_port))
            shop = Shop(
                servers, doors[0], doors[1], tls_port, admin_token=admin_token(key.private_pem())
            )
            stock(shop)
            yield shop
        finally:
            for door in doors:
                door.stop()
            for server in servers.values():
                server.stop()


def stock(shop: Shop) -> None:
    """A customer signed in and products in the catalog, made on the services directly."""
    users = shop.servers["users"].url
    account = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    answer = fetch(f"{users}/api/v1/users", "POST", body=account)
    assert answer.status == 201, answer.body
    login = {"login": "alice", "password": PASSWORD}
    answer = fetch(f"{users}/api/v1/tokens", "POST", body=login)
    assert answer.status == 200, answer.body
    shop.token = answer.json()["access_token"]
    for number in range(PRODUCTS):
        product = {
            "sku": f"MUG-{number}",
            "name": f"Mug number {number}, stoneware, dishwasher safe",
            "price": 1025,
            "currency": "EUR",
            "stock": 100,
        }
        answer = fetch(
            f"{shop.servers['catalog'].url}/api/v1/products",
            "POST",
            body=product,
            token=shop.admin_token,
        )
        assert answer.status == 201, answer.body
        shop.product_ids.append(answer.json()["id"])


def upstreams_of(users: Sequence[str], *, others: str) -> Upstreams:
    """Upstreams where only users' addresses matter; the others point at ``others``."""
    return Upstreams(users=users, catalog=[others], orders=[others], console=[others])
