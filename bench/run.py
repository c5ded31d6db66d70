"""``make bench``: load one read endpoint on six servers in one run; write bench/RESULTS.md.

Why this shape:

* The question is what the chassis costs and what its choices save, so every figure is read
  as a ratio to the chassis under Gunicorn (target a) measured in the same run on the same
  shared, noisy 2-core machine. Absolute numbers from another run or machine do not compare.
* One endpoint, ``GET /api/v1/users/{id}`` with random existing ids, is one primary-key
  lookup: small enough that framework overhead dominates, real enough to touch the database.
* Each target is started, checked to answer the right body, warmed up, measured with the same
  wrk parameters and stopped by PID before the next starts, so targets never compete.
* Targets are measured in rounds, every second one in reverse order (a b c, c b a, a b c),
  so a drift of the machine's other load favours no target; the median round is reported,
  so one round slowed by other work does not decide a ratio.
* PostgreSQL's own transaction counters (``pg_stat_database``) show what each server sends,
  whatever the client code claims. They are read only while no connection to the benchmark
  database is open, because PostgreSQL 15 flushes a live backend's counters lazily.

Nothing here asserts on time: the script measures and reports; readers judge.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

from flotilla import load_settings
from flotilla.migrations import upgrade
from flotilla.testing import DEFAULT_POSTGRES_URL, free_port, postgres_database
from users import create_app
from users.config import UsersSettings

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "get_user.lua"
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
BEGIN_MARK = "<!-- bench:results:begin -->"
END_MARK = "<!-- bench:results:end -->"

GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
GUNICORN_KEEPALIVE = 5  # the chassis default; the baseline gets the same
PROBE_REQUESTS = 2
"""Requests the runner itself sends each server: the readiness probe and the body check."""
WORKER_BOOT = re.compile(rb"Booting worker with pid")
"""Gunicorn's line for every worker it forks, in its plain and in the chassis' JSON log."""

NO_RECYCLING = "GUNICORN_MAX_REQUESTS=0"
USER_PATH = "/api/v1/users/"
TRANSACTIONAL_PREFIX, TRANSACTIONAL_SUFFIX = "/bench/users/", "/transactional"


@dataclass(frozen=True)
class Options:
    """How hard and how long to load each target."""

    duration: int
    warmup: int
    rounds: int
    connections: int
    threads: int
    users: int
    results: Path | None


@dataclass(frozen=True)
class Target:
    """One server to measure: how to start it and which path to load.

    ``{port}`` in the command or the environment is replaced by the port it listens on.
    ``workers`` is the Gunicorn worker count, so forks beyond it count as restarts.
    """

    key: str
    label: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    workers: int | None = GUNICORN_WORKERS
    path_prefix: str = USER_PATH
    path_suffix: str = ""

    def path(self, user_id: int) -> str:
        """The loaded path for ``user_id``."""
        return f"{self.path_prefix}{user_id}{self.path_suffix}"


@dataclass(frozen=True)
class WrkRun:
    """What wrk's ``done()`` reported for one run (see get_user.lua)."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: tuple[int, int, int, int]
    """connect, read, write, timeout."""
    non_2xx: int


@dataclass(frozen=True)
class Sample:
    """One round of one target: the measured run and what the server did meanwhile."""

    run: WrkRun
    warmup_requests: int
    commits: int
    rollbacks: int
    worker_boots: int

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second of the measured run."""
        return self.run.requests / self.run.duration_s if self.run.duration_s else 0.0


@dataclass
class Result:
    """Every round of one target."""

    target: Target
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> Sample:
        """The round of median rate (the slower middle one for an even count).

        Other work on the machine only ever slows a round down, sometimes by half; one such
        round moves a mean a lot and a median little.
        """
        ranked = sorted(self.samples, key=lambda sample: sample.requests_per_second)
        return ranked[(len(ranked) - 1) // 2]

    @property
    def served(self) -> int:
        """Every request the server answered while the transaction counters ran."""
        return sum(s.run.requests + s.warmup_requests + PROBE_REQUESTS for s in self.samples)

    def per_request(self, count: int) -> float:
        """``count`` divided by the requests served."""
        return count / self.served if self.served else 0.0

    @property
    def restarts(self) -> str:
        """Workers forked beyond the first ones, over all rounds (Gunicorn only)."""
        if self.target.workers is None:
            return "-"
        return str(sum(s.worker_boots - self.target.workers for s in self.samples))


@dataclass
class Report:
    """Everything RESULTS.md and stdout show about one run."""

    options: Options
    command: str
    started: datetime
    machine: dict[str, str]
    order: list[str] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)


@dataclass(frozen=True)
class Bench:
    """What every measurement of one run shares."""

    options: Options
    wrk: str
    database_url: str
    id_range: tuple[int, int]
    logs: Path

    @property
    def admin_url(self) -> str:
        """The server's ``postgres`` database, to read statistics without adding to them."""
        return libpq_url(make_url(self.database_url).set(database="postgres"))

    @property
    def database(self) -> str:
        """The benchmark database's name."""
        return make_url(self.database_url).database or ""


def main(argv: Sequence[str] | None = None) -> None:
    """Set up the database, measure every target, print and write the results."""
    options = parse_options(argv)
    started = datetime.now(UTC)
    wrk = ensure_wrk()
    with postgres_database() as database_url:
        id_range = prepare_database(database_url, options.users)
        report = Report(options, describe_command(argv), started, describe_machine(wrk))
        with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as logs:
            bench = Bench(options, wrk, database_url, id_range, Path(logs))
            measure_all(bench, build_targets(database_url), report)
    table = render_table(report)
    print(f"\n{table}")
    if options.results is not None:
        write_results(options.results, render_section(report, table))
        print(f"\nwrote {options.results.relative_to(ROOT)}")


def parse_options(argv: Sequence[str] | None) -> Options:
    """Command-line flags, each defaulting to a ``BENCH_*`` variable, then to a fixed value."""
    parser = argparse.ArgumentParser(description="Load-test the users service; see bench/.")
    parser.add_argument("--duration", type=int, default=_env_int("BENCH_DURATION", 4))
    parser.add_argument("--warmup", type=int, default=_env_int("BENCH_WARMUP", 1))
    parser.add_argument("--rounds", type=int, default=_env_int("BENCH_ROUNDS", 3))
    parser.add_argument("--connections", type=int, default=_env_int("BENCH_CONNECTIONS", 16))
    parser.add_argument("--threads", type=int, default=_env_int("BENCH_THREADS", 2))
    parser.add_argument("--users", type=int, default=_env_int("BENCH_USERS", 10_000))
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up")
    parser.add_argument("--no-results", action="store_true", help="print only; keep RESULTS.md")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    return Options(
        duration=3 if quick else args.duration,
        warmup=1 if quick else args.warmup,
        rounds=1 if quick else args.rounds,
        connections=args.connections,
        threads=args.threads,
        users=args.users,
        results=None if args.no_results else RESULTS_PATH,
    )


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def ensure_wrk() -> str:
    """The path of ``wrk``, installed with apt-get when missing (the machines run as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    print("wrk is missing; running: " + " ".join(install), flush=True)
    if subprocess.run(install, env=env, check=False).returncode != 0:
        print("install failed; running: apt-get update, then the install again", flush=True)
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is still not on PATH after apt-get install")
    return found


def prepare_database(database_url: str, users: int) -> tuple[int, int]:
    """Migrate the users schema, seed ``users`` rows; return the lowest and highest id."""
    app = create_app(load_settings(UsersSettings, DATABASE_URL=database_url, LOG_LEVEL="WARNING"))
    upgrade(app)
    password_hash = app.extensions["users.password_hasher"].hash("bench-password")
    app.extensions["flotilla.db"].engine.dispose()
    with psycopg.connect(libpq_url(make_url(database_url)), autocommit=True) as connection:
        seed_users(connection, users, password_hash)
        connection.execute("VACUUM ANALYZE users")
        row = connection.execute("SELECT min(id), max(id) FROM users").fetchone()
    assert row is not None
    print(f"seeded {users} users (ids {row[0]}..{row[1]})", flush=True)
    return int(row[0]), int(row[1])


def seed_users(connection: psycopg.Connection[Any], count: int, password_hash: str) -> None:
    """One set-based INSERT: the rows come from ``generate_series`` inside PostgreSQL."""
    connection.execute(
        """
        INSERT INTO users (username, email, password_hash, display_name, roles, is_active,
                           created_at, updated_at, password_changed_at)
        SELECT 'user' || n, 'user' || n || '@example.test', %(hash)s, 'User ' || n,
               '["customer"]'::json, true, now(), now(), now()
        FROM generate_series(1, %(count)s) AS n
        """,
        {"hash": password_hash, "count": count},
    )


def libpq_url(url: Any) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as a URL libpq understands."""
    return str(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def build_targets(database_url: str) -> list[Target]:
    """The six servers, in the order of the first round.

    e and f repeat a and d with Gunicorn's worker recycling off: the chassis default replaces
    each worker every 1000 ± 100 requests, which at these rates is every few seconds, so a
    and d show the chassis as configured and e and f its cost per request alone.
    """
    python = sys.executable
    chassis = (python, "-m", "gunicorn", "-c", "python:flotilla.gunicorn")
    on_path = ("--pythonpath", str(BENCH_DIR))
    env = chassis_env(database_url)
    never_recycle = {**env, "GUNICORN_MAX_REQUESTS": "0"}
    users = Target("a", "chassis, Gunicorn", (*chassis, "users.wsgi:app"), env)
    transactional = Target(
        "d",
        "chassis, Gunicorn, read in an ORM transaction",
        (*chassis, *on_path, "transactional_app:app"),
        env,
        path_prefix=TRANSACTIONAL_PREFIX,
        path_suffix=TRANSACTIONAL_SUFFIX,
    )
    return [
        users,
        transactional,
        replace(transactional, key="f", label=f"as d, {NO_RECYCLING}", env=never_recycle),
        replace(users, key="e", label=f"as a, {NO_RECYCLING}", env=never_recycle),
        Target(
            "c",
            "plain Flask + psycopg, plain Gunicorn",
            (*plain_gunicorn(), *on_path, "baseline_app:app"),
            {"BASELINE_CONNINFO": libpq_url(make_url(database_url))},
        ),
        Target(
            "b",
            "chassis, Flask dev server (threaded)",
            (python, str(BENCH_DIR / "devserver.py"), "--port={port}"),
            {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
            workers=None,
        ),
    ]


def chassis_env(database_url: str) -> dict[str, str]:
    """The users service's environment under the chassis' Gunicorn config."""
    return {
        "DATABASE_URL": database_url,
        "GUNICORN_BIND": "127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(GUNICORN_WORKERS),
        "GUNICORN_THREADS": str(GUNICORN_THREADS),
        "GUNICORN_ACCESSLOG": "",  # off: the baseline writes none either
        "LOG_LEVEL": "WARNING",
    }


def plain_gunicorn() -> tuple[str, ...]:
    """Gunicorn with plain flags: the chassis' worker model, none of its other settings."""
    return (
        sys.executable,
        "-m",
        "gunicorn",
        f"--workers={GUNICORN_WORKERS}",
        f"--threads={GUNICORN_THREADS}",
        "--worker-class=gthread",
        f"--keep-alive={GUNICORN_KEEPALIVE}",
        "--no-control-socket",
        "--bind=127.0.0.1:{port}",
    )


def measure_all(bench: Bench, targets: Sequence[Target], report: Report) -> None:
    """Measure every target once per round, every other round in reverse order."""
    for round_number in range(1, bench.options.rounds + 1):
        ordered = targets if round_number % 2 else list(reversed(targets))
        for target in ordered:
            sample = measure(target, bench, round_number)
            report.results.setdefault(target.key, Result(target)).samples.append(sample)
            report.order.append(target.key)


def measure(target: Target, bench: Bench, round_number: int) -> Sample:
    """Start ``target``, check it, warm it up, load it, stop it; count its transactions."""
    first_id = bench.id_range[0]
    log_path = bench.logs / f"{target.key}-{round_number}.log"
    print(f"[round {round_number}] {target.key}. {target.label}: ", end="", flush=True)
    commits_before, rollbacks_before = transaction_counts(bench)
    with running(target, log_path, first_id) as base_url:
        check_body(base_url + target.path(first_id), first_id)
        warmup = run_wrk(bench, target, base_url, bench.options.warmup)
        measured = run_wrk(bench, target, base_url, bench.options.duration)
    commits_after, rollbacks_after = transaction_counts(bench)
    sample = Sample(
        run=measured,
        warmup_requests=warmup.requests,
        commits=commits_after - commits_before,
        rollbacks=rollbacks_after - rollbacks_before,
        worker_boots=len(WORKER_BOOT.findall(log_path.read_bytes())),
    )
    print(f"{sample.requests_per_second:,.0f} req/s", flush=True)
    return sample


@contextmanager
def running(target: Target, log_path: Path, probe_id: int) -> Iterator[str]:
    """Start ``target`` on a free port, wait until it answers, yield its URL, stop it by PID."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({key: value.format(port=port) for key, value in target.env.items()})
    command = [part.format(port=port) for part in target.command]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base_url + target.path(probe_id), log_path)
        yield base_url
    finally:
        stop(process)


def wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Poll ``url`` until it answers 200; fail fast, with the log, if the server died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # a 127.0.0.1 URL
                if response.status == 200:
                    return
        except OSError:  # refused while starting; URLError and HTTPError are OSErrors
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within 60 s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a server log, for error messages."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (Gunicorn's master stops its workers); SIGKILL it if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def check_body(url: str, user_id: int) -> None:
    """Every target must answer the same JSON for the same id, or the comparison is void."""
    with urllib.request.urlopen(url, timeout=5) as response:  # a 127.0.0.1 URL
        body = json.loads(response.read())
    expected = {"id": user_id, "username": f"user{user_id}", "display_name": f"User {user_id}"}
    if {key: body.get(key) for key in expected} != expected or "created_at" not in body:
        raise RuntimeError(f"{url} answered {body!r}, expected {expected} and created_at")


def run_wrk(bench: Bench, target: Target, base_url: str, seconds: int) -> WrkRun:
    """Run wrk with get_user.lua for ``seconds``; parse the JSON line its ``done()`` wrote."""
    low, high = bench.id_range
    command = [
        *wrk_command(bench.wrk, bench.options, seconds, base_url),
        "--",
        str(low),
        str(high),
        target.path_prefix,
        target.path_suffix,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(completed.stdout)


def wrk_command(wrk: str, options: Options, seconds: int, base_url: str) -> list[str]:
    """wrk's flags; the same for every target."""
    return [
        wrk,
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{seconds}s",
        "--timeout=2s",
        f"--script={LUA_SCRIPT.relative_to(ROOT)}",
        base_url,
    ]


def parse_wrk(output: str) -> WrkRun:
    """The ``BENCH_RESULT {...}`` line of wrk's output as a :class:`WrkRun`."""
    match = re.search(r"^BENCH_RESULT (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no BENCH_RESULT line:\n{output}")
    data = json.loads(match.group(1))
    return WrkRun(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=(data["connect"], data["read"], data["write"], data["timeout"]),
        non_2xx=data["non_2xx"],
    )


def transaction_counts(bench: Bench) -> tuple[int, int]:
    """``xact_commit`` and ``xact_rollback`` of the benchmark database, once it is idle."""
    with psycopg.connect(bench.admin_url, autocommit=True) as connection:
        wait_until_disconnected(connection, bench.database)
        row = connection.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
            (bench.database,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"pg_stat_database has no row for {bench.database}")
    return int(row[0]), int(row[1])


def wait_until_disconnected(
    connection: psycopg.Connection[Any], database: str, timeout: float = 30.0
) -> None:
    """Wait until no backend serves ``database``: an exiting backend flushes its counters."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"connections to {database} stayed open for {timeout} s")


def describe_command(argv: Sequence[str] | None) -> str:
    """The command line that produced the figures."""
    args = " ".join(sys.argv[1:] if argv is None else argv)
    return f"uv run --frozen python bench/run.py {args}".strip()


def describe_machine(wrk: str) -> dict[str, str]:
    """Versions and load that a reader needs to judge the figures."""
    with psycopg.connect(libpq_url(DEFAULT_POSTGRES_URL)) as db:
        row = db.execute("SHOW server_version").fetchone()
    wrk_banner = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk_banner.stdout or wrk_banner.stderr).split(" [")[0].removeprefix("wrk ")
    return {
        "CPU": f"{os.cpu_count()} cores, shared with other work; wrk, servers and PostgreSQL "
        "all run on them",
        "load average (1/5/15 min) at start": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "Python": platform.python_version(),
        "Gunicorn": version("gunicorn"),
        "Flask": version("flask"),
        "SQLAlchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "PostgreSQL": str(row[0]) if row else "?",
        "wrk": wrk_version.strip(),
    }


def render_table(report: Report) -> str:
    """The Markdown table, targets in key order, median req/s as a ratio to target a's."""
    reference = report.results.get("a")
    base = reference.median.requests_per_second if reference else 0.0
    rows = [
        "| target | req/s: median (each round) | ratio to a | p50 ms | p99 ms | errors c/r/w/t "
        "| non-2xx | worker restarts | commits/req | rollbacks/req | xacts/req |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    rows += [render_row(result, base) for _, result in sorted(report.results.items())]
    return "\n".join(rows)


def render_row(result: Result, base: float) -> str:
    """One target's row: rate and latency of the median round, counts over all rounds."""
    samples, median = result.samples, result.median
    rate = median.requests_per_second
    rounds = " / ".join(f"{s.requests_per_second:,.0f}" for s in samples)
    errors = "/".join(
        str(sum(column)) for column in zip(*(s.run.socket_errors for s in samples), strict=True)
    )
    commits = sum(s.commits for s in samples)
    rollbacks = sum(s.rollbacks for s in samples)
    cells = [
        f"{result.target.key}. {result.target.label}",
        f"{rate:,.0f} ({rounds})",
        f"{rate / base:.2f}" if base else "-",
        f"{median.run.p50_ms:.1f}",
        f"{median.run.p99_ms:.1f}",
        errors,
        str(sum(s.run.non_2xx for s in samples)),
        result.restarts,
        f"{result.per_request(commits):.2f}",
        f"{result.per_request(rollbacks):.2f}",
        f"{result.per_request(commits + rollbacks):.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def render_section(report: Report, table: str) -> str:
    """The generated part of RESULTS.md: when, how, on what, and the table."""
    options = report.options
    wrk_line = " ".join(wrk_command("wrk", options, options.duration, "http://127.0.0.1:PORT"))
    machine = "\n".join(f"- {name}: {value}" for name, value in report.machine.items())
    return "\n".join(
        [
            f"Run {report.started:%Y-%m-%d %H:%M} UTC by `make bench` (`{report.command}`).",
            "",
            f"Each target, in each of {options.rounds} round(s): {options.warmup} s warm-up, "
            f"then `{wrk_line} -- LOW HIGH PATH`, over {options.users:,} seeded users. "
            f"Order: {', '.join(report.order)}.",
            "",
            machine,
            "",
            table,
        ]
    )


def write_results(path: Path, section: str) -> None:
    """Replace the generated section of ``path``; the prose around it is kept as written."""
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARK not in text or END_MARK not in text:
        text = RESULTS_TEMPLATE
    head, rest = text.split(BEGIN_MARK, 1)
    _, after = rest.split(END_MARK, 1)
    path.write_text(f"{head}{BEGIN_MARK}\n{section}\n{END_MARK}{after}")


RESULTS_TEMPLATE = f"""# Benchmark results

Written by `make bench` (`bench/run.py`); text outside the markers is kept across runs.

{BEGIN_MARK}
{END_MARK}
"""


if __name__ == "__main__":
    main()
