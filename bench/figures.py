"""The run's headline figures as JSON (``--save``), and a before/after table (``--before``).

To compare commits on one machine, measure the old one with today's benchmark, then the new
one, and print both side by side::

    git worktree add /tmp/before <old commit> && make -C /tmp/before sync
    .venv/bin/python bench/benchmark.py --shop-root /tmp/before --save /tmp/before.json
    make bench BENCH_ARGS="--before /tmp/before.json"

Each run's figures are ratios to its own baselines where they can be, so the two runs,
minutes apart on a shared machine, compare better than their absolute rates do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accounting import sum_components
from reads import BARE, DEVSERVER, ORDERS, PRODUCTS
from report_reads import cpu_per_unit
from results import Report


def headline(report: Report) -> dict[str, float]:
    """Name → value of the figures worth comparing across commits."""
    figures: dict[str, float] = {}
    if report.reads is not None:
        reads = report.reads
        for key, name in ((PRODUCTS, "product read"), (ORDERS, "order read")):
            median = reads.median(key).load
            figures[f"{name}, req/s"] = median.rate
            figures[f"{name} / bare baseline"] = reads.ratio(key, BARE)
            figures[f"{name} / dev server"] = reads.ratio(key, DEVSERVER)
            figures[f"{name}, p99 / p50"] = median.p99_ms / median.p50_ms if median.p50_ms else 0
            figures[f"{name}, CPU ms / request"] = cpu_per_unit(reads.runs(key))
        figures["bare baseline, req/s"] = reads.median(BARE).load.rate
    if report.orders is not None:
        for connections in report.orders.connections:
            median = report.orders.median(connections).load
            figures[f"orders/s at c{connections}"] = median.rate
            figures[f"order p99 ms at c{connections}"] = median.p99_ms
            figures[f"CPU ms / order at c{connections}"] = cpu_per_unit(
                report.orders.runs[connections]
            )
    if report.rates is not None:
        for run in report.rates.runs:
            figures[f"fixed-rate {run.mode} p95 ms"] = run.percentile("p(95)")
    if report.memory:
        figures["largest worker RSS MiB"] = max(s.largest_worker_mib for s in report.memory)
    return figures


def cpu_per_order(report: Report) -> dict[str, float]:
    """ms of CPU per order by component, over every orders run of the run."""
    if report.orders is None:
        return {}
    runs = [run for runs in report.orders.runs.values() for run in runs]
    units = sum(run.units for run in runs)
    totals = sum_components(run.cpu.components for run in runs)
    return {name: 1000 * seconds / units for name, seconds in totals.items()} if units else {}


def save(report: Report, path: Path, checkout: str) -> None:
    """Write the headline figures and CPU per order to ``path``."""
    data = {
        "started": report.started.isoformat(),
        "checkout": checkout,
        "command": report.command,
        "figures": headline(report),
        "cpu_per_order_ms": cpu_per_order(report),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def render_before_after(before: dict[str, Any], report: Report, checkout: str) -> str:
    """Both runs' headline figures and CPU per order, side by side."""
    after = headline(report)
    lines = [
        f"Before: {before['checkout']} ({before['started'][:16]}); after: {checkout} (this run).",
        "",
        "| figure | before | after | after / before |",
        "|---|--:|--:|--:|",
    ]
    lines += [_row(name, before["figures"].get(name), after.get(name)) for name in after]
    old, new = before.get("cpu_per_order_ms", {}), cpu_per_order(report)
    if old or new:
        lines += ["", "| ms of CPU per order | before | after | after / before |"]
        lines.append("|---|--:|--:|--:|")
        names = sorted(set(old) | set(new), key=lambda n: -max(old.get(n, 0), new.get(n, 0)))
        lines += [_row(name, old.get(name), new.get(name)) for name in names]
        lines.append(_row("**all counted**", sum(old.values()), sum(new.values())))
    return "\n".join(lines)


def _row(name: str, before: float | None, after: float | None) -> str:
    shown = [f"{value:,.2f}" if value is not None else "-" for value in (before, after)]
    ratio = f"{after / before:.2f}" if before and after is not None else "-"
    return f"| {name} | {shown[0]} | {shown[1]} | {ratio} |"
