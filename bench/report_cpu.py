"""Markdown of the CPU windows: CPU per request by component, and how workers shared the work."""

from __future__ import annotations

from collections.abc import Sequence

from accounting import IMBALANCE, Spread, sum_components
from loads import Measured

SHOWN_MS = 0.005
"""Components under this many ms per request in every column are left out."""
SPREAD_CPU_S = 0.1
"""A server whose workers used less CPU than this in a run did not serve it: not shown."""
Column = tuple[str, Sequence[Measured]]
"""A heading and the runs whose CPU it adds up."""


def cpu_table(columns: Sequence[Column], unit: str) -> str:
    """Rows: components; columns: loads; cells: ms of CPU per ``unit`` over all their runs."""
    per_unit = [_per_unit(runs) for _, runs in columns]
    shared = set().union(*(m.cpu.shared for _, runs in columns for m in runs))
    names = sorted(
        {name for cells in per_unit for name, ms in cells.items() if ms >= SHOWN_MS},
        key=lambda name: -max(cells.get(name, 0.0) for cells in per_unit),
    )
    header = f"| ms of CPU per {unit} | " + " | ".join(title for title, _ in columns) + " |"
    lines = [header, "|---|" + "--:|" * len(columns)]
    for name in names:
        label = f"{name} (shared)" if name in shared else name
        lines.append(_row(label, [cells.get(name, 0.0) for cells in per_unit]))
    lines.append(_row("**all counted**", [sum(cells.values()) for cells in per_unit]))
    own = [sum(ms for name, ms in cells.items() if name not in shared) for cells in per_unit]
    lines.append(_row("all counted but the shared servers", own))
    machine = [_machine(runs) for _, runs in columns]
    lines.append(_row("whole machine, other work included", machine))
    sampling = [_sampler(runs) for _, runs in columns]
    lines.append(_row("not counted: the benchmark's own sampling", sampling))
    return "\n".join(lines)


def _per_unit(runs: Sequence[Measured]) -> dict[str, float]:
    units = sum(m.units for m in runs)
    totals = sum_components(m.cpu.components for m in runs)
    return {name: 1000 * seconds / units if units else 0.0 for name, seconds in totals.items()}


def _machine(runs: Sequence[Measured]) -> float:
    units = sum(m.units for m in runs)
    return 1000 * sum(m.cpu.machine_busy_s for m in runs) / units if units else 0.0


def _sampler(runs: Sequence[Measured]) -> float:
    units = sum(m.units for m in runs)
    return 1000 * sum(m.cpu.sampler_s for m in runs) / units if units else 0.0


def _row(label: str, values: Sequence[float]) -> str:
    return f"| {label} | " + " | ".join(f"{value:.2f}" for value in values) + " |"


SPREAD_HEADER = (
    "| load | server | worker processes | CPU share of each (its fair share) "
    f"| busiest worker per second, median (fair) | above {IMBALANCE}x fair |\n"
    "|---|---|--:|---|--:|---|"
)


def spread_table(loads: Sequence[tuple[str, Measured]]) -> str:
    """One row per load and server whose workers did the work."""
    rows = [
        _spread_row(label, name, spread)
        for label, measured in loads
        for name, spread in sorted(measured.cpu.spreads.items())
        if spread.cpu_s >= SPREAD_CPU_S
    ]
    return "\n".join([SPREAD_HEADER, *rows])


def _spread_row(label: str, name: str, spread: Spread) -> str:
    workers = sorted(spread.workers, key=lambda worker: -spread.share(worker))
    shares = "; ".join(
        f"{w.pid}: {spread.share(w):.0%} ({spread.fair_share(w):.0%})" for w in workers
    )
    flagged = [str(w.pid) for w in spread.flagged()]
    if spread.funnel:
        flagged.append("busiest per second")
    cells = [
        label,
        name,
        str(len(workers)),
        shares,
        f"{spread.busiest_median:.0%} ({spread.busiest_fair:.0%})",
        ", ".join(flagged) or "none",
    ]
    return "| " + " | ".join(cells) + " |"
