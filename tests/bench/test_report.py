"""The report's tables are well-formed Markdown and carry the figures they are given."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from accounting import Spread, WorkerShare
from components import Classifier
from consistency import Drain, MailCheck, StockCheck
from figures import headline, render_before_after
from loads import LoadRun, Measured, Wrk
from memory import ProcessMemory, ServerMemory
from options import parse_options
from ordering import OrdersResult
from rates import RateRun, RatesResult
from reads import TARGETS, ReadsResult
from report import render_section
from results import Report
from sampler import CpuWindow

OPTIONS = parse_options(["--no-results"])
WRK = Wrk("wrk", 2, Classifier({}, "bench_x_", lambda pid: []))


def measured(rate: float, *, expected: int = 200, units: int = 0) -> Measured:
    seconds = 8.0
    requests = int(rate * seconds)
    load = LoadRun(requests, seconds, 10.0, 25.0, (0, 0, 0, 0), {expected: requests}, expected)
    spread = Spread((WorkerShare(1, 3.0, 8.0), WorkerShare(2, 1.0, 8.0)), ((0.9, 2), (0.8, 2)))
    cpu = CpuWindow(
        seconds,
        {"catalog (web)": 4.0, "RabbitMQ": 1.0, "load generator (wrk)": 0.2},
        frozenset({"RabbitMQ"}),
        {"catalog (web)": spread},
        machine_busy_s=12.0,
        sampler_s=0.1,
    )
    return Measured(load, cpu, units or requests)


def report() -> Report:
    reads = ReadsResult(TARGETS, order_ids=(1, 200))
    for number in range(2):
        reads.rounds.append({t.key: measured(1000 + 100 * number) for t in TARGETS})
        reads.order += [t.key for t in TARGETS]
    orders = OrdersResult((8, 32))
    for connections in orders.connections:
        orders.runs[connections] = [measured(50, expected=201, units=400)]
        orders.drains[connections] = [Drain(2.5, 400, 400, 0)]
    orders.mail, orders.stock = MailCheck(800, ()), StockCheck(1000, 800, ())
    summary = {
        "duration": {"p(50)": 5.0, "p(95)": 20.0, "p(99)": 40.0},
        "products": {"p(95)": 18.0},
        "orders": {"p(95)": 22.0},
        "requests": 20_000,
        "failed": 0,
        "dropped": 0,
        "max_vus": 100,
    }
    window = measured(1000).cpu
    rates = RatesResult(2, [RateRun("reads", 1000, 20, summary, window)])
    memory = [
        ServerMemory(
            "users (web)",
            "gunicorn",
            "python -m gunicorn users.wsgi:app",
            ProcessMemory(10, 110.0, 60.0),
            (ProcessMemory(11, 95.0, 70.0),),
        )
    ]
    return Report(
        OPTIONS,
        "bench",
        datetime.now(UTC),
        {"Python": "3"},
        None,
        None,
        None,
        None,
        reads,
        orders,
        rates,
        memory,
    )


def tables(markdown: str) -> list[list[str]]:
    """Every table as its lines."""
    found: list[list[str]] = []
    for block in re.split(r"\n(?!\|)", markdown):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            found.append(lines)
    return found


def test_every_table_row_has_as_many_cells_as_its_header() -> None:
    section = render_section(report(), WRK)
    found = tables(section)
    assert len(found) >= 8
    for table in found:
        widths = {line.count("|") for line in table}
        assert len(widths) == 1, table


def test_the_tables_carry_ratios_flags_and_checks() -> None:
    section = render_section(report(), WRK)
    assert "| 1.00 (1.00 / 1.00) |" in section  # each target against bare, per round
    assert "1: 75% (50%)" in section  # the busier worker's share and its fair share
    assert "every one has its e-mail" in section
    assert "adds up for every one" in section
    assert "ABOVE 90 MiB" in section


def test_before_and_after_compares_the_same_figures() -> None:
    current = report()
    before = {"checkout": "abc", "started": "2026-01-01T00:00", "figures": headline(current)}
    before["cpu_per_order_ms"] = {"catalog (web)": 5.0}
    table = render_before_after(before, current, "def")
    assert "| orders/s at c8 | 50.00 | 50.00 | 1.00 |" in table
    assert "| catalog (web) | 5.00 | 10.00 | 2.00 |" in table
