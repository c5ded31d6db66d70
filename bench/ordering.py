"""Orders under load: placing and reading orders, against the calls an order is made of.

Why this shape:

* ``POST /api/v1/orders`` is a saga over three services: orders writes the pending order
  and its Idempotency-Key, asks users for the customer (``GET /api/v1/users/me``, with the
  customer's token), asks catalog to reserve the stock (``POST /api/v1/reservations``), then
  writes the placed order, its event and the stored answer in one transaction. Its baselines
  are those two calls made directly, in the same run, so what placing costs beyond them is
  what orders itself does: two transactions, validation, JSON and the two client calls.
* ``GET /api/v1/orders/{id}`` reads one order and its lines; its baseline is the chassis'
  one-row read, ``GET /api/v1/users/{id}`` on users, the read benchmark's endpoint.
* Every call is loaded with the read benchmark's wrk parameters. wrk keeps its connections
  busy, so a call's mean latency is connections / rate (Little's law): on two saturated cores
  a ratio of latencies is a ratio of what each call costs the machine, every process counted.
* The calls are measured in rounds, every second one in reverse order. Each ratio is taken
  within a round (calls minutes apart see another machine) and the median over the rounds
  is reported.
* The three servers (``shop``) start once for all rounds: starting three Gunicorns per call
  and round would take longer than measuring; an idle server costs next to nothing.
* Every order is one unit of a product drawn from many, each with a stock no run exhausts,
  under an Idempotency-Key new for every request, so every request places an order (201):
  no 409 for stock, no replay. Answers are counted by status, so any other shows.
"""

from __future__ import annotations

import itertools
import secrets
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from options import Options
from shop import Shop, check_order, place_orders, running_shop, send
from targets import check_body
from wrk import BENCH_DIR, WrkRun, parse_wrk, run_script, script_result

ORDERS_SCRIPT = BENCH_DIR / "ordering.lua"
PLACED_ORDERS = 300
"""Orders placed over HTTP before the rounds, one after another: the ids the reads draw from."""
RESERVATION_IDS = 10**12
"""Order ids of the direct reservations start here, far above any id orders hands out."""
RESERVATION_BLOCK = 10**11
"""Order ids each run of ``reserve`` may use: up to 99 wrk threads of 10^9 each."""


@dataclass(frozen=True)
class Call:
    """One endpoint loaded: on which server, and the status every answer must have."""

    key: str
    label: str
    service: str
    status: int


PLACE = Call("place", "POST /api/v1/orders", "orders", 201)
READ = Call("read", "GET /api/v1/orders/{id}", "orders", 200)
ME = Call("me", "GET /api/v1/users/me", "users", 200)
RESERVE = Call("reserve", "POST /api/v1/reservations", "catalog", 201)
USER = Call("user", "GET /api/v1/users/{id}", "users", 200)
CALLS = (PLACE, READ, ME, RESERVE, USER)
"""In the order of the first round."""
COMPARISONS: tuple[tuple[Call, tuple[Call, ...]], ...] = ((PLACE, (ME, RESERVE)), (READ, (USER,)))
"""Each call read against the sum of its references' latencies."""


@dataclass(frozen=True)
class CallRun:
    """One wrk run of one call: wrk's figures and the answers by status."""

    run: WrkRun
    statuses: Mapping[int, int]

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second."""
        return self.run.requests / self.run.duration_s if self.run.duration_s else 0.0

    def unexpected(self, call: Call) -> int:
        """Answers whose status is not ``call``'s."""
        return sum(count for status, count in self.statuses.items() if status != call.status)


@dataclass(frozen=True)
class OrdersMeasurement:
    """Every round of the orders benchmark, and what the servers did meanwhile."""

    rounds: tuple[Mapping[str, CallRun], ...]
    warmups: tuple[Mapping[str, CallRun], ...]
    order_ids: tuple[int, int]
    product_ids: tuple[int, int]
    worker_restarts: int

    def runs(self, call: Call) -> list[CallRun]:
        """``call``'s measured runs, one per round."""
        return [measured[call.key] for measured in self.rounds]

    def median(self, call: Call) -> CallRun:
        """``call``'s round of median rate (the slower middle one for an even count)."""
        ranked = sorted(self.runs(call), key=lambda run: run.requests_per_second)
        return ranked[(len(ranked) - 1) // 2]

    def ratios(self, call: Call, references: Sequence[Call]) -> list[float]:
        """Per round: ``call``'s p50 latency over the sum of the references' p50s."""
        return [
            measured[call.key].run.p50_ms / sum(measured[ref.key].run.p50_ms for ref in references)
            for measured in self.rounds
        ]

    def added_ms(self, call: Call, references: Sequence[Call]) -> float:
        """Median over rounds of ``call``'s p50 minus the sum of the references' p50s."""
        return statistics.median(
            measured[call.key].run.p50_ms - sum(measured[ref.key].run.p50_ms for ref in references)
            for measured in self.rounds
        )

    def warmup_unexpected(self) -> int:
        """Answers of an unexpected status in every warm-up run."""
        return sum(warmup[call.key].unexpected(call) for warmup in self.warmups for call in CALLS)


def measure_orders(
    users: Mapping[str, str],
    *,
    wrk: str,
    options: Options,
    user_ids: tuple[int, int],
    access_token: str,
    logs: Path,
) -> OrdersMeasurement:
    """Start the shop, place the orders to read, check each call, then measure in rounds.

    ``access_token`` speaks for the customer, the first of ``user_ids``.
    """
    rounds: list[dict[str, CallRun]] = []
    warmups: list[dict[str, CallRun]] = []
    with running_shop(users, logs) as shop:
        customer = user_ids[0]
        order_ids = place_orders(shop, access_token, PLACED_ORDERS, customer)
        load = OrdersLoad(wrk, shop, options, access_token, user_ids, order_ids)
        check_calls(load, customer)
        for round_number in range(1, options.rounds + 1):
            ordered = CALLS if round_number % 2 else tuple(reversed(CALLS))
            warmups.append({})
            rounds.append({})
            for call in ordered:
                warmups[-1][call.key] = load.run(call, options.warmup)
                rounds[-1][call.key] = measured = load.run(call, options.duration)
                print(f"[orders round {round_number}] {describe(call, measured)}", flush=True)
    return OrdersMeasurement(
        tuple(rounds), tuple(warmups), order_ids, shop.product_ids, shop.worker_restarts()
    )


@dataclass
class OrdersLoad:
    """wrk with ordering.lua against the running shop, with each call's arguments."""

    wrk: str
    shop: Shop
    options: Options
    access_token: str
    user_ids: tuple[int, int]
    order_ids: tuple[int, int]
    reservation_blocks: Iterator[int] = field(default_factory=itertools.count)

    def run(self, call: Call, seconds: int) -> CallRun:
        """Load ``call`` for ``seconds`` with the read benchmark's threads and connections."""
        output = run_script(
            self.wrk,
            script=ORDERS_SCRIPT,
            base_url=self.shop.urls[call.service],
            seconds=seconds,
            threads=self.options.threads,
            connections=self.options.connections,
            script_args=self.arguments(call),
            env={"BENCH_ACCESS_TOKEN": self.access_token},
        )
        statuses = script_result(output, "BENCH_RESULT")["statuses"]
        return CallRun(parse_wrk(output), {int(code): n for code, n in statuses.items()})

    def arguments(self, call: Call) -> list[str]:
        """ordering.lua's arguments for ``call``; keys and order ids new for every run."""
        products = [str(product_id) for product_id in self.shop.product_ids]
        if call is PLACE:
            return ["place", *products, secrets.token_hex(8)]
        if call is RESERVE:
            return ["reserve", *products, str(self.next_reservation_id())]
        if call is ME:
            return ["me"]
        if call is READ:
            return ["read", "/api/v1/orders/", *(str(id_) for id_ in self.order_ids)]
        return ["read", "/api/v1/users/", *(str(id_) for id_ in self.user_ids)]

    def next_reservation_id(self) -> int:
        """The first order id of a block no other run of ``reserve`` uses."""
        return RESERVATION_IDS + next(self.reservation_blocks) * RESERVATION_BLOCK


def check_calls(load: OrdersLoad, customer: int) -> None:
    """Each call once: the status and body it must answer, or measuring it means nothing."""
    shop, token = load.shop, load.access_token
    order_id = load.order_ids[0]
    order = send(f"{shop.urls['orders']}/api/v1/orders/{order_id}", 200, access_token=token)
    check_order(order, customer, order_id)
    me = send(f"{shop.urls['users']}/api/v1/users/me", 200, access_token=token)
    if me.get("id") != customer:
        raise RuntimeError(f"users/me answered {me!r} for customer {customer}")
    reservation_id = load.next_reservation_id()
    line = {"product_id": shop.product_ids[0], "quantity": 1}
    body = {"order_id": reservation_id, "lines": [line]}
    reservation = send(f"{shop.urls['catalog']}/api/v1/reservations", 201, body=body)
    if reservation.get("state") != "reserved" or reservation.get("order_id") != reservation_id:
        raise RuntimeError(f"catalog answered {reservation!r} to {body!r}")
    check_body(f"{shop.urls['users']}/api/v1/users/{customer}", customer, token)


def describe(call: Call, measured: CallRun) -> str:
    """One progress line: rate, p50 and any answer of another status."""
    line = (
        f"{call.label}: {measured.requests_per_second:,.0f} req/s, p50 {measured.run.p50_ms:.1f} ms"
    )
    unexpected = measured.unexpected(call)
    return (
        f"{line}, {unexpected} unexpected answers {dict(measured.statuses)}" if unexpected else line
    )
