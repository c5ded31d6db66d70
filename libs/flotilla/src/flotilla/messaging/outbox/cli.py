"""``flask outbox relay``: the relay as its own long-running process."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup

from flotilla.messaging.outbox.relay import relay_pending, run_relay
from flotilla.messaging.outbox.state import outbox_state
from flotilla.observability.metrics_server import serve_metrics

cli = AppGroup("outbox", help="The transactional outbox.")


@cli.command("relay")
@click.option("--once", is_flag=True, help="Publish what is pending now, then exit.")
def relay_command(once: bool) -> None:
    """Publish pending events to the broker until SIGTERM or SIGINT; serve METRICS_BIND."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        click.echo(f"published {relay_pending(app)} events")
        return
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # the batch in progress finishes and commits first

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    serve_metrics(outbox_state(app).settings.METRICS_BIND)
    run_relay(app, stop=stop)
