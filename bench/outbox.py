"""The outbox and the e-mail path, measured: relay throughput, latency, cost per registration.

``.venv/bin/python bench/outbox.py [--events 5000] [--registrations 100]
[--poll-intervals 1.0,0.1] [--requests 200] [--rounds 10] [--cost-events 2000]
[--cost-rate 200] [--cost-mail eml,smtp] [--idle-seconds 3] [--only cost,relay,latency,request]``

Four figures, all from this one run (``--only`` picks some), on the machine's PostgreSQL
and RabbitMQ (the URLs the tests use: ``FLOTILLA_TEST_POSTGRES_URL``,
``FLOTILLA_TEST_AMQP_URL``) in throw-away databases, queues and exchanges:

* **Relay throughput.** ``--events`` ``user.registered`` events are committed to the users
  outbox, a durable queue is bound to the exchange, and ``relay_pending`` publishes them all
  as the relay process does: in batches of ``OUTBOX_BATCH_SIZE``, each message waiting for
  RabbitMQ's publisher confirm before the next, rows marked in the batch's transaction.
* **Registration to e-mail.** The users service under Gunicorn, its relay
  (``flask outbox relay``) and the notifications worker run as processes; an aiosmtpd server
  in this process takes the e-mail. Registrations arrive as a Poisson process, one poll
  interval apart on average; the latency is from sending the POST to the SMTP server having
  the whole message, split where the relay marked the event published. Once per
  ``--poll-intervals`` value (the relay's ``OUTBOX_POLL_INTERVAL``, which dominates).
* **What the outbox costs a registration.** ``POST /api/v1/users`` through Flask's test client,
  with the real ``register_user`` and with its ``outbox.add_event`` replaced by a no-op, in
  alternating rounds (every second one reversed) so load drift favours neither; the median
  round is reported. Twice: with Argon2 at the production cost (what a user waits for), and
  at a token cost (what the database work alone costs).

* **CPU per event** (``bench/event_cost.py``). The orders relay and the notifications worker
  run as processes with their defaults; ``--cost-events`` ``order.placed`` events are
  committed at ``--cost-rate`` per second (0: all at once), and the CPU time the relay, the
  worker (with its pool processes), RabbitMQ and their PostgreSQL backends used until every
  e-mail was recorded is divided by the events; so is what each used while idle, per
  second. Once per ``--cost-mail`` way of sending: ``eml`` files (``make run`` without
  ``SMTP_HOST``) or ``smtp`` to an aiosmtpd server in this process.

Nothing asserts on time: the script measures and reports; read ratios, on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import requests
from flask import Flask
from sqlalchemy import create_engine, text

from event_cost import EventCost, measure_event_cost, render_costs
from flotilla.data.migrations import upgrade
from flotilla.messaging.outbox import relay_pending
from flotilla.testing import GunicornServer, postgres_database
from flotilla.testing.mail import MailServer
from flotilla.testing.messaging import Rabbit, RelayProcess, WorkerProcess, amqp_server_url
from notifications import create_app as create_notifications
from notifications.config import NotificationsSettings
from users import create_app as create_users
from users.config import UsersSettings
from users.models import db, outbox

FAST_HASHING = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64}


@dataclass(frozen=True)
class Latencies:
    """Seconds from registration to e-mail, one per registration, and its two legs."""

    poll_interval: float
    samples: tuple[float, ...]
    waiting: tuple[float, ...]
    """From the event's commit to the relay marking it published."""
    delivering: tuple[float, ...]
    """From the relay marking it published to the SMTP server having the e-mail."""


def percentile(samples: Sequence[float], share: float) -> float:
    """The ``share`` quantile (0.5 is the median) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass(frozen=True)
class RequestCost:
    """Median milliseconds per registration with and without the outbox event."""

    hashing: str
    with_event: float
    without_event: float


def main(argv: Sequence[str] | None = None) -> None:
    """Run the measurements and print them as Markdown."""
    args = parse_arguments(argv)
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as directory:
        var = Path(directory)
        costs = [
            measure_event_cost(
                var / f"cost-{mail}",
                events=args.cost_events,
                rate=args.cost_rate,
                mail=mail,
                idle_seconds=args.idle_seconds,
            )
            for mail in (args.cost_mail.split(",") if "cost" in parts else [])
        ]
        throughput = measure_relay(var / "relay", args.events) if "relay" in parts else None
        polls = [float(value) for value in args.poll_intervals.split(",")]
        latencies = [
            measure_latency(var / f"e2e-{poll}", poll, args.registrations)
            for poll in (polls if "latency" in parts else [])
        ]
        requests_cost = []
        if "request" in parts:
            requests_cost = [
                measure_cost(var / "fast", "token (t=1, 64 KiB)", FAST_HASHING, args),
                measure_cost(var / "prod", "production (t=2, 19 MiB)", {}, args, share=0.2),
            ]
    text = render(
        events=args.events,
        throughput=throughput,
        latencies=latencies,
        costs=requests_cost,
        event_costs=costs,
        args=args,
    )
    print(text)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events the relay publishes")
    parser.add_argument("--registrations", type=int, default=100, help="per poll interval")
    parser.add_argument("--poll-intervals", default="1.0,0.1", help="OUTBOX_POLL_INTERVAL values")
    parser.add_argument("--requests", type=int, default=200, help="per variant, token hashing")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per variant")
    parser.add_argument("--cost-events", type=int, default=2000, help="events measured for CPU")
    parser.add_argument("--cost-rate", type=float, default=200, help="events/s committed; 0: all")
    parser.add_argument("--cost-mail", default="eml,smtp", help="eml and/or smtp")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle CPU measured for")
    parser.add_argument("--only", default="cost,relay,latency,request", help="parts to run")
    return parser.parse_args(argv)


@contextlib.contextmanager
def users_app(var: Path, **overrides: Any) -> Iterator[Flask]:
    """A migrated users app on a throw-away PostgreSQL database."""
    with postgres_database() as url:
        values: dict[str, Any] = {"ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}
        values["RATE_LIMITS_ENABLED"] = False
        app = create_users(UsersSettings(DATABASE_URL=url, VAR_DIR=var, **values, **overrides))
        upgrade(app)
        try:
            yield app
        finally:
            with app.app_context():
                db.engine.dispose()


def measure_relay(var: Path, events: int) -> float:
    """Events per second ``relay_pending`` publishes with confirms and marks."""
    exchange = f"bench{uuid.uuid4().hex[:8]}.events"
    rabbit = Rabbit()
    try:
        queue = rabbit.bind_queue(f"{exchange}.sink", exchange).name
        with users_app(var, BROKER_URL=amqp_server_url(), EVENTS_EXCHANGE=exchange) as app:
            with app.app_context():
                for number in range(events):
                    payload = {"user_id": number, "username": f"u{number}", "email": "a@b.c"}
                    outbox.add_event(db.session, "user.registered", payload)
                    if number % 500 == 499:
                        db.session.commit()
                db.session.commit()
            started = time.perf_counter()
            published = relay_pending(app)
            elapsed = time.perf_counter() - started
        if published != events or rabbit.count(queue) != events:
            raise SystemExit(f"published {published}, queued {rabbit.count(queue)} of {events}")
    finally:
        rabbit.close()
    return events / elapsed


def measure_latency(var: Path, poll_interval: float, registrations: int) -> Latencies:
    """Registration-to-e-mail seconds with the relay polling every ``poll_interval``."""
    token = uuid.uuid4().hex[:8]
    exchange, service = f"bench{token}.events", f"bench{token}-notifications"
    rabbit = Rabbit()
    rabbit.forget_later(queues=(f"{service}.tasks", f"{service}.tasks.dead"), exchanges=(exchange,))
    var.mkdir(parents=True)
    try:
        with contextlib.ExitStack() as stack:
            mail = stack.enter_context(MailServer())
            users_db = stack.enter_context(postgres_database())
            notifications_db = stack.enter_context(postgres_database())
            common: dict[str, Any] = {"ENVIRONMENT": "test", "EVENTS_EXCHANGE": exchange}
            users_env: dict[str, Any] = {
                **common,
                **FAST_HASHING,
                "DATABASE_URL": users_db,
                "VAR_DIR": var,
            }
            users_env |= {"RATE_LIMITS_ENABLED": "false"}
            relay_env: dict[str, Any] = {**users_env, "BROKER_URL": amqp_server_url()}
            relay_env |= {"OUTBOX_POLL_INTERVAL": poll_interval}
            worker_env: dict[str, Any] = {
                **common,
                "SERVICE_NAME": service,
                "DATABASE_URL": notifications_db,
            }
            worker_env |= {
                "VAR_DIR": var,
                "BROKER_URL": amqp_server_url(),
                "SMTP_HOST": "127.0.0.1",
            }
            worker_env |= {"SMTP_PORT": mail.port, "SMTP_STARTTLS": "false"}
            _prepare(users_env, worker_env)
            users = GunicornServer(
                "users.wsgi:app",
                env=_strings(users_env) | {"GUNICORN_WORKERS": "1"},
                log_path=var / "users.log",
                cwd=var,
            )
            processes: list[GunicornServer | WorkerProcess] = [
                users,
                RelayProcess("users", env=_strings(relay_env), log_path=var / "r.log", cwd=var),
                WorkerProcess(
                    "notifications", env=_strings(worker_env), log_path=var / "w.log", cwd=var
                ),
            ]
            for process in processes:
                stack.callback(process.stop)
                process.start()
            received = _register_at_random(users.url, mail, registrations, poll_interval)
            return _legs(users_db, poll_interval, received)
    finally:
        rabbit.close()


def _prepare(users_env: dict[str, Any], worker_env: dict[str, Any]) -> None:
    """Migrate both databases and declare the notifications queue before anything publishes."""
    from flotilla.messaging.tasks import tasks_state  # noqa: PLC0415 - Celery only where it is used

    quiet = {"LOG_LEVEL": "WARNING"}  # this process's logs would bury the table
    users = create_users(UsersSettings(**users_env | quiet))
    notifications = create_notifications(NotificationsSettings(**worker_env | quiet))
    upgrade(users)
    upgrade(notifications)
    tasks_state(notifications).declare_queues()
    for app in (users, notifications):
        with app.app_context():
            app.extensions["flotilla.db"].engine.dispose()


def _strings(values: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items()}


def _legs(database_url: str, poll_interval: float, received: list[Delivery]) -> Latencies:
    """Split each latency at the moment the relay marked the event published."""
    engine = create_engine(database_url)
    query = text("SELECT payload->>'email', created_at, published_at FROM outbox_events")
    with engine.connect() as connection:
        stamps = {
            row[0]: (row[1].timestamp(), row[2].timestamp()) for row in connection.execute(query)
        }
    engine.dispose()
    legs = [(item, *stamps[item.recipients[0]]) for item in received]
    return Latencies(
        poll_interval,
        tuple(item.at - item.started for item, _, _ in legs),
        tuple(published - created for _, created, published in legs),
        tuple(item.at - published for item, _, published in legs),
    )


@dataclass(frozen=True)
class Delivery:
    """When a registration was sent and when its e-mail arrived, for whom."""

    recipients: tuple[str, ...]
    started: float
    at: float


def _register_at_random(url: str, mail: MailServer, count: int, mean_gap: float) -> list[Delivery]:
    """Register ``count`` accounts at random times, then collect when each e-mail arrived.

    Gaps between registrations are exponential (a Poisson process), so registrations fall
    at random points of the relay's polling cycle, as independent users do, and the
    latencies sample its cycle without bias ("Poisson arrivals see time averages").
    """
    gaps = random.Random(5)  # the same schedule in every run
    started: dict[str, float] = {}
    for number in range(count):
        time.sleep(gaps.expovariate(1 / mean_gap))
        email = f"latency{number}@example.com"
        body = {"username": f"latency{number}", "email": email, "password": "x" * 12}
        started[email] = time.time()
        response = requests.post(f"{url}/api/v1/users", json=body, timeout=10)
        if response.status_code != 201:
            raise SystemExit(f"registration answered {response.status_code}")
    deadline = time.monotonic() + 60
    while len(arrived := {item.recipients[0]: item.at for item in mail.received()}) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{count - len(arrived)} e-mails missing after 60 s")
        time.sleep(0.05)
    return [Delivery((email,), at_start, arrived[email]) for email, at_start in started.items()]


def measure_cost(
    var: Path, hashing: str, overrides: dict[str, int], args: argparse.Namespace, share: float = 1.0
) -> RequestCost:
    """Median ms per registration request with and without ``add_event``, interleaved."""
    per_round = max(1, int(args.requests * share) // args.rounds)
    counter = itertools.count()
    with users_app(var, **overrides) as app:
        client = app.test_client()

        def register(times: int) -> float:
            """Milliseconds per registration over ``times`` registrations."""
            started = time.perf_counter()
            for number in itertools.islice(counter, times):
                email = f"cost{number}@example.com"
                body = {"username": f"cost{number}", "email": email, "password": "x" * 12}
                response = client.post("/api/v1/users", json=body)
                if response.status_code != 201:
                    raise SystemExit(f"registration answered {response.status_code}")
            return (time.perf_counter() - started) / times * 1000

        samples: dict[str, list[float]] = {"with": [], "without": []}
        for round_number in range(-1, args.rounds):  # round -1 warms up, unrecorded
            order = ["with", "without"] if round_number % 2 == 0 else ["without", "with"]
            for name in order:
                with _event_writing(enabled=name == "with"):
                    elapsed = register(per_round)
                if round_number >= 0:
                    samples[name].append(elapsed)
    return RequestCost(
        hashing, statistics.median(samples["with"]), statistics.median(samples["without"])
    )


@contextlib.contextmanager
def _event_writing(*, enabled: bool) -> Iterator[None]:
    """As is, or with ``outbox.add_event`` a no-op for the block."""
    if enabled:
        yield
        return
    with mock.patch.object(outbox, "add_event", new=_no_event):
        yield


def _no_event(*_args: object, **_kwargs: object) -> None:
    """What ``register_user`` calls instead of writing its event."""


def render(
    *,
    events: int,
    throughput: float | None,
    latencies: list[Latencies],
    costs: list[RequestCost],
    event_costs: list[EventCost],
    args: argparse.Namespace,
) -> str:
    """The figures as Markdown tables, with the conditions of the run."""
    lines = ["| measurement | figure |", "|---|---:|"]
    if throughput is not None:
        relayed = f"relay throughput, {events} events, confirms, batch 100"
        lines.append(f"| {relayed} | {throughput:,.0f} events/s |")
    for latency in latencies:
        poll = f"relay poll {latency.poll_interval:g} s, n={len(latency.samples)}"
        for leg, samples in (
            ("register → e-mail at SMTP", latency.samples),
            ("  of which commit → published (relay)", latency.waiting),
            ("  of which published → e-mail at SMTP", latency.delivering),
        ):
            lines.append(f"| {leg}, {poll}, p50 / p95 / max | {_quantiles(samples)} |")
    if costs:
        lines += ["", "| registration request, Argon2 | with event | without | added | ratio |"]
        lines.append("|---|---:|---:|---:|---:|")
    for cost in costs:
        added = cost.with_event - cost.without_event
        lines.append(
            f"| {cost.hashing} | {cost.with_event:.2f} ms | {cost.without_event:.2f} ms | "
            f"{added:+.2f} ms | {cost.with_event / cost.without_event:.3f} |"
        )
    if event_costs:
        lines += ["", "CPU per event (utime + stime, descendants included):", ""]
        lines += render_costs(event_costs)
    lines += [
        "",
        f"{args.rounds} alternating rounds per variant; PostgreSQL and RabbitMQ on this "
        f"machine; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}.",
    ]
    return "\n".join(lines)


def _quantiles(samples: Sequence[float]) -> str:
    p50, p95 = percentile(samples, 0.5) * 1000, percentile(samples, 0.95) * 1000
    return f"{p50:.0f} / {p95:.0f} / {max(samples) * 1000:.0f} ms"


if __name__ == "__main__":
    main()
