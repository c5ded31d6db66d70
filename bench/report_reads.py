"""Markdown of the reads section: rates against the baselines, CPU, and the workers' spread."""

from __future__ import annotations

from loads import LoadRun, Measured, Wrk
from options import Options
from reads import BARE, DEVSERVER, ORDERS, PRODUCTS, ReadsResult
from report_cpu import cpu_table, spread_table

HEADER = (
    "| target | req/s: median (each round) | x bare: median (each round) | x dev server "
    "| p50 ms | p99 ms | p99 / p50 | errors c/r/w/t | non-200 | CPU ms / request |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
SHORT = {
    "bare": "bare gunicorn",
    "fastapi": "FastAPI",
    "devserver": "dev server",
    PRODUCTS: "shop products",
    ORDERS: "shop orders",
}


def render_reads(reads: ReadsResult, options: Options, wrk: Wrk) -> str:
    """Conditions, the main table, CPU per request by component, and the spread."""
    command = wrk.shown(seconds=options.duration, connections=options.connections)
    conditions = (
        f"Each target, in each of {options.rounds} round(s): a {options.warmup} s warm-up, then "
        f"`BENCH_ACCESS_TOKEN=TOKEN {command} URL -- get|get-auth PATH LOW HIGH`. Order: "
        f"{', '.join(reads.order)}. Orders read: ids {reads.order_ids[0]}..{reads.order_ids[1]}. "
        "Ratios are taken within each round; the median over rounds is shown."
    )
    rows = [_row(reads, target.key, target.label) for target in reads.targets]
    columns = [(SHORT.get(t.key, t.key), reads.runs(t.key)) for t in reads.targets]
    spread = [
        (f"{SHORT.get(t.key, t.key)} (median round)", reads.median(t.key)) for t in reads.targets
    ]
    return "\n\n".join(
        [
            conditions,
            "\n".join([HEADER, *rows]),
            "CPU per request, by component, over every round of each target:",
            cpu_table(columns, "request"),
            "How each server's workers shared the work (median round of each target):",
            spread_table(spread),
        ]
    )


def _row(reads: ReadsResult, key: str, label: str) -> str:
    runs, median = reads.runs(key), reads.median(key)
    to_bare = reads.ratios(key, BARE)
    cells = [
        label,
        f"{median.load.rate:,.0f} ({' / '.join(f'{m.load.rate:,.0f}' for m in runs)})",
        f"{reads.ratio(key, BARE):.2f} ({' / '.join(f'{r:.2f}' for r in to_bare)})",
        f"{reads.ratio(key, DEVSERVER):.2f}",
        *latency_cells(median.load),
        "/".join(str(sum(m.load.socket_errors[i] for m in runs)) for i in range(4)),
        str(sum(m.load.unexpected for m in runs)),
        f"{cpu_per_unit(runs):.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def latency_cells(run: LoadRun) -> list[str]:
    """p50, p99 and their ratio."""
    ratio = run.p99_ms / run.p50_ms if run.p50_ms else 0.0
    return [f"{run.p50_ms:.1f}", f"{run.p99_ms:.1f}", f"{ratio:.1f}"]


def cpu_per_unit(runs: list[Measured]) -> float:
    """ms of CPU counted per unit over ``runs``."""
    units = sum(m.units for m in runs)
    return 1000 * sum(m.cpu.total_s for m in runs) / units if units else 0.0
