"""The whole order path, traced: every process exports to one real OTLP receiver.

nginx (configured as ``make run`` configures it) is the front door of users, catalog and
orders, which run under a real web server (the ``traced_shop`` parameter:
Gunicorn, then granian, both preloading the app before forking workers) on PostgreSQL
databases of their own; orders shares its breaker and rate limits through Redis; its outbox
relay publishes ``order.placed`` to a RabbitMQ exchange unique to the run, and a
notifications worker sends the confirmation to a real SMTP server (its prefork pool beside
Gunicorn, its threads pool beside granian, so both ways it starts the SDK are exercised). Each
process has ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at :class:`OtlpReceiver`, and a name of
its own in ``OTEL_SERVICE_NAME``. The apps built here to migrate the databases get no
``OTEL_*`` settings: the test process itself traces nothing.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from flotilla.auth import SigningKey
from flotilla.messaging.tasks import tasks_state
from flotilla.serving.processes import stop_process, wait_for_http
from flotilla.testing import (
    SERVERS,
    ServerProcess,
    free_port,
    migrate,
    postgres_database,
    read_json_lines,
    service_redis,
    web_server,
)
from flotilla.testing.mail import MailServer
from flotilla.testing.messaging import Rabbit, RelayProcess, WorkerProcess, amqp_server_url
from flotilla.testing.telemetry import OtlpReceiver
from nginx import Tuning, Upstreams, command, render
from notifications import create_app as create_notifications
from notifications.config import NotificationsSettings
from orders import create_app as create_orders
from orders.config import OrdersSettings
from users import create_app as create_users
from users.config import UsersSettings

from ..calls import admin_token, call, signed_token

PASSWORD = "correct horse battery"
WEB_SERVICES = ("users", "catalog", "orders")
POOLS = {"gunicorn": "prefork", "granian": "threads"}
"""The notifications worker's pool beside each web server: each run covers one."""


@dataclass
class TracedShop:
    """The running processes, the receiver of their spans, and what a test orders with."""

    var: Path
    receiver: OtlpReceiver
    mail: MailServer
    servers: dict[str, ServerProcess]
    relay: RelayProcess
    worker: WorkerProcess
    front_door: str = ""
    """nginx's URL, in front of the three services."""
    token: str = ""
    """A customer's token without the profile, so orders asks users who the customer is."""
    product_id: int = 0
    email: str = ""
    stopped: list[str] = field(default_factory=list)

    def place_order(self, traceparent: str) -> tuple[int, dict[str, Any]]:
        """Order one unit through nginx, with the ``traceparent`` a client sent."""
        status, body, _ = call(
            "POST",
            f"{self.front_door}/api/v1/orders",
            {"lines": [{"product_id": self.product_id, "quantity": 1}]},
            token=self.token,
            headers={"Idempotency-Key": uuid.uuid4().hex, "traceparent": traceparent},
        )
        return status, body

    def log_lines(self) -> dict[str, list[dict[str, Any]]]:
        """Every JSON log line so far, by process: the three services, relay and worker."""
        paths = {name: server.log_path for name, server in self.servers.items()}
        paths |= {"relay": self.relay.log_path, "worker": self.worker.log_path}
        return {name: read_json_lines(path) for name, path in paths.items()}

    def stop_catalog(self) -> None:
        """Stop catalog: from now on orders' calls to it fail to connect."""
        self.servers["catalog"].stop()
        self.stopped.append("catalog")


def environments(
    var: Path, databases: dict[str, str], redis_url: str, ports: dict[str, int], run: str
) -> dict[str, dict[str, str]]:
    """Each process's settings, without the ``OTEL_*`` ones."""
    key = SigningKey.generate()
    jwks = f"http://127.0.0.1:{ports['users']}/.well-known/jwks.json"
    common = {"VAR_DIR": str(var), "ENVIRONMENT": "test", "LOG_LEVEL": "INFO"}
    web = {"GUNICORN_WORKERS": "1", "GRANIAN_WORKERS": "1"}
    broker = {"BROKER_URL": amqp_server_url(), "EVENTS_EXCHANGE": f"e2e{run}.events"}
    orders = {
        **common,
        **web,
        **broker,
        "DATABASE_URL": databases["orders"],
        "REDIS_URL": redis_url,
        "SERVICE_NAME": f"orders-e2e-{run}",
        "AUTH_JWKS_URL": jwks,
        "USERS_URL": f"http://127.0.0.1:{ports['users']}",
        # Its own token from users, under the name catalog lets in; both sides derive the
        # development secret from the key under their shared VAR_DIR.
        "SERVICE_TOKEN_URL": f"http://127.0.0.1:{ports['users']}/api/v1/service-tokens",
        "SERVICE_CLIENT_ID": "orders",
        "CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
        "HTTP_RETRIES": "0",
        "HTTP_BREAKER_FAILURES": "2",
        # Shared through Redis (its commands are in the trace): the verdict is kept under
        # the target's name alone, so an open one must expire before the next run starts.
        "HTTP_BREAKER_COOLDOWN": "2",
        "OUTBOX_POLL_INTERVAL": "0.05",
    }
    return {
        "users": {
            **common,
            **web,
            "DATABASE_URL": databases["users"],
            "AUTH_SIGNING_KEY": key.private_pem(),
            "ARGON2_MEMORY_KIB": "1024",
            "RATE_LIMITS_ENABLED": "false",
        },
        "catalog": {**common, **web, "DATABASE_URL": databases["catalog"], "AUTH_JWKS_URL": jwks},
        "orders": orders,
        "notifications": {
            **common,
            **broker,
            "SERVICE_NAME": f"e2e{run}-notifications",
            "DATABASE_URL": databases["notifications"],
            "SMTP_HOST": "127.0.0.1",
            "SMTP_STARTTLS": "false",
            "TASK_CONCURRENCY": "1",
        },
    }


def telemetry(receiver: OtlpReceiver, service: str) -> dict[str, str]:
    """The standard variables that turn tracing on, exporting every 100 ms."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


@pytest.fixture(scope="module", params=sorted(SERVERS, reverse=True))
def traced_shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TracedShop]:
    """Every part of one order's path running, traced, under the parameter's web server."""
    var = tmp_path_factory.mktemp(f"traced-{request.param}")
    run = uuid.uuid4().hex[:10]
    with contextlib.ExitStack() as stack:
        names = (*WEB_SERVICES, "notifications")
        databases = {name: stack.enter_context(postgres_database()) for name in names}
        redis_url = stack.enter_context(service_redis(f"orders-e2e-{run}"))
        receiver = stack.enter_context(OtlpReceiver())
        mail = stack.enter_context(MailServer())
        ports = {name: free_port() for name in WEB_SERVICES}
        envs = environments(var, databases, redis_url, ports, run)
        envs["notifications"]["SMTP_PORT"] = str(mail.port)
        # Both ways a worker starts the SDK: in each forked pool process, or in itself.
        envs["notifications"]["TASK_POOL"] = POOLS[request.param]
        prepare(envs, stack)
        servers = {
            name: web_server(
                request.param,
                f"{name}.wsgi:app",
                env={**envs[name], **telemetry(receiver, name)},
                log_path=var / f"{name}.log",
                port=ports[name],
                cwd=var,
            )
            for name in WEB_SERVICES
        }
        relay_env = {**envs["orders"], **telemetry(receiver, "orders-relay")}
        relay_env["LOG_LEVEL"] = "DEBUG"  # its line per published event
        relay = RelayProcess("orders", env=relay_env, log_path=var / "relay.log", cwd=var)
        worker = WorkerProcess(
            "notifications",
            env={**envs["notifications"], **telemetry(receiver, "notifications")},
            log_path=var / "worker.log",
            cwd=var,
        )
        shop = TracedShop(var, receiver, mail, servers, relay, worker)
        stack.callback(stop_all, shop)
        with ThreadPoolExecutor(5) as starting:
            parts = [*(server.start for server in servers.values()), relay.start, worker.start]
            for future in [starting.submit(part) for part in parts]:
                future.result()
        shop.front_door = start_front_door(var / "nginx", ports, stack)
        stock(shop, envs["users"]["AUTH_SIGNING_KEY"])
        yield shop


def start_front_door(directory: Path, ports: dict[str, int], stack: contextlib.ExitStack) -> str:
    """nginx as ``make run`` configures it (rate limits off: one client address), its URL."""
    upstreams = Upstreams.partial(**{name: [f"127.0.0.1:{port}"] for name, port in ports.items()})
    port = free_port()
    config = render(directory, upstreams, port=port, tuning=Tuning(rate_limits=False))
    with (directory / "nginx.log").open("ab") as log:
        process = subprocess.Popen(command(config), stdout=log, stderr=log)
    stack.callback(stop_process, process, timeout=10)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", timeout=30, process=process)
    return url


def prepare(envs: dict[str, dict[str, str]], stack: contextlib.ExitStack) -> None:
    """Migrate every database; declare the notifications queue before anything publishes."""
    migrate(create_users(UsersSettings.model_validate(envs["users"])))
    migrate(create_catalog(CatalogSettings.model_validate(envs["catalog"])))
    migrate(create_orders(OrdersSettings.model_validate(envs["orders"])))
    notifications = create_notifications(
        NotificationsSettings.model_validate(envs["notifications"])
    )
    migrate(notifications)
    state = tasks_state(notifications)
    state.declare_queues()
    rabbit = Rabbit()
    stack.callback(rabbit.close)
    rabbit.forget_later(
        queues=(state.queue.name, state.dead_letter_queue.name),
        exchanges=(envs["orders"]["EVENTS_EXCHANGE"],),
    )


def stop_all(shop: TracedShop) -> None:
    """Stop every process at once, each with its own graceful shutdown."""
    parts: list[Callable[[], object]] = [
        server.stop for name, server in shop.servers.items() if name not in shop.stopped
    ]
    parts += [shop.relay.stop, shop.worker.stop]
    with ThreadPoolExecutor(len(parts)) as stopping:
        for future in [stopping.submit(part) for part in parts]:
            future.result()


def stock(shop: TracedShop, signing_key: str) -> None:
    """A customer (registered, then a token without profile) and a product in stock."""
    users = shop.servers["users"].url
    username = f"alice-{uuid.uuid4().hex[:6]}"
    shop.email = f"{username}@example.com"
    status, account, _ = call(
        "POST",
        f"{users}/api/v1/users",
        {"username": username, "email": shop.email, "password": PASSWORD},
    )
    assert status == 201, account
    shop.token = signed_token(signing_key, subject=str(account["id"]), roles=("customer",))
    status, product, _ = call(
        "POST",
        f"{shop.servers['catalog'].url}/api/v1/products",
        {"sku": "MUG-1", "name": "Mug", "price": 1025, "currency": "EUR", "stock": 100},
        token=admin_token(signing_key),
    )
    assert status == 201, product
    shop.product_id = product["id"]
