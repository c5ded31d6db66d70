"""``make bench``: one read endpoint on six servers, logins, then orders, in one run; RESULTS.md.

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
  whatever the client code claims.
* The endpoint requires a signed-in user, so every request carries one access token signed
  with a key made for this run (``credentials``): the chassis verifies it on each request,
  as in production. What that costs, and what a login costs, are measured apart, while no
  other server runs: token verification in process before the reads; one password hash in
  process, then logins over HTTP at low concurrency, after them (``in_process``, ``logins``).
* Last, with the same token, seeded users and wrk parameters: placing and reading orders on
  users, catalog and orders under Gunicorn, against the calls an order is made of (``ordering``).

This module only orchestrates: ``options`` (flags), ``database`` (seed, counters),
``credentials`` (key, token), ``targets`` (servers), ``wrk`` (load), ``in_process``,
``logins``, ``shop`` and ``ordering`` (the other measurements), ``results`` and ``report``
(tables, RESULTS.md).
Nothing here asserts on time: the script measures and reports; readers judge.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from credentials import generate_signing_key, issue_bench_token
from database import prepare_database, transaction_counts
from flotilla import load_settings
from flotilla.testing import postgres_database
from in_process import run_token_verification, time_password_hash
from logins import measure_logins
from options import Options, parse_options
from ordering import measure_orders
from report import describe_command, describe_machine, render_section, render_table, write_results
from results import Report, Sample
from targets import (
    Target,
    build_targets,
    chassis_env,
    check_body,
    count_worker_boots,
    running,
    users_env,
    users_under_gunicorn,
)
from users.config import UsersSettings
from wrk import WrkRun, ensure_wrk, run_wrk

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bench:
    """What every measurement of one run shares."""

    options: Options
    wrk: str
    database_url: str
    id_range: tuple[int, int]
    logs: Path
    access_token: str


def main(argv: Sequence[str] | None = None) -> None:
    """Seed the database; measure tokens, every target, a hash and logins; write the results."""
    options = parse_options(argv)
    started = datetime.now(UTC)
    wrk = ensure_wrk()
    with postgres_database() as database_url:
        env = users_env(database_url, generate_signing_key())
        settings = load_settings(UsersSettings, **env)
        id_range = prepare_database(settings, options.users)
        report = Report(options, describe_command(argv), started, describe_machine(wrk))
        with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as logs:
            token = issue_bench_token(settings, id_range[0])
            bench = Bench(options, wrk, database_url, id_range, Path(logs), token)
            measure_sections(bench, env, settings, report)
    section = render_section(report, render_table(report))
    print(f"\n{section}")
    if options.results is not None:
        write_results(options.results, section)
        print(f"\nwrote {options.results.relative_to(ROOT)}")


def measure_sections(
    bench: Bench, env: Mapping[str, str], settings: UsersSettings, report: Report
) -> None:
    """Measure what ``--only`` asks for (every section by default), in RESULTS.md's order."""
    sections, options, logs = bench.options.sections, bench.options, bench.logs
    if "reads" in sections:
        print("timing token verification in process", flush=True)
        report.token_verification = run_token_verification()
        measure_all(bench, build_targets(env), report)
    if "logins" in sections:
        print("timing Argon2id hashes in process", flush=True)
        report.password_hash = time_password_hash(settings)
        users = users_under_gunicorn(chassis_env(env))
        report.logins = measure_logins(
            users, wrk=bench.wrk, options=options, id_range=bench.id_range, logs=logs
        )
    if "orders" in sections:
        report.orders = measure_orders(
            env,
            wrk=bench.wrk,
            options=options,
            user_ids=bench.id_range,
            access_token=bench.access_token,
            logs=logs,
        )


def measure_all(bench: Bench, targets: Sequence[Target], report: Report) -> None:
    """Measure every target once per round, every other round in reverse order."""
    for round_number in range(1, bench.options.rounds + 1):
        ordered = targets if round_number % 2 else list(reversed(targets))
        for target in ordered:
            report.add(target, measure(target, bench, round_number))


def measure(target: Target, bench: Bench, round_number: int) -> Sample:
    """Start ``target``, check it, warm it up, load it, stop it; count its transactions."""
    first_id = bench.id_range[0]
    log_path = bench.logs / f"{target.key}-{round_number}.log"
    print(f"[round {round_number}] {target.key}. {target.label}: ", end="", flush=True)
    before = transaction_counts(bench.database_url)
    with running(target, log_path, first_id) as base_url:
        check_body(base_url + target.path(first_id), first_id, bench.access_token)
        warmup = load(bench, target, base_url, bench.options.warmup)
        measured = load(bench, target, base_url, bench.options.duration)
    sample = Sample(
        run=measured,
        warmup_requests=warmup.requests,
        transactions=transaction_counts(bench.database_url) - before,
        worker_boots=count_worker_boots(log_path),
    )
    print(f"{sample.requests_per_second:,.0f} req/s", flush=True)
    return sample


def load(bench: Bench, target: Target, base_url: str, seconds: int) -> WrkRun:
    """Load ``target`` for ``seconds`` with random ids of the seeded range and the token."""
    low, high = bench.id_range
    return run_wrk(
        bench.wrk,
        base_url=base_url,
        seconds=seconds,
        threads=bench.options.threads,
        connections=bench.options.connections,
        script_args=(str(low), str(high), target.path_prefix, target.path_suffix),
        env={"BENCH_ACCESS_TOKEN": bench.access_token},
    )


if __name__ == "__main__":
    main()
