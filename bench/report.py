"""The run as a Markdown table, and the generated section of RESULTS.md rewritten in place.

Every rate is shown as a ratio to the chassis under Gunicorn (target a) in the same run:
absolute numbers from another run or machine do not compare.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from database import server_version
from results import Report, Result
from wrk import wrk_command, wrk_version

BEGIN_MARK = "<!-- bench:results:begin -->"
END_MARK = "<!-- bench:results:end -->"
HEADER = (
    "| target | req/s: median (each round) | ratio to a | p50 ms | p99 ms | errors c/r/w/t "
    "| non-2xx | worker restarts | commits/req | rollbacks/req | xacts/req |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
RESULTS_TEMPLATE = f"""# Benchmark results

Written by `make bench` (`bench/run.py`); text outside the markers is kept across runs.

{BEGIN_MARK}
{END_MARK}
"""


def describe_command(argv: Sequence[str] | None) -> str:
    """The command line that produced the figures."""
    args = " ".join(sys.argv[1:] if argv is None else argv)
    return f"uv run --frozen python bench/run.py {args}".strip()


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
    """The generated part of RESULTS.md: when, how, on what, and the table."""
    options = report.options
    wrk_line = " ".join(
        wrk_command(
            "wrk",
            seconds=options.duration,
            threads=options.threads,
            connections=options.connections,
        )
    )
    machine = "\n".join(f"- {name}: {value}" for name, value in report.machine.items())
    return "\n".join(
        [
            f"Run {report.started:%Y-%m-%d %H:%M} UTC by `make bench` (`{report.command}`).",
            "",
            f"Each target, in each of {options.rounds} round(s): {options.warmup} s warm-up, "
            f"then `{wrk_line} http://127.0.0.1:PORT -- LOW HIGH PATH`, over "
            f"{options.users:,} seeded users. Order: {', '.join(report.order)}.",
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
