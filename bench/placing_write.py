"""What placing's last write costs: one statement against a transaction of three (ADR 0020).

``python bench/placing_write.py`` migrates a throw-away orders database on this machine's
PostgreSQL, writes pending orders, then places them with each of the two ways
:mod:`orders.placed` has: the one statement (a data-modifying CTE in autocommit, what
PostgreSQL runs) and the transaction (``BEGIN``, the compare-and-set, the lines, the event,
``COMMIT``: what SQLite runs). Both write the same rows, with the same parameters, through
the orders app's own engine.

The ways alternate over rounds, each placing ``--orders`` orders one after another; a
round's CPU per order is this process's and the database backends' (``write_cost``), and
the median round of each way is shown.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import insert

from flotilla.data.migrations import upgrade
from flotilla.testing import postgres_database
from orders import create_app
from orders.config import OrdersSettings
from orders.models import Order, db, outbox
from orders.placed import in_a_transaction, in_one_statement
from orders.schemas import LineView
from write_cost import Round, alternating, measure_round, render

Write = Callable[[int, Mapping[str, Any], Sequence[LineView], Mapping[str, Any]], None]
WAYS: dict[str, Write] = {"one statement": in_one_statement, "transaction": in_a_transaction}
LINE = LineView(product_id=7, sku="MUG-7", name="Mug", quantity=1, unit_price=1200, line_total=1200)


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
    title = (
        f"Placing's last write, {arguments.orders:,} orders a round, "
        f"{arguments.rounds} rounds of each way (median round):"
    )
    print(render(title, rounds, "order"))


def measure(app: Flask, url: str, per_round: int, rounds: int) -> list[Round]:
    """Alternate the ways (the first way first in odd rounds) over fresh pending orders."""
    measured = []
    with app.app_context():
        for way in alternating(list(WAYS), rounds):
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
    calls = [
        functools.partial(write, order_id, values(), [LINE], _event_row()) for order_id in order_ids
    ]
    return measure_round(way, calls, url)


if __name__ == "__main__":
    main()
