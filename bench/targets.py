"""The servers to measure: what they run, and starting, checking and stopping them by PID.

Each target is started on a free port of 127.0.0.1, checked to answer the right body, and
stopped by PID before the next starts, so targets never compete for the machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from database import libpq_url
from flotilla.processes import ProcessExited, log_tail, stop_process, wait_for_http
from flotilla.testing import free_port

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
GUNICORN_KEEPALIVE = 5  # the chassis default; the baseline gets the same
PROBE_REQUESTS = 2
"""Requests the runner itself sends each server: the readiness probe and the body check."""
WORKER_BOOT = re.compile(rb"Booting worker with pid")
"""Gunicorn's line for every worker it forks, in its plain and in the chassis' JSON log."""

NO_RECYCLING = "GUNICORN_MAX_REQUESTS=0"
USER_PATH = "/api/v1/users/"
TRANSACTIONAL_PREFIX, TRANSACTIONAL_SUFFIX = "/bench/users/", "/transactional"


@dataclass(frozen=True)
class Target:
    """One server to measure: how to start it and which path to load.

    ``{port}`` in the command or the environment is replaced by the port it listens on.
    ``workers`` is the Gunicorn worker count, so forks beyond it count as restarts.
    """

    key: str
    label: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    workers: int | None = GUNICORN_WORKERS
    path_prefix: str = USER_PATH
    path_suffix: str = ""

    def path(self, user_id: int) -> str:
        """The loaded path for ``user_id``."""
        return f"{self.path_prefix}{user_id}{self.path_suffix}"


def build_targets(database_url: str) -> list[Target]:
    """The six servers, in the order of the first round.

    e and f repeat a and d with Gunicorn's worker recycling off: the chassis default replaces
    each worker every 1000 ± 100 requests, which at these rates is every few seconds, so a
    and d show the chassis as configured, e and f its cost per request alone, and a against
    e what recycling costs.
    """
    chassis = (sys.executable, "-m", "gunicorn", "-c", "python:flotilla.gunicorn")
    on_path = ("--pythonpath", str(BENCH_DIR))
    env = chassis_env(database_url)
    never_recycle = {**env, "GUNICORN_MAX_REQUESTS": "0"}
    users = Target("a", "chassis, Gunicorn", (*chassis, "users.wsgi:app"), env)
    transactional = Target(
        "d",
        "chassis, Gunicorn, read in an ORM transaction",
        (*chassis, *on_path, "transactional_app:app"),
        env,
        path_prefix=TRANSACTIONAL_PREFIX,
        path_suffix=TRANSACTIONAL_SUFFIX,
    )
    return [
        users,
        transactional,
        replace(transactional, key="f", label=f"as d, {NO_RECYCLING}", env=never_recycle),
        replace(users, key="e", label=f"as a, {NO_RECYCLING}", env=never_recycle),
        Target(
            "c",
            "plain Flask + psycopg, plain Gunicorn",
            (*plain_gunicorn(), *on_path, "baseline_app:app"),
            {"BASELINE_CONNINFO": libpq_url(database_url)},
        ),
        Target(
            "b",
            "chassis, Flask dev server (threaded)",
            (sys.executable, str(BENCH_DIR / "devserver.py"), "--port={port}"),
            {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
            workers=None,
        ),
    ]


def chassis_env(database_url: str) -> dict[str, str]:
    """The users service's environment under the chassis' Gunicorn config."""
    return {
        "DATABASE_URL": database_url,
        "GUNICORN_BIND": "127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(GUNICORN_WORKERS),
        "GUNICORN_THREADS": str(GUNICORN_THREADS),
        "GUNICORN_ACCESSLOG": "",  # off: the baseline writes none either
        "LOG_LEVEL": "WARNING",
    }


def plain_gunicorn() -> tuple[str, ...]:
    """Gunicorn with plain flags: the chassis' worker model, none of its other settings."""
    return (
        sys.executable,
        "-m",
        "gunicorn",
        f"--workers={GUNICORN_WORKERS}",
        f"--threads={GUNICORN_THREADS}",
        "--worker-class=gthread",
        f"--keep-alive={GUNICORN_KEEPALIVE}",
        "--no-control-socket",
        "--bind=127.0.0.1:{port}",
    )


@contextmanager
def running(target: Target, log_path: Path, probe_id: int) -> Iterator[str]:
    """Start ``target`` on a free port, wait until it answers, yield its URL, stop it by PID."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({key: value.format(port=port) for key, value in target.env.items()})
    command = [part.format(port=port) for part in target.command]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base_url + target.path(probe_id), log_path)
        yield base_url
    finally:
        stop_process(process)


def wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Wait until ``url`` answers 200; fail fast, with the log, if the server cannot."""
    try:
        wait_for_http(url, timeout=60, process=process)
    except (ProcessExited, TimeoutError) as error:
        raise RuntimeError(f"{error}:\n{log_tail(log_path, 30)}") from None


def check_body(url: str, user_id: int) -> None:
    """Every target must answer the same JSON for the same id, or the comparison is void."""
    with urllib.request.urlopen(url, timeout=5) as response:  # a 127.0.0.1 URL
        body = json.loads(response.read())
    expected = {"id": user_id, "username": f"user{user_id}", "display_name": f"User {user_id}"}
    if {key: body.get(key) for key in expected} != expected or "created_at" not in body:
        raise RuntimeError(f"{url} answered {body!r}, expected {expected} and created_at")


def count_worker_boots(log_path: Path) -> int:
    """Workers Gunicorn forked while writing ``log_path``: the first ones and every restart."""
    return len(WORKER_BOOT.findall(log_path.read_bytes()))
