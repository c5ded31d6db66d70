"""After placing orders: wait until every e-mail is out, then check that nothing was lost.

A faster path that loses an e-mail or an order is a defect, so each orders load ends with:

* a bounded wait (:func:`wait_drained`) until no order is still pending and there are as
  many order confirmations in the run's mail directory as placed orders: the outbox relay
  and the notifications worker work after the requests have been answered;
* :func:`check_mail`: every placed order (orders' database) has its confirmation, by order
  id, read from the ``.eml`` files the worker wrote (the customer's view);
* :func:`check_stock`: for every product, initial stock minus the quantities of the placed
  orders' lines (orders' database) equals the stock now (catalog's database).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from database import libpq_url
from seeding import SKU_PREFIX, STOCK
from stack import Stack

CONFIRMATION = ".order_placed@"
"""In the file name of every order confirmation (its Message-ID: ``<event>.<kind>@…``)."""
ORDER_NUMBER = re.compile(rb"^Subject:[^\n]*#(\d+)", re.MULTILINE)
POLL_S = 0.25
SHOWN = 5
"""Examples shown of a failed check."""


@dataclass(frozen=True)
class Drain:
    """How the wait after a load ended."""

    seconds: float
    placed: int
    mailed: int
    pending: int

    @property
    def complete(self) -> bool:
        """Nothing pending, and an e-mail for every placed order."""
        return self.pending == 0 and self.mailed >= self.placed


@dataclass(frozen=True)
class MailCheck:
    """Placed orders without a confirmation e-mail."""

    placed: int
    missing: tuple[int, ...]


@dataclass(frozen=True)
class StockCheck:
    """Products whose stock does not add up: (id, expected, found)."""

    products: int
    ordered_units: int
    mismatches: tuple[tuple[int, int, int], ...]


def order_counts(stack: Stack) -> tuple[int, int]:
    """Placed and pending orders now."""
    with psycopg.connect(libpq_url(stack.database_url("orders"))) as db:
        row = db.execute(
            "SELECT count(*) FILTER (WHERE state = 'placed'),"
            " count(*) FILTER (WHERE state = 'pending') FROM orders"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def confirmations(mail_dir: Path) -> int:
    """Order confirmations written so far."""
    if not mail_dir.exists():
        return 0
    return sum(1 for entry in os.scandir(mail_dir) if CONFIRMATION in entry.name)


def wait_drained(stack: Stack, timeout_s: float) -> Drain:
    """Wait until the orders are settled and mailed, for at most ``timeout_s``."""
    started = time.monotonic()
    while True:
        placed, pending = order_counts(stack)
        drain = Drain(time.monotonic() - started, placed, confirmations(stack.mail_dir), pending)
        if drain.complete or drain.seconds > timeout_s:
            return drain
        time.sleep(POLL_S)


def check_mail(stack: Stack) -> MailCheck:
    """Every placed order's id must appear in a confirmation's subject."""
    with psycopg.connect(libpq_url(stack.database_url("orders"))) as db:
        placed = {row[0] for row in db.execute("SELECT id FROM orders WHERE state = 'placed'")}
    mailed = set()
    for entry in os.scandir(stack.mail_dir):
        if CONFIRMATION in entry.name:
            match = ORDER_NUMBER.search(Path(entry.path).read_bytes())
            if match:
                mailed.add(int(match.group(1)))
    return MailCheck(len(placed), tuple(sorted(placed - mailed)))


def check_stock(stack: Stack) -> StockCheck:
    """Per seeded product: initial stock - units in placed orders = stock now."""
    with psycopg.connect(libpq_url(stack.database_url("orders"))) as db:
        rows = db.execute(
            "SELECT l.product_id, sum(l.quantity) FROM order_lines AS l"
            " JOIN orders AS o ON o.id = l.order_id WHERE o.state = 'placed'"
            " GROUP BY l.product_id"
        ).fetchall()
    ordered: dict[int, int] = {int(product): int(units) for product, units in rows}
    with psycopg.connect(libpq_url(stack.database_url("catalog"))) as db:
        stock = db.execute(
            "SELECT id, stock FROM products WHERE sku LIKE %s ORDER BY id", (f"{SKU_PREFIX}%",)
        ).fetchall()
    expected = {int(product): STOCK - ordered.get(int(product), 0) for product, _ in stock}
    mismatches = tuple(
        (int(product), expected[int(product)], int(found))
        for product, found in stock
        if expected[int(product)] != found
    )
    return StockCheck(len(stock), sum(ordered.values()), mismatches)
