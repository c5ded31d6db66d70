"""Orders: ``POST /api/v1/orders`` through nginx, at several concurrencies, nothing lost.

Why this shape:

* Placing an order is the shop's main write and crosses the whole system: nginx, orders, its
  calls to users and catalog, three databases, the outbox relay, RabbitMQ and the
  notifications worker writing the e-mail. Everything ``make run`` starts is running, as for
  a user, and each request carries a new Idempotency-Key, so each places an order (201).
* wrk loads it at each of ``--order-connections`` (8 and 32), in rounds, every second one in
  reverse order; the median round is reported.
* An order's cost does not end with its answer: the relay and the worker send its e-mail
  later. So each run's CPU window lasts until every order placed so far has its e-mail (a
  bounded wait), and CPU is divided by the orders placed in the window, counted in orders'
  database (wrk does not count requests it cut off at the end, though they place orders).
* Afterwards, every placed order must have its e-mail and the stock must add up
  (``consistency``): a faster path that loses either is a defect, not a speed-up.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from consistency import (
    Drain,
    MailCheck,
    StockCheck,
    check_mail,
    check_stock,
    order_counts,
    wait_drained,
)
from loads import Measured
from under_test import SystemUnderTest


@dataclass
class OrdersResult:
    """Every run at every concurrency, how long the e-mails took, and the checks."""

    connections: tuple[int, ...]
    runs: dict[int, list[Measured]] = field(default_factory=dict)
    drains: dict[int, list[Drain]] = field(default_factory=dict)
    mail: MailCheck | None = None
    stock: StockCheck | None = None

    def median(self, connections: int) -> Measured:
        """The run of median rate at ``connections``."""
        ranked = sorted(self.runs[connections], key=lambda run: run.load.rate)
        return ranked[(len(ranked) - 1) // 2]


def measure_orders(system: SystemUnderTest) -> OrdersResult:
    """Warm up, measure each concurrency per round, then check e-mails and stock."""
    options = system.options
    token = system.customer_token()
    result = OrdersResult(options.order_connections)
    low = min(options.order_connections)
    system.wrk.warm(
        system.stack.front_door,
        arguments(system),
        seconds=options.warmup,
        connections=low,
        token=token,
    )
    wait_drained(system.stack, options.drain_timeout)
    for number in range(1, options.rounds + 1):
        ordered = result.connections if number % 2 else tuple(reversed(result.connections))
        for connections in ordered:
            measured, drain = place(system, connections, token)
            result.runs.setdefault(connections, []).append(measured)
            result.drains.setdefault(connections, []).append(drain)
            print(f"[orders {number}] c{connections}: {describe(measured, drain)}", flush=True)
    result.mail, result.stock = check_mail(system.stack), check_stock(system.stack)
    return result


def arguments(system: SystemUnderTest) -> list[str]:
    """``shop.lua``'s arguments: products to draw from, and a key prefix new for this run."""
    low, high = system.seeded.product_ids
    return ["place", str(low), str(high - 1), secrets.token_hex(6)]


def place(system: SystemUnderTest, connections: int, token: str) -> tuple[Measured, Drain]:
    """One measured run at ``connections``, its window lasting until the e-mails are out."""
    options, stack = system.options, system.stack
    drains: list[Drain] = []
    placed_before, _ = order_counts(stack)
    run, cpu = system.wrk.run(
        stack.front_door,
        arguments(system),
        seconds=options.duration,
        connections=connections,
        expected=201,
        token=token,
        then=lambda: drains.append(wait_drained(stack, options.drain_timeout)),
    )
    return Measured(run, cpu, drains[0].placed - placed_before), drains[0]


def describe(measured: Measured, drain: Drain) -> str:
    """One progress line."""
    run = measured.load
    line = f"{run.rate:,.0f} orders/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms"
    line += f", {measured.per_unit_ms(measured.cpu.total_s):.1f} ms CPU/order"
    line += f", e-mails out {drain.seconds:.1f} s after" if drain.complete else ", NOT drained"
    return f"{line}, {run.errors} errors" if run.errors else line
