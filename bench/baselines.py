"""The baselines: the same one-row read of the same database, served by the least a stack does.

Each reads the product row the shop reads, from the shop's own catalog database, and answers
the same JSON (``product_json``):

* bare Flask + ``psycopg_pool`` under ``gunicorn --workers 2 --threads 4 --worker-class
  gthread`` (``bare_app``): the production server with nothing of the shop's stack;
* FastAPI async + an asyncpg pool under ``uvicorn --workers 2`` (``fastapi_app``), access log
  off as Gunicorn's is by default;
* the same bare Flask app under Flask's development server (``bare_devserver``).

A baseline is started on a free port just before its round, checked to answer the shop's
document for the check product, and stopped by PID right after, so it never competes with
anything but the idle system.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flotilla.serving.processes import ProcessExited, log_tail, wait_for_http
from flotilla.testing import free_port
from shop_http import send

BENCH_DIR = Path(__file__).resolve().parent
PRODUCT_PATH = "/api/v1/products/"
PYTHON = (sys.executable, "-m")


@dataclass(frozen=True)
class Baseline:
    """A server of the baseline app: its label and command (``{port}`` is filled in)."""

    key: str
    label: str
    command: tuple[str, ...]


BASELINES = (
    Baseline(
        "bare",
        "bare Flask + psycopg pool, gunicorn gthread 2x4",
        (
            *PYTHON,
            "gunicorn",
            "--workers=2",
            "--threads=4",
            "--worker-class=gthread",
            "--no-control-socket",
            "--bind=127.0.0.1:{port}",
            "bare_app:app",
        ),
    ),
    Baseline(
        "fastapi",
        "FastAPI async + asyncpg, uvicorn x2",
        (
            *PYTHON,
            "uvicorn",
            "fastapi_app:app",
            "--workers=2",
            "--host=127.0.0.1",
            "--port={port}",
            "--no-access-log",
            "--log-level=warning",
        ),
    ),
    Baseline(
        "devserver",
        "bare Flask, Flask development server (threaded)",
        (sys.executable, "bare_devserver.py", "--port={port}"),
    ),
)


@dataclass(frozen=True)
class Serving:
    """A started baseline: where it answers and its process (the root of its tree)."""

    url: str
    pid: int


@contextlib.contextmanager
def serving(baseline: Baseline, conninfo: str, log: Path, probe_id: int) -> Iterator[Serving]:
    """Start ``baseline`` on a free port, wait until it reads ``probe_id``, stop it by PID."""
    port = free_port()
    command = [part.format(port=port) for part in baseline.command]
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env["BASELINE_CONNINFO"] = conninfo
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=BENCH_DIR, env=env, stdout=out, stderr=out, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}{PRODUCT_PATH}{probe_id}", timeout=60, process=process)
        except (ProcessExited, TimeoutError) as error:
            raise RuntimeError(f"{baseline.label}: {error}\n{log_tail(log, 30)}") from None
        yield Serving(url, process.pid)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait; after 30 s, SIGKILL the process and anything left in its group."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # a worker its master left behind


def check_same_document(url: str, reference: object, product_id: int) -> None:
    """``url`` must answer exactly the shop's document for ``product_id``."""
    answered = send(f"{url}{PRODUCT_PATH}{product_id}", 200)
    if answered != reference:
        raise RuntimeError(f"{url} answered {answered!r}, the shop {reference!r}")
