"""Login latency: ``POST /api/v1/tokens`` on the users app under Gunicorn, three kinds mixed.

Why this shape:

* A login is one Argon2id verification at the production cost (the ``UsersSettings``
  defaults, pinned in ``targets.users_env``), a look-up by name and, when it succeeds, a
  refresh-token INSERT and a signed access token. The hash is slow on purpose, so the figure
  that matters is how long one login takes, not how many a saturated server completes: wrk
  holds 1, then 2 connections (one thread each), where on 2 cores a login seldom waits for
  another.
* The service claims that a wrong password and an unknown name take as long as a right
  password (an unknown name is checked against a decoy hash), so response times do not tell
  which accounts exist. ``log_in.lua`` draws the kind of each request at random and times
  each request itself, so the kinds share every moment of the run and no drift of the
  machine's other load favours one; they are compared as ratios to the right password.
* Rounds repeat each concurrency, every second round in the other order. Percentiles are
  over every request of every round; each round's p50 is shown too, so the spread between
  rounds is visible.
* The server is the users service alone under Gunicorn (``targets``), on its own database
  of seeded users, started once; its rate limits are off, since one client address sends
  every attempt.
"""

from __future__ import annotations

import json
import statistics
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from database import SEEDED_PASSWORD
from options import Options
from targets import Target, count_worker_boots, running
from wrk import BENCH_DIR, run_script, script_result

LOG_IN_SCRIPT = BENCH_DIR / "log_in.lua"
LOGIN_PATH = "/api/v1/tokens"
CONNECTIONS = (1, 2)
"""wrk's connections in turn, each with its own thread (``-t1 -c1``, ``-t2 -c2``)."""


@dataclass(frozen=True)
class LoginCase:
    """One kind of login attempt: whose name, which password, and the status it must get."""

    key: str
    label: str
    login_prefix: str
    password: str
    expected_status: int


RIGHT_PASSWORD = LoginCase("right", "existing user, right password", "user", SEEDED_PASSWORD, 200)
CASES = (
    RIGHT_PASSWORD,
    # As long as the right one, so the two hash inputs differ in content only.
    LoginCase("wrong", "existing user, wrong password", "user", "wrong-password", 401),
    LoginCase("unknown", "unknown user name", "nobody", SEEDED_PASSWORD, 401),
)


@dataclass(frozen=True)
class LoginRound:
    """One wrk run at one concurrency: every request's latency, by case."""

    connections: int
    duration_s: float
    latencies_ms: Mapping[str, tuple[float, ...]]
    unexpected: Mapping[str, int]
    """Answers whose status was not the case's expected one."""
    socket_errors: tuple[int, ...]
    """connect, read, write, timeout."""


@dataclass(frozen=True)
class LoginFigures:
    """One case at one concurrency: percentiles over every request of every round."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    round_p50_ms: tuple[float, ...]
    unexpected: int


@dataclass(frozen=True)
class LoginMeasurement:
    """Every login round of the run, and the Gunicorn workers forked beyond the first ones."""

    rounds: tuple[LoginRound, ...]
    worker_restarts: int

    def at(self, connections: int) -> list[LoginRound]:
        """The rounds at ``connections``, in the order measured."""
        return [measured for measured in self.rounds if measured.connections == connections]

    def figures(self, case: LoginCase, connections: int) -> LoginFigures:
        """Percentiles of ``case`` at ``connections`` over every request of every round."""
        rounds = [r for r in self.at(connections) if r.latencies_ms.get(case.key)]
        pooled = [ms for measured in rounds for ms in measured.latencies_ms[case.key]]
        if len(pooled) < 2:
            raise RuntimeError(f"too few {case.key} logins at -c{connections}: {len(pooled)}")
        cuts = statistics.quantiles(pooled, n=100, method="inclusive")
        return LoginFigures(
            count=len(pooled),
            p50_ms=cuts[49],
            p95_ms=cuts[94],
            p99_ms=cuts[98],
            round_p50_ms=tuple(statistics.median(r.latencies_ms[case.key]) for r in rounds),
            unexpected=sum(r.unexpected.get(case.key, 0) for r in self.at(connections)),
        )


def measure_logins(
    target: Target, *, wrk: str, options: Options, id_range: tuple[int, int], logs: Path
) -> LoginMeasurement:
    """Start ``target``, check each case's status, warm up, then measure in rounds."""
    log_path = logs / "logins.log"
    rounds: list[LoginRound] = []
    with running(target, log_path) as base_url:
        for case in CASES:
            check_login(base_url, case, id_range[0])
        load = LoginLoad(wrk, base_url, script_args(id_range))
        load.run(max(CONNECTIONS), options.warmup)
        for round_number in range(1, options.login_rounds + 1):
            ordered = CONNECTIONS if round_number % 2 else tuple(reversed(CONNECTIONS))
            for connections in ordered:
                measured = load.run(connections, options.login_duration)
                rounds.append(measured)
                print(f"[login round {round_number}] {describe(measured)}", flush=True)
    restarts = count_worker_boots(log_path) - (target.workers or 0)
    return LoginMeasurement(tuple(rounds), restarts)


def script_args(id_range: tuple[int, int]) -> list[str]:
    """log_in.lua's arguments: the id range, then name, prefix, password, status per case."""
    low, high = id_range
    args = [str(low), str(high)]
    for case in CASES:
        args += [case.key, case.login_prefix, case.password, str(case.expected_status)]
    return args


@dataclass(frozen=True)
class LoginLoad:
    """wrk with log_in.lua against one running server."""

    wrk: str
    base_url: str
    script_args: Sequence[str]

    def run(self, connections: int, seconds: int) -> LoginRound:
        """Post logins of every case, mixed, for ``seconds`` over ``connections`` connections."""
        output = run_script(
            self.wrk,
            script=LOG_IN_SCRIPT,
            base_url=self.base_url,
            seconds=seconds,
            threads=connections,  # one connection per thread: log_in.lua times by thread
            connections=connections,
            script_args=self.script_args,
        )
        data = script_result(output, "BENCH_LOGINS")
        return LoginRound(
            connections=connections,
            duration_s=data["duration_us"] / 1e6,
            latencies_ms={
                key: tuple(us / 1000 for us in micros)
                for key, micros in data["latencies_us"].items()
            },
            unexpected=data["unexpected"],
            socket_errors=tuple(data["errors"]),
        )


def describe(measured: LoginRound) -> str:
    """One progress line: each case's p50 in this round."""
    medians = ", ".join(
        f"{key} {statistics.median(ms):.1f}" for key, ms in sorted(measured.latencies_ms.items())
    )
    return f"-c{measured.connections}: p50 ms {medians}"


def check_login(base_url: str, case: LoginCase, user_id: int) -> None:
    """One login of ``case`` must get its expected status, or measuring it means nothing."""
    login = f"{case.login_prefix}{user_id}"
    body = json.dumps({"login": login, "password": case.password}).encode()
    request = urllib.request.Request(
        base_url + LOGIN_PATH, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # a 127.0.0.1 URL
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != case.expected_status:
        raise RuntimeError(f"login {case.key} answered {status}, not {case.expected_status}")
