"""The shop's e-mail path as it runs in production, started once for these e2e tests.

Real processes: the users service under Gunicorn, its outbox relay (``flask --app users
outbox relay``) and the notifications worker (``flask --app notifications tasks worker``),
on PostgreSQL databases of their own, a real RabbitMQ reached through a :class:`TcpProxy`
the tests can cut, and a real SMTP server (aiosmtpd) they can stop or make hold a message.
Queue and exchange names are unique to the run and deleted at the end, so concurrent runs
on the shared RabbitMQ never see each other's messages.

All of users' processes share one configuration, ``BROKER_URL`` included, as a deployment's
would: its web process only reports the broker in readiness, it never talks to it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from flotilla.data.migrations import upgrade
from flotilla.messaging.tasks import tasks_state
from flotilla.testing import (
    GunicornServer,
    TcpProxy,
    postgres_database,
    read_json_lines,
    wait_until,
)
from flotilla.testing.mail import MailServer
from flotilla.testing.messaging import (
    Rabbit,
    RelayProcess,
    WorkerProcess,
    amqp_server_url,
)
from notifications import create_app as create_notifications
from notifications.config import NotificationsSettings
from users import create_app as create_users
from users.config import UsersSettings

MAX_RETRIES = 5
PASSWORD = "correct horse battery"


def _settings_env(values: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items()}


@dataclass
class Shop:
    """Handles on every running part, and the operations the tests perform on them."""

    var: Path
    proxy: TcpProxy
    mail: MailServer
    rabbit: Rabbit
    users: GunicornServer
    relay: RelayProcess
    worker_env: dict[str, str]
    users_engine: Engine
    notifications_engine: Engine
    work_queue: str
    dead_queue: str
    worker: WorkerProcess | None = None
    workers_started: int = 0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def start_worker(self) -> WorkerProcess:
        """Start a notifications worker (a new one, with a log of its own) and wait for it."""
        self.workers_started += 1
        log_path = self.var / f"worker-{self.workers_started}.log"
        worker = WorkerProcess(
            "notifications", env=self.worker_env, log_path=log_path, cwd=self.var
        )
        worker.start()
        self.worker = worker
        return worker

    def email_of(self, username: str) -> str:
        """The address an account of this name registers with."""
        return f"{username}@example.com"

    def new_username(self, label: str) -> str:
        """A username no other test or run uses."""
        return f"{label}-{self.run_id}-{uuid.uuid4().hex[:6]}"

    def register(self, username: str, **headers: str) -> requests.Response:
        """POST a registration to the users service."""
        body = {"username": username, "email": self.email_of(username), "password": PASSWORD}
        return requests.post(
            f"{self.users.url}/api/v1/users", json=body, headers=headers, timeout=10
        )

    def event_id_of(self, username: str) -> str:
        """The id of the ``user.registered`` event of ``username`` in the users outbox."""
        query = text("SELECT event_id FROM outbox_events WHERE payload->>'username' = :name")
        with self.users_engine.connect() as connection:
            return str(connection.execute(query, {"name": username}).scalar_one())

    def pending_events(self) -> int:
        """Events in the users outbox the relay has not published yet."""
        query = text("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
        with self.users_engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def sent_count(self, event_id: str) -> int:
        """Rows of ``sent_emails`` recorded for ``event_id`` by the notifications service."""
        query = text("SELECT count(*) FROM sent_emails WHERE event_id = :id")
        with self.notifications_engine.connect() as connection:
            return int(connection.execute(query, {"id": uuid.UUID(event_id)}).scalar_one())

    def wait_for_mail(self, *usernames: str, timeout: float = 30.0) -> None:
        """Wait until each of ``usernames`` has at least one e-mail."""
        emails = [self.email_of(name) for name in usernames]
        wait_until(
            lambda: all(self.mail.to(email) for email in emails),
            timeout=timeout,
            what=f"e-mail to {', '.join(emails)}",
        )

    def settle(self) -> None:
        """Register one more account and wait for its e-mail.

        The relay publishes in creation order and the single worker process takes the
        queue in order, so once this e-mail has arrived, any duplicate of an earlier one
        would have arrived too: the tests can count.
        """
        barrier = self.new_username("barrier")
        assert self.register(barrier).status_code == 201
        self.wait_for_mail(barrier)

    def worker_records(self, message: str) -> list[dict[str, Any]]:
        """The worker log lines (of every worker started) with ``message``."""
        return [
            line
            for path in sorted(self.var.glob("worker-*.log"))
            for line in read_json_lines(path)
            if line.get("message") == message
        ]


def _migrated(app_factory: Callable[[Any], Flask], settings: Any) -> Flask:
    app = app_factory(settings)
    upgrade(app)
    return app


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Every part of the e-mail path, running; stopped and cleaned up after the session."""
    var = tmp_path_factory.mktemp("shop")
    token = uuid.uuid4().hex[:10]
    exchange, service = f"e2e{token}.events", f"e2e{token}-notifications"
    with contextlib.ExitStack() as stack:
        users_db = stack.enter_context(postgres_database())
        notifications_db = stack.enter_context(postgres_database())
        upstream = amqp_server_url().split("@", 1)[1].split("/", 1)[0].partition(":")
        proxy = TcpProxy((upstream[0], int(upstream[2] or 5672)))
        stack.callback(proxy.close)
        mail = stack.enter_context(MailServer())
        rabbit = Rabbit()
        stack.callback(rabbit.close)
        work_queue, dead_queue = f"{service}.tasks", f"{service}.tasks.dead"
        rabbit.forget_later(queues=(work_queue, dead_queue), exchanges=(exchange,))

        common: dict[str, Any] = {"ENVIRONMENT": "test", "EVENTS_EXCHANGE": exchange}
        users_values: dict[str, Any] = {
            **common,
            "DATABASE_URL": users_db,
            "VAR_DIR": var / "users",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 64,
            "RATE_LIMITS_ENABLED": "false",
        }
        users_values |= {
            "BROKER_URL": proxy.url(),
            "BROKER_CONNECT_TIMEOUT": 1.0,
            "OUTBOX_POLL_INTERVAL": 0.05,
            "HEALTH_CHECK_TIMEOUT": 0.5,
        }
        worker_values: dict[str, Any] = {
            **common,
            "SERVICE_NAME": service,
            "DATABASE_URL": notifications_db,
            "VAR_DIR": var / "notifications",
            "BROKER_URL": proxy.url(),
            "BROKER_CONNECT_TIMEOUT": 1.0,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": mail.port,
            "SMTP_STARTTLS": "false",
            "SMTP_TIMEOUT": 5.0,
            "TASK_CONCURRENCY": 1,
            "TASK_MAX_RETRIES": MAX_RETRIES,
            "TASK_RETRY_BACKOFF": 0.2,
            "TASK_RETRY_BACKOFF_MAX": 1.0,
        }
        users_app = _migrated(create_users, UsersSettings(**users_values))
        notifications_app = _migrated(create_notifications, NotificationsSettings(**worker_values))
        # As a deployment does: the queue and its bindings exist before any relay publishes.
        tasks_state(notifications_app).declare_queues()

        users_engine = create_engine(users_db)
        notifications_engine = create_engine(notifications_db)
        stack.callback(users_engine.dispose)
        stack.callback(notifications_engine.dispose)
        for app in (users_app, notifications_app):
            stack.callback(dispose_pool, app)

        users = GunicornServer(
            "users.wsgi:app",
            env={**_settings_env(users_values), "GUNICORN_WORKERS": "1"},
            log_path=var / "users.log",
            cwd=var,
        )
        relay = RelayProcess(
            "users", env=_settings_env(users_values), log_path=var / "relay.log", cwd=var
        )
        shop = Shop(
            var=var,
            proxy=proxy,
            mail=mail,
            rabbit=rabbit,
            users=users,
            relay=relay,
            worker_env=_settings_env(worker_values),
            users_engine=users_engine,
            notifications_engine=notifications_engine,
            work_queue=work_queue,
            dead_queue=dead_queue,
        )
        stack.callback(_stop_all, shop)
        with ThreadPoolExecutor(3) as starting:  # each takes a second or two to import
            parts: list[Callable[[], object]] = [users.start, relay.start, shop.start_worker]
            for future in [starting.submit(part) for part in parts]:
                future.result()
        yield shop


def _stop_all(shop: Shop) -> None:
    """Stop the processes at once: each waits for its own graceful shutdown."""
    parts: list[Callable[[], object]] = [shop.users.stop, shop.relay.stop]
    if shop.worker is not None:
        parts.append(shop.worker.stop)
    with ThreadPoolExecutor(len(parts)) as stopping:
        for future in [stopping.submit(part) for part in parts]:
            future.result()


def dispose_pool(app: Flask) -> None:
    """Close the pool of an app built in this process (for migrating or declaring)."""
    with app.app_context():
        app.extensions["flotilla.db"].engine.dispose()
