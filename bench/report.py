"""The run as Markdown, and the generated section of RESULTS.md rewritten in place.

Read rates are shown as ratios to the baselines measured in the same rounds, login latencies
as ratios to a right-password login in the same rounds: absolute numbers from another run or
machine do not compare. Each section's renderer lives beside its concern (``report_reads``,
``report_orders``, ``report_cpu``, ``report_logins``); this module puts them in order.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from database import server_version
from loads import Wrk
from rates import K6
from report_logins import render_hash, render_logins, render_token_verification
from report_orders import render_checks, render_memory, render_orders, render_rates
from report_reads import render_reads
from results import Report, SystemDescription
from wrk import wrk_version

BEGIN_MARK = "<!-- bench:results:begin -->"
END_MARK = "<!-- bench:results:end -->"
RESULTS_TEMPLATE = f"""# Benchmark results

Written by `make bench` (`bench/benchmark.py`); text outside the markers is kept across runs.

{BEGIN_MARK}
{END_MARK}
"""
PACKAGES = ("flask", "gunicorn", "uvicorn", "fastapi", "asyncpg", "psycopg", "psycopg-pool")


def describe_command(argv: Sequence[str] | None) -> str:
    """The command line that produced the figures."""
    args = " ".join(sys.argv[1:] if argv is None else argv)
    return f"uv run --frozen python bench/benchmark.py {args}".strip()


def describe_machine(wrk: str) -> dict[str, str]:
    """Versions and load that a reader needs to judge the figures."""
    machine = {
        "CPU": f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), shared with "
        "other work; the load generator, the system and its servers all run on them",
        "load average (1/5/15 min) at start": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "Python": platform.python_version(),
        "baselines' packages": ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
        "PostgreSQL": server_version(),
        "nginx": _first_line(["nginx", "-v"]).removeprefix("nginx version: "),
        "wrk": wrk_version(wrk),
    }
    if K6.exists():
        machine["k6"] = _first_line([str(K6), "version"])
    return machine


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def _first_line(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def render_section(report: Report, wrk: Wrk | None) -> str:
    """The generated part of RESULTS.md: when, on what, then every section measured."""
    machine = "\n".join(f"- {name}: {value}" for name, value in report.machine.items())
    took = f", {report.elapsed_s / 60:.1f} minutes" if report.elapsed_s else ""
    parts = [f"Run {report.started:%Y-%m-%d %H:%M} UTC{took} (`{report.command}`).", "", machine]
    if report.system is not None:
        parts += ["", "### The system", "", render_system(report.system)]
    options = report.options
    if report.reads is not None and wrk is not None:
        parts += ["", "### Reads", "", render_reads(report.reads, options, wrk)]
    if report.orders is not None and wrk is not None:
        parts += ["", "### Orders", "", render_orders(report.orders, options, wrk)]
    if report.rates is not None:
        parts += ["", "### Fixed rate", "", render_rates(report.rates, options)]
        parts += ["", render_checks(report.rates.mail, report.rates.stock)]
    if report.memory:
        parts += ["", "### Memory after the load", "", render_memory(report.memory)]
    if report.logins is not None:
        parts += ["", "### Logins", "", render_logins(report.logins, options)]
    if report.password_hash is not None:
        parts += ["", render_hash(report.password_hash, report.logins)]
    if report.token_verification is not None:
        printed = render_token_verification(report.token_verification)
        parts += ["", "### Token verification", "", printed]
    return "\n".join(parts)


def render_system(system: SystemDescription) -> str:
    """Which checkout ran, how it was started, and the server of each web service."""
    servers = "\n".join(
        f"- {component}: {server} (`{command}`)" for component, server, command in system.servers
    )
    return (
        f"`{system.command}` in {system.checkout} (commit {system.version}), every service at "
        f"its defaults; nginx's per-address rate limits off (`--no-rate-limits`: the load "
        f"comes from one address).\n\n{servers}"
    )


def write_results(path: Path, section: str) -> None:
    """Replace the generated section of ``path``; the prose around it is kept as written."""
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARK not in text or END_MARK not in text:
        text = RESULTS_TEMPLATE
    head, rest = text.split(BEGIN_MARK, 1)
    _, after = rest.split(END_MARK, 1)
    path.write_text(f"{head}{BEGIN_MARK}\n{section}\n{END_MARK}{after}")
