"""``flask --app orders orders recover``: finish what failed requests left behind.

Run it beside the service, like the outbox relay: ``--once`` for one pass (a cron job),
or a loop every ``--interval`` seconds until SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
from flask.cli import AppGroup

from flotilla import current_settings, serve_metrics
from orders.config import OrdersSettings
from orders.recovery import recover, run_recovery

orders_cli = AppGroup("orders", help="Order maintenance.")


@orders_cli.command("recover")
@click.option("--once", is_flag=True, help="Run one pass, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between passes.",
)
def recover_command(once: bool, interval: float) -> None:
    """Release and delete orders left pending, finish cancels; prune old idempotency keys;
    release stock catalog holds for orders that do not exist."""
    if once:
        report = recover()
        click.echo(
            f"released {report.released} orders, finished {report.cancelled} cancels, "
            f"{report.failed} failed, pruned {report.pruned_keys} idempotency keys, "
            f"released {report.orphans_released} reservations of no order"
        )
        return
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # the pass in progress finishes first

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    serve_metrics(current_settings(OrdersSettings).METRICS_BIND)
    run_recovery(interval=interval, stop=stop)
