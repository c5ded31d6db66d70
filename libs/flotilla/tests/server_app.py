"""A tiny service for the real-process server tests: ``gunicorn ... server_app:app``, or
``flotilla serve server_app:app`` under granian.

Nothing here touches a database; the endpoints only exist to make a worker slow, reveal which
worker answered and when, or hang it the way real code can.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from flask import Response, request

from flotilla import ServiceSettings, create_service, load_settings

MAX_SLOW_SECONDS = 10.0

settings = load_settings(
    ServiceSettings,
    SERVICE_NAME="sample",
    VAR_DIR=Path(os.environ.get("VAR_DIR") or tempfile.gettempdir()),
)
app = create_service(__name__, settings)


@app.cli.command("max-content-length")
def max_content_length() -> None:
    """Print the largest accepted body, to compare commands with servers (``.env`` tests)."""
    click.echo(f"MAX_CONTENT_LENGTH={app.config['MAX_CONTENT_LENGTH']}")


@app.get("/ok")
def ok() -> dict[str, Any]:
    """Answer at once, naming the worker that answered."""
    return {"status": "ok", "pid": os.getpid()}


@app.post("/echo")
def echo() -> Any:
    """Return the JSON body as received, to see whether it arrived whole."""
    return {"received": request.get_json()}


@app.get("/pid")
def pid() -> dict[str, Any]:
    """The process id of the worker that answered."""
    return {"pid": os.getpid()}


@app.get("/stream")
def stream() -> Response:
    """Three lines from a generator: an answer of unknown length, sent as it is made."""
    return Response((f"line {number}\n" for number in range(3)), mimetype="text/plain")


@app.get("/slow")
def slow() -> dict[str, Any]:
    """Sleep ``seconds`` (at most 10), releasing the GIL, then answer when it began and ended.

    The times are the system's monotonic clock, the same in every process of the machine, so
    a test can tell whether two requests overlapped in a worker.
    """
    seconds = min(float(request.args.get("seconds", "1")), MAX_SLOW_SECONDS)
    began = time.monotonic()
    time.sleep(seconds)
    return {"slept": seconds, "pid": os.getpid(), "began": began, "ended": time.monotonic()}


@app.get("/hang")
def hang() -> dict[str, Any]:
    """Freeze the whole worker, as a runaway regular expression does in production.

    A gthread worker serves requests on a thread pool while its main thread sends the
    heartbeat Gunicorn's ``timeout`` watches (under granian, a heartbeat thread does). A view
    that merely sleeps or waits on I/O releases the GIL, so the heartbeat goes on and the
    worker is never declared dead (the tests check that too, with ``/slow``). The ``re``
    engine runs in C and never releases the GIL: every 4096 steps it calls
    ``PyErr_CheckSignals``, which does nothing outside the main thread. So this catastrophic
    backtracking (about 2**40 steps for 40 ``a``s and no match) starves the heartbeat's
    thread: no heartbeat, and after ``timeout`` seconds the master
    logs ``WORKER TIMEOUT`` and sends SIGABRT. The worker's Python handler for it cannot run
    either (it needs the GIL), so a second later the master sends SIGKILL (granian's main
    process sends SIGKILL at once).
    """
    matched = re.match(r"(a+)+$", "a" * 40 + "b")
    return {"matched": matched is not None}
