"""What placing's last write costs: one statement against a transaction of three (ADR 0020).

``python bench/placing_write.py`` migrates a throw-away orders database on this machine's
PostgreSQL, writes pending orders, then places them with each of the two ways
:mod:`orders.placed` has: the one statement (a data-modifying CTE in autocommit, what
PostgreSQL runs) and the transaction (``BEGIN``, the compare-and-set, the lines, the event,
``COMMIT``: what SQLite runs). Both write the same rows, with the same parameters, through
the orders app's own engine.

The ways alternate over rounds, each placing ``--orders`` orders one after another. A
round's CPU is this process's (``getrusage``: SQLAlchemy, psycopg, the parameters) and
that of the database's backends (``/proc/<pid>/stat`` of every connection
``pg_stat_activity`` shows for it), divided by the orders; the median round of each way is
shown. CPU time is each process's own, so other work on the machine moves it little.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import insert

from database import libpq_url
from flotilla.data.migrations import upgrade
from flotilla.testing import postgres_database
from orders import create_app
from orders.config import OrdersSettings
from orders.models import Order, db, outbox
from orders.placed import in_a_transaction, in_one_statement
from orders.schemas import LineView
from procfs import read_stat

Write = Callable[[int, Mapping[str, Any], Sequence[LineView], Mapping[str, Any]], None]
WAYS: dict[str, Write] = {"one statement": in_one_statement, "transaction": in_a_transaction}
LINE = LineView(product_id=7, sku="MUG-7", name="Mug", quantity=1, unit_price=1200, line_total=1200)


@dataclass(frozen=True)
class Round:
    """One round of one way: microseconds of CPU (and of the clock) per order."""

    way: str
    client_us: float
    backend_us: float
    wall_us: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each way")
    arguments = parser.parse_args()
    with postgres_database() as url:
        app = create_app(OrdersSettings(DATABASE_URL=url, LOG_LEVEL="WARNING"))
        upgrade(app)
        rounds = measure(app, url, arguments.orders, arguments.rounds)
        with app.app_context():
            app.extensions["flotilla.db"].engine.dispose()
    print(render(rounds, arguments.orders))


def measure(app: Flask, url: str, per_round: int, rounds: int) -> list[Round]:
    """Alternate the ways (the first way first in odd rounds) over fresh pending orders."""
    measured = []
    with app.app_context():
        for number in range(rounds):
            ways = list(WAYS) if number % 2 == 0 else list(reversed(WAYS))
            for way in ways:
                order_ids = pending_orders(per_round + 1)
                WAYS[way](order_ids[0], values(), [LINE], _event_row())  # a connection, warm
                measured.append(run(way, WAYS[way], order_ids[1:], url))
    return measured


def pending_orders(count: int) -> list[int]:
    """``count`` new pending orders, their ids."""
    now = datetime.now(UTC)
    row = {"user_id": 1, "state": "pending", "created_at": now, "updated_at": now}
    with db.engine.begin() as connection:
        result = connection.execute(insert(Order).returning(Order.id), [row] * count)
        return sorted(result.scalars())


def values() -> dict[str, Any]:
    """What placing writes with the state."""
    now = datetime.now(UTC)
    return {
        "currency": "EUR",
        "total": 1200,
        "customer_email": "customer@example.com",
        "customer_display_name": "Customer",
        "placed_at": now,
        "updated_at": now,
        "response_status": 201,
        "response_body": {"id": 1, "state": "placed", "lines": [dict(LINE)], "total": 1200},
    }


def _event_row() -> dict[str, Any]:
    payload = {"order_id": 1, "lines": [dict(LINE)], "total": 1200, "currency": "EUR"}
    with outbox.creating("order.placed", payload) as (_event, row):
        return row


def run(way: str, write: Write, order_ids: Sequence[int], url: str) -> Round:
    """Place ``order_ids`` one after another the ``way`` given; CPU per order."""
    rows = [(order_id, values(), _event_row()) for order_id in order_ids]
    with psycopg.connect(libpq_url(_maintenance(url)), autocommit=True) as admin:
        backend_before = backends_cpu(admin, url)
        client_before = _own_cpu()
        started = time.perf_counter()
        for order_id, written, event_row in rows:
            write(order_id, written, [LINE], event_row)
        wall = time.perf_counter() - started
        client = _own_cpu() - client_before
        backend = backends_cpu(admin, url) - backend_before
    million = 1_000_000 / len(order_ids)
    return Round(way, client * million, backend * million, wall * million)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backends_cpu(admin: psycopg.Connection[Any], url: str) -> float:
    """CPU seconds used so far by the backends connected to ``url``'s database.

    The app's pool keeps its connection between rounds, so the same backend is read before
    and after.
    """
    query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    pids = [row[0] for row in admin.execute(query, (url.rsplit("/", 1)[1],))]
    stats = (read_stat(pid) for pid in pids)
    return sum(stat.own_s for stat in stats if stat is not None)


def _maintenance(url: str) -> str:
    """The server's ``postgres`` database, beside ``url``'s."""
    return url.rsplit("/", 1)[0] + "/postgres"


def render(rounds: Sequence[Round], per_round: int) -> str:
    """A Markdown table: the median round of each way, and their ratio."""
    lines = [
        f"Placing's last write, {per_round:,} orders a round, "
        f"{len(rounds) // len(WAYS)} rounds of each way (median round):",
        "",
        "| way | client CPU µs / order | backend CPU µs / order | both | wall µs / order |",
        "|---|--:|--:|--:|--:|",
    ]
    for way in WAYS:
        own = [r for r in rounds if r.way == way]
        client = statistics.median(r.client_us for r in own)
        backend = statistics.median(r.backend_us for r in own)
        wall = statistics.median(r.wall_us for r in own)
        lines.append(
            f"| {way} | {client:.0f} | {backend:.0f} | {client + backend:.0f} | {wall:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
