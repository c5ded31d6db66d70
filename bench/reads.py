"""Reads: the shop's two reads through nginx beside three baselines, in alternating rounds.

Why this shape:

* The claim under test is "a tuned production stack is fast": so the shop's reads, as a user
  gets them from ``make run`` (through nginx, every service at its defaults, worker recycling
  included), are set against the same one-row read served by the least a stack does
  (``baselines``), all on the same PostgreSQL, in the same run.
* ``GET /api/v1/products/{id}``, ids drawn uniformly over every product, is the shop's
  cheapest read (cached in Redis); ``GET /api/v1/orders/{id}`` with the owner's token, ids
  over the orders placed for it, reads the database and checks a token. The baselines read a
  product row: the same document as the shop's first read, checked before each round.
* Every target is loaded the same way (wrk, same threads, connections and duration, a warm-up
  first), in rounds, every second one in reverse order, so a drift of the machine's other
  load favours none; the median round is reported, and ratios are taken within each round
  (targets measured minutes apart see another machine) with their median reported.
* Every run is also a CPU window (``sampler``): the machine's CPU per request by component,
  counted over all rounds, and how each server's workers shared the work.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from baselines import BASELINES, PRODUCT_PATH, Baseline, check_same_document, serving
from database import libpq_url
from loads import Measured
from shop_http import send
from under_test import SystemUnderTest

ORDER_PATH = "/api/v1/orders/"
PRODUCTS, ORDERS = "products", "orders"


@dataclass(frozen=True)
class ReadTarget:
    """One thing loaded: a baseline (started per round) or a read of the running shop."""

    key: str
    label: str
    baseline: Baseline | None = None
    path: str = PRODUCT_PATH
    authorized: bool = False


TARGETS = (
    *(ReadTarget(b.key, b.label, baseline=b) for b in BASELINES),
    ReadTarget(PRODUCTS, "shop: GET /api/v1/products/{id} through nginx (cached)"),
    ReadTarget(
        ORDERS,
        "shop: GET /api/v1/orders/{id}, owner's token, through nginx",
        path=ORDER_PATH,
        authorized=True,
    ),
)
BARE, DEVSERVER = "bare", "devserver"


@dataclass
class ReadsResult:
    """Every round of every target."""

    targets: tuple[ReadTarget, ...]
    rounds: list[dict[str, Measured]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    order_ids: tuple[int, int] = (0, 0)

    def runs(self, key: str) -> list[Measured]:
        """``key``'s runs, one per round."""
        return [measured[key] for measured in self.rounds]

    def median(self, key: str) -> Measured:
        """``key``'s round of median rate (the slower middle one for an even count)."""
        ranked = sorted(self.runs(key), key=lambda run: run.load.rate)
        return ranked[(len(ranked) - 1) // 2]

    def ratios(self, key: str, reference: str) -> list[float]:
        """Per round, ``key``'s rate over ``reference``'s."""
        return [m[key].load.rate / m[reference].load.rate for m in self.rounds]

    def ratio(self, key: str, reference: str) -> float:
        """The median of :meth:`ratios`."""
        return statistics.median(self.ratios(key, reference))


def measure_reads(system: SystemUnderTest, order_ids: tuple[int, int]) -> ReadsResult:
    """Measure every target once per round; ``order_ids`` are the customer's orders to read."""
    token = system.customer_token()
    result = ReadsResult(TARGETS, order_ids=order_ids)
    reference = send(system.url(f"{PRODUCT_PATH}{system.seeded.check_product}"), 200)
    for number in range(1, system.options.rounds + 1):
        ordered = TARGETS if number % 2 else tuple(reversed(TARGETS))
        result.rounds.append({})
        for target in ordered:
            measured = measure_target(system, target, result, reference, token)
            result.rounds[-1][target.key] = measured
            result.order.append(target.key)
            print(f"[reads {number}] {target.label}: {describe(measured)}", flush=True)
    return result


def measure_target(
    system: SystemUnderTest, target: ReadTarget, result: ReadsResult, reference: object, token: str
) -> Measured:
    """Start the target if it is a baseline, check it, warm it up, measure it, stop it."""
    if target.baseline is None:
        return load(system, system.stack.front_door, target, result, token)
    conninfo = libpq_url(system.stack.database_url("catalog"))
    log = system.logs / f"{target.key}.log"
    probe = system.seeded.check_product
    with serving(target.baseline, conninfo, log, probe) as server:
        check_same_document(server.url, reference, probe)
        with system.wrk.classifier.counting(server.pid, target.label):
            return load(system, server.url, target, result, token)


def load(
    system: SystemUnderTest, url: str, target: ReadTarget, result: ReadsResult, token: str
) -> Measured:
    """A warm-up, then the measured run of ``target`` at ``url``."""
    options = system.options
    low, high = result.order_ids if target.authorized else system.seeded.product_ids
    call = "get-auth" if target.authorized else "get"
    arguments = [call, target.path, str(low), str(high)]
    connections, wrk = options.connections, system.wrk
    wrk.warm(url, arguments, seconds=options.warmup, connections=connections, token=token)
    run, cpu = wrk.run(
        url, arguments, seconds=options.duration, connections=connections, expected=200, token=token
    )
    return Measured(run, cpu, run.requests)


def describe(measured: Measured) -> str:
    """One progress line."""
    run = measured.load
    cpu = measured.per_unit_ms(measured.cpu.total_s)
    line = f"{run.rate:,.0f} req/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms"
    line += f", {cpu:.2f} ms CPU/request"
    return f"{line}, {run.errors} errors" if run.errors else line
