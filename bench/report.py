"""The run as Markdown tables, and the generated section of RESULTS.md rewritten in place.

Every rate is shown as a ratio to the chassis under Gunicorn (target a) in the same run,
every login latency as a ratio to a right-password login in the same rounds, and the orders
latencies as ratios to the calls they are read against: absolute numbers from another run or
machine do not compare.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from database import server_version
from in_process import HashTiming
from logins import CASES, CONNECTIONS, LOG_IN_SCRIPT, RIGHT_PASSWORD, LoginCase, LoginMeasurement
from options import Options
from ordering import CALLS, COMPARISONS, ORDERS_SCRIPT, PLACED_ORDERS, Call, OrdersMeasurement
from results import Report, Result
from shop import PRODUCT_STOCK, PRODUCTS
from wrk import wrk_command, wrk_version

BEGIN_MARK = "<!-- bench:results:begin -->"
END_MARK = "<!-- bench:results:end -->"
HEADER = (
    "| target | req/s: median (each round) | ratio to a | p50 ms | p99 ms | errors c/r/w/t "
    "| non-2xx | worker restarts | commits/req | rollbacks/req | xacts/req |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
LOGIN_HEADER = (
    "| login case (status) | wrk | logins | p50 ms (each round's) | p95 ms | p99 ms "
    "| p50 / right | p95 / right | unexpected status |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|"
)
ORDERS_HEADER = (
    "| call | server | req/s: median (each round) | p50 ms | p99 ms | errors c/r/w/t "
    "| answers (all rounds) | read against | p50 ratio: median (each round) | p50 added ms |\n"
    "|---|---|--:|--:|--:|--:|---|---|--:|--:|"
)
RESULTS_TEMPLATE = f"""# Benchmark results

Written by `make bench` (`bench/benchmark.py`); text outside the markers is kept across runs.

{BEGIN_MARK}
{END_MARK}
"""


def describe_command(argv: Sequence[str] | None) -> str:
    """The command line that produced the figures."""
    args = " ".join(sys.argv[1:] if argv is None else argv)
    return f"uv run --frozen python bench/benchmark.py {args}".strip()


def describe_machine(wrk: str) -> dict[str, str]:
    """Versions and load that a reader needs to judge the figures."""
    return {
        "CPU": f"{os.cpu_count()} cores, shared with other work; wrk, servers and PostgreSQL "
        "all run on them",
        "load average (1/5/15 min) at start": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "Python": platform.python_version(),
        "Gunicorn": version("gunicorn"),
        "Flask": version("flask"),
        "SQLAlchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "PostgreSQL": server_version(),
        "wrk": wrk_version(wrk),
    }


def render_table(report: Report) -> str:
    """The Markdown table, targets in key order, median req/s as a ratio to target a's."""
    reference = report.results.get("a")
    base = reference.median.requests_per_second if reference else 0.0
    rows = [render_row(result, base) for _, result in sorted(report.results.items())]
    return "\n".join([HEADER, *rows])


def render_row(result: Result, base: float) -> str:
    """One target's row: rate and latency of the median round, counts over all rounds."""
    samples, median = result.samples, result.median
    rate = median.requests_per_second
    rounds = " / ".join(f"{s.requests_per_second:,.0f}" for s in samples)
    errors = zip(*(s.run.socket_errors for s in samples), strict=True)
    transactions = result.transactions
    cells = [
        f"{result.target.key}. {result.target.label}",
        f"{rate:,.0f} ({rounds})",
        f"{rate / base:.2f}" if base else "-",
        f"{median.run.p50_ms:.1f}",
        f"{median.run.p99_ms:.1f}",
        "/".join(str(sum(column)) for column in errors),
        str(sum(s.run.non_2xx for s in samples)),
        result.restarts,
        f"{result.per_request(transactions.commits):.2f}",
        f"{result.per_request(transactions.rollbacks):.2f}",
        f"{result.per_request(transactions.commits + transactions.rollbacks):.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def render_section(report: Report, table: str) -> str:
    """The generated part of RESULTS.md: when, on what, then reads, logins, tokens, orders."""
    machine = "\n".join(f"- {name}: {value}" for name, value in report.machine.items())
    parts = [
        f"Run {report.started:%Y-%m-%d %H:%M} UTC by `make bench` (`{report.command}`).",
        "",
        machine,
    ]
    if report.results:
        parts += ["", "### Reads", "", render_read_conditions(report), "", table]
    if report.logins is not None:
        parts += ["", "### Logins", "", render_logins(report.logins, report.options)]
    if report.password_hash is not None:
        parts += ["", render_hash(report.password_hash, report.logins)]
    if report.token_verification is not None:
        parts += ["", "### Token verification", "", render_token_verification(report)]
    if report.orders is not None:
        parts += ["", "### Orders", "", render_orders(report.orders, report.options)]
    return "\n".join(parts)


def render_read_conditions(report: Report) -> str:
    """How each read target was loaded, and in which order."""
    options = report.options
    wrk_line = " ".join(
        wrk_command(
            "wrk",
            seconds=options.duration,
            threads=options.threads,
            connections=options.connections,
        )
    )
    return (
        f"Each target, in each of {options.rounds} round(s): {options.warmup} s warm-up, then "
        f"`BENCH_ACCESS_TOKEN=TOKEN {wrk_line} http://127.0.0.1:PORT -- LOW HIGH PATH`, over "
        f"{options.users:,} seeded users. Order: {', '.join(report.order)}."
    )


def render_logins(logins: LoginMeasurement, options: Options) -> str:
    """The login table, one row per case and concurrency, and how it was measured."""
    wrk_line = " ".join(
        wrk_command(
            "wrk", seconds=options.login_duration, threads=1, connections=1, script=LOG_IN_SCRIPT
        )
    )
    cases = " ".join(
        f"{case.key} {case.login_prefix} {case.password} {case.expected_status}" for case in CASES
    )
    errors = "; ".join(
        f"-c{connections}: "
        + "/".join(str(sum(r.socket_errors[i] for r in logins.at(connections))) for i in range(4))
        for connections in CONNECTIONS
    )
    conditions = (
        f"Target a's server and settings, started once. Each request's case drawn at random; "
        f"{options.warmup} s warm-up at 2 connections, then {options.login_rounds} round(s) of "
        f"{options.login_duration} s at 1 and at 2 connections (`-t1 -c1`, `-t2 -c2`; the "
        f"other order in every second round): `{wrk_line} http://127.0.0.1:PORT -- LOW HIGH "
        f"{cases}`. Percentiles over every login of every round; ratios to the right "
        f"password at the same concurrency. wrk socket errors c/r/w/t: {errors}. Gunicorn "
        f"workers restarted meanwhile: {logins.worker_restarts}."
    )
    rows = [
        render_login_row(case, connections, logins) for connections in CONNECTIONS for case in CASES
    ]
    return "\n".join([conditions, "", LOGIN_HEADER, *rows])


def render_login_row(case: LoginCase, connections: int, logins: LoginMeasurement) -> str:
    """One case at one concurrency, with its ratios to the right password's."""
    figures = logins.figures(case, connections)
    right = logins.figures(RIGHT_PASSWORD, connections)
    rounds = " / ".join(f"{p50:.1f}" for p50 in figures.round_p50_ms)
    cells = [
        f"{case.key}: {case.label} ({case.expected_status})",
        f"-t{connections} -c{connections}",
        f"{figures.count:,}",
        f"{figures.p50_ms:.1f} ({rounds})",
        f"{figures.p95_ms:.1f}",
        f"{figures.p99_ms:.1f}",
        f"{figures.p50_ms / right.p50_ms:.2f}",
        f"{figures.p95_ms / right.p95_ms:.2f}",
        str(figures.unexpected),
    ]
    return "| " + " | ".join(cells) + " |"


def render_hash(hashing: HashTiming, logins: LoginMeasurement | None) -> str:
    """One hash in-process, and its share of a right-password login at one connection."""
    text = (
        f"One Argon2id hash in the runner's process with the service's `Passwords` "
        f"(time_cost={hashing.time_cost}, memory_cost={hashing.memory_kib:,} KiB, "
        f"parallelism={hashing.parallelism}), {len(hashing.hash_ms)} times, alternating with "
        f"a verification, just before the logins, with no server running: hash "
        f"{hashing.hash_median:.1f} ms, "
        f"verify {hashing.verify_median:.1f} ms (medians; verify "
        f"{min(hashing.verify_ms):.1f} to {max(hashing.verify_ms):.1f} ms)."
    )
    if logins is None:
        return text
    connections = min(CONNECTIONS)
    login_p50 = logins.figures(RIGHT_PASSWORD, connections).p50_ms
    share = hashing.verify_median / login_p50
    return (
        f"{text} A right-password login at `-c{connections}` took {login_p50:.1f} ms at p50, "
        f"so the verification is {share:.0%} of it."
    )


def render_token_verification(report: Report) -> str:
    """What ``bench/token_verification.py`` printed, under the command that printed it."""
    return (
        "`python bench/token_verification.py` (its defaults), run by `make bench` before the "
        f"first server started:\n\n{report.token_verification}"
    )


def render_orders(orders: OrdersMeasurement, options: Options) -> str:
    """How the orders calls were loaded, then one row per call with its ratios."""
    wrk_line = " ".join(
        wrk_command(
            "wrk",
            seconds=options.duration,
            threads=options.threads,
            connections=options.connections,
            script=ORDERS_SCRIPT,
        )
    )
    conditions = (
        f"users, catalog and orders under Gunicorn (target a's config with "
        f"`GUNICORN_MAX_REQUESTS=0`), each on its own PostgreSQL database, started once; "
        f"{PRODUCTS:,} products (ids {orders.product_ids[0]}..{orders.product_ids[1]}, stock "
        f"{PRODUCT_STOCK:,} each); {PLACED_ORDERS} orders placed over HTTP first (ids "
        f"{orders.order_ids[0]}..{orders.order_ids[1]}), which the GETs draw from. Each call, in "
        f"each of {options.rounds} round(s): {options.warmup} s warm-up, then "
        f"`BENCH_ACCESS_TOKEN=TOKEN {wrk_line} http://127.0.0.1:PORT -- CALL ARGS`; order "
        f"{', '.join(call.key for call in CALLS)}, reversed in every second round. Ratios are "
        f"taken within each round, the median over rounds shown. Warm-up answers of another "
        f"status: {orders.warmup_unexpected()}. Gunicorn workers restarted meanwhile: "
        f"{orders.worker_restarts}."
    )
    rows = [render_orders_row(orders, call) for call in CALLS]
    return "\n".join([conditions, "", ORDERS_HEADER, *rows])


def render_orders_row(orders: OrdersMeasurement, call: Call) -> str:
    """One call's row: the median round's rate and latency, answers over all rounds."""
    runs, median = orders.runs(call), orders.median(call)
    answers: dict[int, int] = {}
    for run in runs:
        for status, count in run.statuses.items():
            answers[status] = answers.get(status, 0) + count
    errors = zip(*(run.run.socket_errors for run in runs), strict=True)
    cells = [
        f"{call.key}: {call.label}",
        call.service,
        f"{median.requests_per_second:,.0f} ("
        + " / ".join(f"{run.requests_per_second:,.0f}" for run in runs)
        + ")",
        f"{median.run.p50_ms:.1f}",
        f"{median.run.p99_ms:.1f}",
        "/".join(str(sum(column)) for column in errors),
        ", ".join(f"{status}: {count:,}" for status, count in sorted(answers.items())),
        *render_comparison(orders, call),
    ]
    return "| " + " | ".join(cells) + " |"


def render_comparison(orders: OrdersMeasurement, call: Call) -> list[str]:
    """The last three cells: what ``call`` is read against, and how it compares (or dashes)."""
    references = dict(COMPARISONS).get(call)
    if references is None:
        return ["-"] * 3
    p50 = orders.ratios(call, references)
    return [
        " + ".join(reference.key for reference in references),
        f"{statistics.median(p50):.2f} (" + " / ".join(f"{ratio:.2f}" for ratio in p50) + ")",
        f"{orders.added_ms(call, references):+.1f}",
    ]


def write_results(path: Path, section: str) -> None:
    """Replace the generated section of ``path``; the prose around it is kept as written."""
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARK not in text or END_MARK not in text:
        text = RESULTS_TEMPLATE
    head, rest = text.split(BEGIN_MARK, 1)
    _, after = rest.split(END_MARK, 1)
    path.write_text(f"{head}{BEGIN_MARK}\n{section}\n{END_MARK}{after}")
