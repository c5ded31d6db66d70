"""What an outbound call through ``flotilla.resilience.http`` costs: breaker, budget, client.

``.venv/bin/python bench/http_client.py [--repeats 15] [--calls 200] [--rounds 41]
[--concurrent-rounds 5]``

A :class:`~flotilla.resilience.http.ServiceClient` does more per call than a bare HTTP request: it
asks the circuit breaker for a permit and reports the outcome, counts the call for the retry
budget, cuts the timeouts to the request's deadline, sends a request id, a ``traceparent``
and the deadline left, and records a latency histogram. This measures what that costs, and
whether the breaker lets the calls of a threaded worker overlap. Every figure is read
against a baseline measured in the same run, in interleaved rounds: each round measures every
variant once, every second round in reverse order, so a drift of the machine's load favours
none. A ratio (or an added time) is taken within each round, between variants measured
seconds apart, and the median over the rounds is reported, so a round slowed down by other
work does not decide it; the median and best per-call figures are over rounds as well.

* **In process, no network.** A closed flotilla :class:`~flotilla.resilience.http.CircuitBreaker`
  around a no-op (``acquire()``, the call, ``record(success=True)``),
  :meth:`~flotilla.resilience.http.RetryBudget.record_call`, and pybreaker's ``CircuitBreaker.call``
  of the same no-op, each timed with ``timeit`` over ``--repeats`` rounds; the no-op called
  alone is the floor every row includes.
* **Sequential GETs over loopback.** ``bench/http_target_app.py`` (a bare WSGI function
  answering a 22-byte JSON body) runs under a real Gunicorn with the chassis config, one
  worker of 16 threads, worker recycling and the keep-alive request limit off so each client
  keeps one connection for the whole run. Against it, one call at a time: (a) urllib3's
  ``HTTPConnectionPool.urlopen``, keep-alive (the baseline: what ``ServiceClient`` itself
  sends through), (b) ``requests.Session.get``, (c) ``ServiceClient.get``, built by
  ``ServiceClient.from_settings`` with the ``HTTP_*`` defaults (local breaker). All three
  read the whole body and none parses it. Each is timed twice: *outside* any Flask request,
  as a worker or a script calls, and *inside* one (``app.test_request_context()`` of a
  ``create_service`` app with a ``traceparent`` header, after its ``before_request`` hooks
  ran), as a view calls, where the client also reads the deadline, the request id and the
  trace. ``--rounds`` rounds of ``--calls`` calls per variant: many short rounds, because
  what the client adds is a few percent of a loopback round trip and the machine's speed
  moves by more than that within seconds.
* **Concurrency.** Eight threads each make one call that takes 0.2 s, released together: a
  ``time.sleep(0.2)`` in process, through no breaker (the baseline), through one pybreaker
  ``CircuitBreaker`` and through one flotilla ``CircuitBreaker``; then eight GETs of ``/slow``
  (the server sleeps 0.2 s) through one urllib3 pool (the baseline), through one pybreaker
  around it, and through one ``ServiceClient``. The wall time of the eight, median of
  ``--concurrent-rounds`` rounds: pybreaker holds its lock for the whole guarded call, so its
  eight calls run one after another.

The client, the server and the machine's other work share its cores: read the ratios and the
added microseconds, within this run. Nothing asserts on time: the script measures and reports.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pybreaker
import requests
import urllib3
from flask import Flask

from flotilla import ServiceSettings, create_service
from flotilla.resilience.http import (
    BreakerPolicy,
    CircuitBreaker,
    RetryBudget,
    ServiceClient,
    remaining,
)
from flotilla.testing import GunicornServer
from http_target_app import SLOW_PATH, SLOW_SECONDS
from timing import Timing

BENCH_DIR = Path(__file__).resolve().parent
PATH = "/items/7"
CONNECT_TIMEOUT, READ_TIMEOUT = 0.5, 2.0
"""The ``ServiceClient`` defaults (``HTTP_CONNECT_TIMEOUT``, ``HTTP_READ_TIMEOUT``), for all."""
TIMEOUT = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
THREADS = 8
SERVER_ENV = {
    "GUNICORN_WORKERS": "1",
    "GUNICORN_THREADS": "16",
    "GUNICORN_MAX_REQUESTS": "0",
    "GUNICORN_KEEPALIVE_REQUESTS": "0",
    "GUNICORN_ACCESSLOG": "",
    "GUNICORN_LOGLEVEL": "warning",
}
"""One worker with threads to spare; no recycling, so every call reuses its connection."""

CLIENTS = ("urllib3", "requests", "flotilla")
PLACES = ("outside", "inside")
PRIMITIVES = ("noop", "flotilla", "budget", "pybreaker")
IN_PROCESS = ("none", "pybreaker", "flotilla")
OVER_HTTP = ("urllib3", "pybreaker", "flotilla")
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Results:
    """Every figure of the run."""

    primitives: dict[str, Timing]
    sequential: dict[tuple[str, str], Timing]
    in_process: dict[str, Timing]
    over_http: dict[str, Timing]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure everything and print it as a Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="rounds of in-process timings")
    parser.add_argument("--calls", type=int, default=200, help="sequential GETs per round")
    parser.add_argument("--rounds", type=int, default=41, help="rounds of sequential GETs")
    parser.add_argument("--concurrent-rounds", type=int, default=5, help="rounds of 8 threads")
    args = parser.parse_args(argv)
    primitives = measure_primitives(args.repeats)
    in_process = measure_in_process(args.concurrent_rounds)
    with tempfile.TemporaryDirectory() as directory:
        var = Path(directory)
        settings = bench_settings(var)
        app = build_app(settings)
        with target_server(var) as url:
            sequential = measure_sequential(url, app, settings, args.calls, args.rounds)
            over_http = measure_over_http(url, settings, args.concurrent_rounds)
    print(render(Results(primitives, sequential, in_process, over_http), args))


def bench_settings(var: Path) -> ServiceSettings:
    """The ``HTTP_*`` defaults with a local breaker (a shared one reads Redis every 0.5 s)."""
    return ServiceSettings(
        SERVICE_NAME="bench-http",
        VAR_DIR=var,
        LOG_LEVEL="WARNING",
        HTTP_BREAKER_SHARED=False,
    )


def build_app(settings: ServiceSettings) -> Flask:
    """A chassis app whose request context the *inside* calls run in."""
    app = create_service("bench_http", settings)
    app.add_url_rule(PATH, "item", lambda: {"status": "ok"})
    return app


def noop() -> None:
    """The guarded call of the in-process figures."""


def call_through(breaker: CircuitBreaker, function: Callable[[], T]) -> T:
    """Call ``function`` as ``ServiceClient`` does: ask for a permit, call unlocked, report."""
    trial = breaker.acquire()
    try:
        result = function()
    except Exception:
        breaker.record(success=False, trial=trial)
        raise
    breaker.record(success=True, trial=trial)
    return result


def interleaved(keys: Sequence[K], rounds: int, measure: Callable[[K], float]) -> dict[K, Timing]:
    """One sample of each key per round; every second round in reverse order."""
    samples: dict[K, list[float]] = {key: [] for key in keys}
    for round_number in range(rounds):
        order = keys if round_number % 2 == 0 else keys[::-1]
        for key in order:
            samples[key].append(measure(key))
    return {key: Timing(tuple(values)) for key, values in samples.items()}


def measure_primitives(repeats: int) -> dict[str, Timing]:
    """µs per call of each of :data:`PRIMITIVES`: breakers and budget at their defaults."""
    ours = CircuitBreaker("bench", BreakerPolicy())
    theirs = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=5)
    budget = RetryBudget(ratio=0.2, min_per_second=3.0, window=10.0)
    timers = {
        "noop": timeit.Timer(noop),
        "flotilla": timeit.Timer(lambda: call_through(ours, noop)),
        "budget": timeit.Timer(budget.record_call),
        "pybreaker": timeit.Timer(lambda: theirs.call(noop)),
    }
    numbers = {name: timer.autorange()[0] for name, timer in timers.items()}  # ~0.2 s each

    def measure(name: str) -> float:
        return timers[name].timeit(numbers[name]) / numbers[name] * 1e6

    return interleaved(PRIMITIVES, repeats, measure)


def measure_in_process(rounds: int) -> dict[str, Timing]:
    """Seconds for eight threads to make one 0.2 s call each, through each of :data:`IN_PROCESS`."""
    ours = CircuitBreaker("bench-threads", BreakerPolicy())
    theirs = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=5)

    def work() -> None:
        time.sleep(SLOW_SECONDS)

    calls: dict[str, Callable[[], object]] = {
        "none": work,
        "pybreaker": lambda: theirs.call(work),
        "flotilla": lambda: call_through(ours, work),
    }
    return interleaved(IN_PROCESS, rounds, lambda name: wall_time(calls[name]))


def wall_time(call: Callable[[], object], threads: int = THREADS) -> float:
    """Seconds from releasing ``threads`` threads, each making one ``call``, to the last done."""
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            call()
        except Exception as error:  # reported below: a failed call makes the figure void
            errors.append(error)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} of {threads} concurrent calls failed: {errors[0]!r}")
    return elapsed


@contextlib.contextmanager
def target_server(var: Path) -> Iterator[str]:
    """``http_target_app`` under Gunicorn with the chassis config; its URL; stopped by PID."""
    server = GunicornServer(
        "http_target_app:app", env=SERVER_ENV, log_path=var / "server.log", cwd=BENCH_DIR
    )
    with server:
        yield server.url


@contextlib.contextmanager
def place(app: Flask, where: str) -> Iterator[None]:
    """Nothing *outside*; *inside*, a request context of ``app`` after its before hooks ran."""
    if where == "outside":
        yield
        return
    with app.test_request_context(PATH, headers={"traceparent": TRACEPARENT}):
        if app.preprocess_request() is not None or remaining() is None:
            raise SystemExit("the app's before_request hooks answered or set no deadline")
        yield


def measure_sequential(
    url: str, app: Flask, settings: ServiceSettings, calls: int, rounds: int
) -> dict[tuple[str, str], Timing]:
    """µs per GET of each of :data:`CLIENTS`, outside and inside a request context."""
    pool = urllib3.connection_from_url(url, maxsize=1, retries=False, timeout=TIMEOUT)
    session = requests.Session()
    client = ServiceClient.from_settings("bench-target", url, settings)
    callers: dict[str, Callable[[], int]] = {
        "urllib3": lambda: pool.urlopen("GET", PATH, retries=False, redirect=False).status,
        "requests": lambda: (
            session.get(url + PATH, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)).status_code
        ),
        "flotilla": lambda: client.get(PATH).status,
    }
    variants = [(where, name) for where in PLACES for name in CLIENTS]
    for where, name in variants:
        with place(app, where):
            _check(callers[name])
            timeit.timeit(callers[name], number=calls // 4)  # warm up

    def measure(variant: tuple[str, str]) -> float:
        where, name = variant
        with place(app, where):
            return timeit.timeit(callers[name], number=calls) / calls * 1e6

    try:
        return interleaved(variants, rounds, measure)
    finally:
        session.close()
        pool.close()


def measure_over_http(url: str, settings: ServiceSettings, rounds: int) -> dict[str, Timing]:
    """Seconds for eight threads to GET ``/slow`` once each, through each of :data:`OVER_HTTP`."""
    pool = urllib3.connection_from_url(url, maxsize=THREADS, retries=False, timeout=TIMEOUT)
    theirs = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=5)
    client = ServiceClient.from_settings("bench-slow", url, settings)

    def slow() -> int:
        return _ok(pool.urlopen("GET", SLOW_PATH, retries=False, redirect=False).status)

    calls: dict[str, Callable[[], object]] = {
        "urllib3": slow,
        "pybreaker": lambda: theirs.call(slow),
        "flotilla": lambda: _ok(client.get(SLOW_PATH).status),
    }
    for call in calls.values():
        wall_time(call)  # warm up: every pool opens its eight connections
    try:
        return interleaved(OVER_HTTP, rounds, lambda name: wall_time(calls[name]))
    finally:
        pool.close()


def _ok(status: int) -> int:
    if status != 200:
        raise RuntimeError(f"the target answered {status}, not 200")
    return status


def _check(call: Callable[[], int]) -> None:
    """Refuse to time a client that does not get 200 from the target."""
    status = call()
    if status != 200:
        raise SystemExit(f"the target answered {status}, not 200")


PRIMITIVE_ROWS = {
    "noop": "the no-op alone (the floor every row includes)",
    "flotilla": "flotilla `CircuitBreaker`: `acquire()`, no-op, `record(success=True)`, closed",
    "budget": "flotilla `RetryBudget.record_call()`",
    "pybreaker": "pybreaker `CircuitBreaker.call(noop)`, closed",
}
CLIENT_ROWS = {
    "urllib3": "(a) urllib3 `HTTPConnectionPool.urlopen`",
    "requests": "(b) `requests.Session.get`",
    "flotilla": "(c) `ServiceClient.get`",
}
CONCURRENT_ROWS = {
    ("in process", "none"): "`time.sleep(0.2)`, no breaker (baseline)",
    ("in process", "pybreaker"): "the same through one pybreaker `CircuitBreaker`",
    ("in process", "flotilla"): "the same through one flotilla `CircuitBreaker`",
    ("over HTTP", "urllib3"): "GET `/slow` (0.2 s), one urllib3 pool (baseline)",
    ("over HTTP", "pybreaker"): "the same through one pybreaker `CircuitBreaker`",
    ("over HTTP", "flotilla"): "GET `/slow` through one `ServiceClient`",
}


def render(results: Results, args: argparse.Namespace) -> str:
    """The figures as Markdown tables, with the conditions of the run."""
    return "\n".join(
        [
            *render_primitives(results.primitives),
            "",
            *render_sequential(results.sequential),
            "",
            *render_concurrent(results.in_process, results.over_http),
            "",
            f"In process: {args.repeats} interleaved timeit rounds of about 0.2 s per row. "
            f"Sequential: {args.rounds} interleaved rounds of {args.calls} GETs per row, one "
            "kept-alive connection each, against one Gunicorn worker of 16 threads (chassis "
            f"config). Concurrent: {args.concurrent_rounds} rounds of {THREADS} threads.",
            f"Python {platform.python_version()}, urllib3 {_version('urllib3')}, requests "
            f"{_version('requests')}, pybreaker {_version('pybreaker')}, Gunicorn "
            f"{_version('gunicorn')}, {os.cpu_count()} CPUs, {platform.machine()}.",
        ]
    )


def render_primitives(timings: Mapping[str, Timing]) -> list[str]:
    """µs per in-process call, and each against pybreaker's."""
    theirs = timings["pybreaker"]
    return [
        "| in process, per call | median µs | best µs | / pybreaker |",
        "|---|---:|---:|---:|",
        *(
            f"| {PRIMITIVE_ROWS[name]} | {timing.median:.2f} | {timing.best:.2f} | "
            f"{timing.ratio_to(theirs):.2f} |"
            for name, timing in timings.items()
        ),
    ]


def render_sequential(timings: Mapping[tuple[str, str], Timing]) -> list[str]:
    """µs per sequential GET, each against urllib3's in the same place."""
    lines = [
        "| sequential GET over loopback | Flask request context | median µs | best µs "
        "| / (a) | added µs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (where, name), timing in timings.items():
        baseline = timings[(where, "urllib3")]
        lines.append(
            f"| {CLIENT_ROWS[name]} | {where} | {timing.median:.0f} | {timing.best:.0f} | "
            f"{timing.ratio_to(baseline):.2f} | {timing.added_to(baseline):+.0f} |"
        )
    return lines


def render_concurrent(
    in_process: Mapping[str, Timing], over_http: Mapping[str, Timing]
) -> list[str]:
    """Wall seconds of eight concurrent 0.2 s calls, each against its baseline."""
    lines = [
        f"| {THREADS} threads, one 0.2 s call each | median wall s | best s | / baseline |",
        "|---|---:|---:|---:|",
    ]
    for kind, timings, baseline in (
        ("in process", in_process, "none"),
        ("over HTTP", over_http, "urllib3"),
    ):
        for name, timing in timings.items():
            ratio = timing.ratio_to(timings[baseline])
            lines.append(
                f"| {kind}: {CONCURRENT_ROWS[(kind, name)]} | {timing.median:.3f} | "
                f"{timing.best:.3f} | {ratio:.2f} |"
            )
    return lines


def _version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


if __name__ == "__main__":
    main()
