"""What an event costs the machine: CPU per event of the relay, the worker, RabbitMQ, PostgreSQL.

Used by ``bench/outbox.py``. The orders outbox relay (``flask --app orders outbox relay``)
and the notifications worker (``flask --app notifications tasks worker``) run as processes
with their defaults, on throw-away PostgreSQL databases and RabbitMQ queues. This process
commits ``order.placed`` events to the orders outbox, one transaction each as placing an
order does, at a fixed rate; the worker sends each confirmation (``.eml`` files as ``make
run`` writes them without ``SMTP_HOST``, or to an aiosmtpd server here over SMTP). When every
e-mail is recorded, the CPU each process used meanwhile (utime + stime from
``/proc/<pid>/stat``, the process and all its descendants, so Celery's pool processes
count) is divided by the number of events.

Robust to other load on the machine, as far as CPU time is: a process's CPU time is its
own, however busy the cores. Two figures are not only ours: RabbitMQ's server serves every
user of the machine's broker, and PostgreSQL's is summed over the backends serving the
relay's and the worker's connections (its background writers are left out).
"""

from __future__ import annotations

import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask

from flotilla.data.migrations import upgrade
from flotilla.messaging.tasks import tasks_state
from flotilla.testing import postgres_database
from flotilla.testing.mail import MailServer
from flotilla.testing.messaging import Rabbit, RelayProcess, WorkerProcess, amqp_server_url
from notifications import create_app as create_notifications
from notifications.config import NotificationsSettings
from orders import create_app as create_orders
from orders.config import OrdersSettings
from orders.models import db as orders_db
from orders.models import outbox as orders_outbox
from procfs import read_argv, read_stat, read_stats

COMPONENTS = ("relay", "worker", "rabbitmq", "postgresql")


@dataclass(frozen=True)
class EventCost:
    """CPU milliseconds per event by component, when idle, and how fast e-mails followed."""

    mail: str
    events: int
    rate: float
    seconds: float
    per_event_ms: Mapping[str, float]
    idle_ms_per_second: Mapping[str, float]
    latencies: tuple[float, ...]
    """Seconds from an event's commit to its e-mail being recorded as sent."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    stat = read_stat(pid)
    return stat.own_s if stat is not None else 0.0


def tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    parents = {pid: stat.ppid for pid, stat in read_stats().items()}
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def rabbitmq_pids() -> list[int]:
    """The RabbitMQ server's Erlang VM on this machine (shared with every other user)."""
    found = []
    for pid in read_stats():
        argv = read_argv(pid)
        if argv and "beam" in argv[0] and any("rabbit" in part for part in argv):
            found.append(pid)
    return found


def postgres_backends(server_url: str, databases: Sequence[str], names: Sequence[str]) -> list[int]:
    """Backends serving ``databases`` for the applications ``names`` (never this process)."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = ANY(%s) AND application_name = ANY(%s)",
            (list(databases), list(names)),
        ).fetchall()
    return [pid for (pid,) in rows]


Reading = dict[str, dict[int, float]]
"""CPU seconds so far of each process, per component."""


class CpuMeter:
    """CPU seconds of each component's processes, which are listed again at every reading."""

    def __init__(self, groups: Mapping[str, Callable[[], list[int]]]) -> None:
        self.groups = groups

    def read(self) -> Reading:
        """Seconds of CPU used so far, per process of each component."""
        return {
            name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()
        }


def spent(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds per component between two readings (a process born in between: all of it)."""
    return {
        name: sum(now - before[name].get(pid, 0.0) for pid, now in after[name].items())
        for name in after
    }


@dataclass
class _System:
    """The running processes, the app that writes events, and where to look."""

    relay: RelayProcess
    worker: WorkerProcess
    orders: Flask
    orders_url: str
    notifications_url: str
    service: str

    def meter(self) -> CpuMeter:
        """A meter over the relay's, the worker's, RabbitMQ's and their PostgreSQL processes."""
        server = self.orders_url.rsplit("/", 1)[0] + "/postgres"
        databases = [url.rsplit("/", 1)[1] for url in (self.orders_url, self.notifications_url)]
        names = ["orders", self.service]  # the relay's and the worker's application_name
        return CpuMeter(
            {
                "relay": lambda: tree(_pid(self.relay)),
                "worker": lambda: tree(_pid(self.worker)),
                "rabbitmq": rabbitmq_pids,
                "postgresql": lambda: postgres_backends(server, databases, names),
            }
        )


def order_payload(number: int) -> dict[str, Any]:
    """A realistic ``order.placed`` v1 payload: two lines, a name with non-ASCII letters."""
    mug = {"product_id": 7, "name": "Mug", "quantity": 2, "unit_price": 1025, "line_total": 2050}
    tea = {"product_id": 9, "name": "Tea", "quantity": 1, "unit_price": 1100, "line_total": 1100}
    return {
        "order_id": number,
        "user_id": 42,
        "email": f"customer{number}@example.com",
        "display_name": "Zoë Ångström",
        "placed_at": "2026-11-21T10:00:00+00:00",
        "currency": "EUR",
        "lines": [mug, tea],
        "total": 3150,
    }


def commit_events(app: Flask, first: int, count: int, rate: float) -> None:
    """Commit ``count`` events, one transaction each, ``rate`` per second (0: at once)."""
    started = time.perf_counter()
    with app.app_context():
        for offset in range(count):
            if rate:
                delay = started + offset / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            orders_outbox.add_event(
                orders_db.session, "order.placed", order_payload(first + offset)
            )
            orders_db.session.commit()


def wait_for_mail(url: str, total: int, timeout: float) -> None:
    """Wait until the worker recorded ``total`` e-mails as sent, on one connection."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute("SELECT count(*) FROM sent_emails").fetchone()
            if row is not None and row[0] >= total:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{total - (row or [0])[0]} e-mails missing after {timeout} s")
            time.sleep(0.1)


def latencies(orders_url: str, notifications_url: str, skip: int) -> tuple[float, ...]:
    """Seconds from each event's commit to its e-mail's record, after the first ``skip``."""
    query = "SELECT event_id, created_at FROM outbox_events ORDER BY position OFFSET %s"
    with psycopg.connect(orders_url) as connection:
        created: dict[uuid.UUID, datetime] = dict(connection.execute(query, (skip,)).fetchall())
    with psycopg.connect(notifications_url) as connection:
        rows = connection.execute("SELECT event_id, sent_at FROM sent_emails").fetchall()
    sent: dict[uuid.UUID, datetime] = dict(rows)
    return tuple(sorted((sent[key] - created[key]).total_seconds() for key in created))


def measure_event_cost(
    var: Path, *, events: int, rate: float, mail: str, idle_seconds: float, warm_up: int = 100
) -> EventCost:
    """Start the relay and the worker, warm them up, then measure them idle and busy."""
    with _running_system(var, mail) as system:
        commit_events(system.orders, 0, warm_up, 0)
        wait_for_mail(system.notifications_url, warm_up, timeout=120)
        meter = system.meter()
        before = meter.read()
        time.sleep(idle_seconds)
        idle = spent(before, meter.read())
        before, started = meter.read(), time.perf_counter()
        commit_events(system.orders, warm_up, events, rate)
        wait_for_mail(system.notifications_url, warm_up + events, timeout=max(120, events / 10))
        elapsed = time.perf_counter() - started
        busy = spent(before, meter.read())
        delays = latencies(system.orders_url, system.notifications_url, warm_up)
    return EventCost(
        mail=mail,
        events=events,
        rate=rate,
        seconds=elapsed,
        per_event_ms={name: busy[name] / events * 1000 for name in COMPONENTS},
        idle_ms_per_second={name: idle[name] / idle_seconds * 1000 for name in COMPONENTS},
        latencies=delays,
    )


def _pid(process: WorkerProcess) -> int:
    assert process.process is not None
    return process.process.pid


@contextlib.contextmanager
def _running_system(var: Path, mail: str) -> Iterator[_System]:
    """Throw-away databases and queues; the relay and the worker running; all removed after."""
    token = uuid.uuid4().hex[:8]
    exchange, service = f"bench{token}.events", f"bench{token}-notifications"
    rabbit = Rabbit()
    rabbit.forget_later(queues=(f"{service}.tasks", f"{service}.tasks.dead"), exchanges=(exchange,))
    var.mkdir(parents=True)
    try:
        with contextlib.ExitStack() as stack:
            orders_url = stack.enter_context(postgres_database())
            notifications_url = stack.enter_context(postgres_database())
            common = {"ENVIRONMENT": "test", "EVENTS_EXCHANGE": exchange, "VAR_DIR": str(var)}
            common |= {"BROKER_URL": amqp_server_url()}
            orders_env = {**common, "DATABASE_URL": orders_url}
            worker_env = {**common, "SERVICE_NAME": service, "DATABASE_URL": notifications_url}
            if mail == "smtp":
                server = stack.enter_context(MailServer())
                worker_env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port)}
                worker_env |= {"SMTP_STARTTLS": "false"}
            orders = _prepare(orders_env, worker_env)
            stack.callback(_dispose, orders)
            relay = RelayProcess("orders", env=orders_env, log_path=var / "relay.log", cwd=var)
            worker = WorkerProcess(
                "notifications", env=worker_env, log_path=var / "worker.log", cwd=var
            )
            for process in (relay, worker):
                stack.callback(process.stop)
                process.start()
            yield _System(
                relay, worker, orders, _plain(orders_url), _plain(notifications_url), service
            )
    finally:
        rabbit.close()


def _plain(url: str) -> str:
    """A SQLAlchemy URL as libpq takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _prepare(orders_env: dict[str, Any], worker_env: dict[str, Any]) -> Flask:
    """Migrate both databases, declare the queue; the orders app writes the events."""
    quiet = {"LOG_LEVEL": "WARNING"}
    # Its own application_name, so its connections are not counted as the relay's.
    orders = create_orders(OrdersSettings(**orders_env | quiet | {"SERVICE_NAME": "bench-writer"}))
    notifications = create_notifications(NotificationsSettings(**worker_env | quiet))
    upgrade(orders)
    upgrade(notifications)
    tasks_state(notifications).declare_queues()
    _dispose(notifications)
    return orders


def _dispose(app: Flask) -> None:
    with app.app_context():
        app.extensions["flotilla.db"].engine.dispose()


def render_costs(costs: Sequence[EventCost]) -> list[str]:
    """The costs as a Markdown table, one row per run."""
    lines = [
        "| e-mail via | events, rate | relay | worker | RabbitMQ | PostgreSQL | total |"
        " commit → e-mail p50 / p95 |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for cost in costs:
        ms = cost.per_event_ms
        rate = f"{cost.rate:g}/s" if cost.rate else "at once"
        p50 = statistics.median(cost.latencies) * 1000 if cost.latencies else float("nan")
        p95 = cost.latencies[int(0.95 * (len(cost.latencies) - 1))] * 1000
        lines.append(
            f"| {cost.mail} | {cost.events:,}, {rate} in {cost.seconds:.1f} s | "
            + " | ".join(f"{ms[name]:.2f} ms" for name in COMPONENTS)
            + f" | {sum(ms.values()):.2f} ms | {p50:.0f} / {p95:.0f} ms |"
        )
    lines += [
        "",
        "| idle, CPU per second | relay | worker | RabbitMQ | PostgreSQL |",
        "|---|--:|--:|--:|--:|",
    ]
    for cost in costs:
        idle = cost.idle_ms_per_second
        lines.append(
            f"| {cost.mail} | " + " | ".join(f"{idle[name]:.1f} ms" for name in COMPONENTS) + " |"
        )
    return lines
