"""Markdown of the system's other sections: orders and their checks, fixed rates, memory."""

from __future__ import annotations

from consistency import SHOWN, MailCheck, StockCheck
from loads import Wrk
from memory import LIMIT_MIB, ServerMemory
from options import Options
from ordering import OrdersResult
from rates import RateRun, RatesResult
from report_cpu import cpu_table, spread_table
from report_reads import cpu_per_unit, latency_cells

ORDERS_HEADER = (
    "| connections | orders/s: median (each round) | p50 ms | p99 ms | p99 / p50 "
    "| errors c/r/w/t | non-201 | orders placed | CPU ms / order | e-mails all out after, s |\n"
    "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
RATES_HEADER = (
    "| offered (constant arrival) | requests | p50 ms | p95 ms | p99 ms | bar | errors "
    "| dropped | virtual users | CPU ms / request |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def render_orders(orders: OrdersResult, options: Options, wrk: Wrk) -> str:
    """Conditions, one row per concurrency, CPU per order by component, spread, checks."""
    commands = ", ".join(
        f"`{wrk.shown(seconds=options.duration, connections=c)}`" for c in orders.connections
    )
    conditions = (
        f"{options.rounds} round(s) of {commands} `URL -- place LOW HIGH KEY` (one unit of a "
        f"random product, a new Idempotency-Key each), after a {options.warmup} s warm-up. "
        "Each run's CPU window lasts until every order placed so far has its e-mail (at most "
        f"{options.drain_timeout} s), and CPU is divided by the orders placed in it (orders' "
        "database)."
    )
    rows = [_orders_row(orders, c) for c in orders.connections]
    columns = [(f"c{c}", orders.runs[c]) for c in orders.connections]
    spread = [(f"orders c{c} (median round)", orders.median(c)) for c in orders.connections]
    return "\n\n".join(
        [
            conditions,
            "\n".join([ORDERS_HEADER, *rows]),
            "CPU per order, by component, over every round at each concurrency:",
            cpu_table(columns, "order"),
            "How each server's workers shared the work:",
            spread_table(spread),
            render_checks(orders.mail, orders.stock),
        ]
    )


def _orders_row(orders: OrdersResult, connections: int) -> str:
    runs, median = orders.runs[connections], orders.median(connections)
    drains = orders.drains[connections]
    out = " / ".join(f"{d.seconds:.1f}" if d.complete else "not drained" for d in drains)
    cells = [
        str(connections),
        f"{median.load.rate:,.0f} ({' / '.join(f'{m.load.rate:,.0f}' for m in runs)})",
        *latency_cells(median.load),
        "/".join(str(sum(m.load.socket_errors[i] for m in runs)) for i in range(4)),
        str(sum(m.load.unexpected for m in runs)),
        f"{sum(m.units for m in runs):,}",
        f"{cpu_per_unit(runs):.2f}",
        out,
    ]
    return "| " + " | ".join(cells) + " |"


def render_checks(mail: MailCheck | None, stock: StockCheck | None) -> str:
    """The e-mail and stock checks, in words."""
    lines = []
    if mail is not None:
        missing = len(mail.missing)
        shown = ", ".join(str(order) for order in mail.missing[:SHOWN])
        verdict = "every one has its e-mail" if not missing else f"{missing} have none ({shown} …)"
        lines.append(f"- **E-mails**: {mail.placed:,} orders placed in the run; {verdict}.")
    if stock is not None:
        bad = len(stock.mismatches)
        shown = ", ".join(f"#{p}: {e} expected, {f} found" for p, e, f in stock.mismatches[:SHOWN])
        verdict = "adds up for every one" if not bad else f"does not add up for {bad} ({shown})"
        lines.append(
            f"- **Stock**: {stock.products:,} products, {stock.ordered_units:,} units in placed "
            f"orders; initial stock - ordered = stock now {verdict}."
        )
    return "\n".join(lines)


def render_rates(rates: RatesResult, options: Options) -> str:
    """Both k6 runs, the bars they are read against, CPU per request."""
    conditions = (
        f"k6 (`constant-arrival-rate`, bench/rates.js) through nginx for {options.rate_duration} s "
        f"each, {rates.vcpus} vCPUs (`os.sched_getaffinity`): reads at "
        f"{options.read_rate_per_cpu}/s per vCPU, half products, half the customer's orders; "
        f"orders at {options.order_rate}/s."
    )
    rows = [_rate_row(run) for run in rates.runs]
    notes = [_rate_note(run) for run in rates.runs]
    return "\n\n".join([conditions, "\n".join([RATES_HEADER, *rows]), " ".join(notes)])


def _rate_row(run: RateRun) -> str:
    bar = "p95 < 50 ms, 0 errors" if run.mode == "reads" else "p95 < 100 ms"
    met = run.percentile("p(95)") < (50 if run.mode == "reads" else 100)
    met = met and (run.errors == 0 or run.mode != "reads")
    cpu = 1000 * run.cpu.total_s / run.requests if run.requests else 0.0
    cells = [
        f"{run.mode} at {run.rate:,}/s",
        f"{run.requests:,}",
        *(f"{run.percentile(p):.1f}" for p in ("p(50)", "p(95)", "p(99)")),
        f"{bar}: {'met' if met else 'NOT met'}",
        str(run.errors),
        str(run.summary["dropped"]),
        str(run.summary["max_vus"]),
        f"{cpu:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _rate_note(run: RateRun) -> str:
    if run.drain is not None:
        done = f"out {run.drain.seconds:.1f} s after" if run.drain.complete else "NOT all out"
        return f"The fixed-rate orders' e-mails were {done}."
    products, orders = (run.percentile("p(95)", kind) for kind in ("products", "orders"))
    return f"Of the {run.mode}: products p95 {products:.1f} ms, orders p95 {orders:.1f} ms."


def render_memory(servers: list[ServerMemory]) -> str:
    """Every web worker's RSS (and PSS) after the load, against the bar."""
    lines = ["| service | server | process | RSS MiB | PSS MiB |", "|---|---|---|--:|--:|"]
    for server in servers:
        top = server.top
        lines.append(
            f"| {server.component} | {server.server} | top {top.pid} "
            f"| {top.rss_mib:.1f} | {top.pss_mib:.1f} |"
        )
        lines += [
            f"| | | worker {w.pid} | {w.rss_mib:.1f} | {w.pss_mib:.1f} |" for w in server.workers
        ]
    largest = max((server.largest_worker_mib for server in servers), default=0.0)
    verdict = "within" if largest <= LIMIT_MIB else "ABOVE"
    lines += ["", f"Largest worker RSS: {largest:.1f} MiB, {verdict} {LIMIT_MIB:.0f} MiB."]
    return "\n".join(lines)
