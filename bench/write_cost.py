"""What one way of writing costs, per call: this process's CPU, the database backends', the clock.

Shared by the write benchmarks (``placing_write.py``, ``event_record.py``), which each
compare two ways of the same writes through a service's own engine. A round runs one way
over a batch of calls; its CPU is this process's (``getrusage``: SQLAlchemy, psycopg, the
parameters) and that of the database's backends (``/proc/<pid>/stat`` of every connection
``pg_stat_activity`` shows for the database), divided by the calls. CPU time is each
process's own, so other work on the machine moves it little; the ways alternate over rounds
so that what does move it favours neither, and the median round of each way is reported.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from database import libpq_url
from procfs import read_stat


@dataclass(frozen=True)
class Round:
    """One round of one way: microseconds of CPU (and of the clock) per call."""

    way: str
    client_us: float
    backend_us: float
    wall_us: float


def alternating(ways: Sequence[str], rounds: int) -> Iterator[str]:
    """The ways in the order the rounds run them: as given, then reversed, and so on."""
    for number in range(rounds):
        yield from (ways if number % 2 == 0 else list(reversed(ways)))


def measure_round(way: str, calls: Sequence[Callable[[], None]], url: str) -> Round:
    """Make ``calls`` one after another, the ``way`` given, on ``url``'s database."""
    with psycopg.connect(libpq_url(_maintenance(url)), autocommit=True) as admin:
        backend_before = backends_cpu(admin, url)
        client_before = _own_cpu()
        started = time.perf_counter()
        for call in calls:
            call()
        wall = time.perf_counter() - started
        client = _own_cpu() - client_before
        backend = backends_cpu(admin, url) - backend_before
    million = 1_000_000 / len(calls)
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


def render(title: str, rounds: Sequence[Round], unit: str) -> str:
    """A Markdown table under ``title``: the median round of each way, per ``unit``."""
    ways = list(dict.fromkeys(r.way for r in rounds))
    lines = [
        title,
        "",
        f"| way | client CPU µs / {unit} | backend CPU µs / {unit} | both | wall µs / {unit} |",
        "|---|--:|--:|--:|--:|",
    ]
    for way in ways:
        own = [r for r in rounds if r.way == way]
        client = statistics.median(r.client_us for r in own)
        backend = statistics.median(r.backend_us for r in own)
        wall = statistics.median(r.wall_us for r in own)
        lines.append(
            f"| {way} | {client:.0f} | {backend:.0f} | {client + backend:.0f} | {wall:.0f} |"
        )
    return "\n".join(lines)
