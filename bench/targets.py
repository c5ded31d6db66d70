"""The servers to measure: what they run, and starting, checking and stopping them by PID.

Each target is started on a free port of 127.0.0.1, checked to answer the right body, and
stopped by PID before the next starts, so targets never compete for the machine.

Every users target gets the same settings (:func:`users_env`): the run's signing key, rate
limits off (a benchmark client is one address hammering one endpoint) and the production
Argon2id cost, written out so the figures do not depend on the caller's environment.
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
from users.config import UsersSettings

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
GUNICORN_KEEPALIVE = 5  # the chassis default; the baseline gets the same
PROBE_REQUESTS = 2
"""Requests the runner itself sends each server: the readiness probe and the body check."""
READY_PATH = "/healthz/live"
"""The chassis' liveness probe: answered without a token and without the database."""
PRODUCTION_ARGON2 = ("ARGON2_TIME_COST", "ARGON2_MEMORY_KIB", "ARGON2_PARALLELISM")
"""Settings pinned to their :class:`UsersSettings` defaults, the cost production runs with."""
WORKER_BOOT = re.compile(rb"Booting worker with pid")
"""Gunicorn's line for every worker it forks, in its plain and in the chassis' JSON log."""

NO_RECYCLING = "GUNICORN_MAX_REQUESTS=0"
CHASSIS_GUNICORN = (sys.executable, "-m", "gunicorn", "-c", "python:flotilla.gunicorn")
ON_BENCH_PATH = ("--pythonpath", str(BENCH_DIR))
USER_PATH = "/api/v1/users/"
TRANSACTIONAL_PREFIX, TRANSACTIONAL_SUFFIX = "/bench/users/", "/transactional"


@dataclass(frozen=True)
class Target:
    """One server to measure: how to start it and which path to load.

    ``{port}`` in the command or the environment is replaced by the port it listens on.
    ``workers`` is the Gunicorn worker count, so forks beyond it count as restarts.
    ``ready_path`` is polled without a token until it answers 200; None polls the loaded
    path (for the baseline, which ignores tokens and has no probe).
    """

    key: str
    label: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    workers: int | None = GUNICORN_WORKERS
    path_prefix: str = USER_PATH
    path_suffix: str = ""
    ready_path: str | None = READY_PATH

    def path(self, user_id: int) -> str:
        """The loaded path for ``user_id``."""
        return f"{self.path_prefix}{user_id}{self.path_suffix}"


def build_targets(users: Mapping[str, str]) -> list[Target]:
    """The six servers, in the order of the first round; ``users`` is :func:`users_env`.

    e and f repeat a and d with Gunicorn's worker recycling off: the chassis default replaces
    each worker every 1000 ± 100 requests, which at these rates is every few seconds, so a
    and d show the chassis as configured, e and f its cost per request alone, and a against
    e what recycling costs.
    """
    env = chassis_env(users)
    never_recycle = {**env, "GUNICORN_MAX_REQUESTS": "0"}
    chassis = users_under_gunicorn(env)
    transactional = Target(
        "d",
        "chassis, Gunicorn, read in an ORM transaction",
        (*CHASSIS_GUNICORN, *ON_BENCH_PATH, "transactional_app:app"),
        env,
        path_prefix=TRANSACTIONAL_PREFIX,
        path_suffix=TRANSACTIONAL_SUFFIX,
    )
    return [
        chassis,
        transactional,
        replace(transactional, key="f", label=f"as d, {NO_RECYCLING}", env=never_recycle),
        replace(chassis, key="e", label=f"as a, {NO_RECYCLING}", env=never_recycle),
        Target(
            "c",
            "plain Flask + psycopg, plain Gunicorn",
            (*plain_gunicorn(), *ON_BENCH_PATH, "baseline_app:app"),
            {"BASELINE_CONNINFO": libpq_url(users["DATABASE_URL"])},
            ready_path=None,
        ),
        Target(
            "b",
            "chassis, Flask dev server (threaded)",
            (sys.executable, str(BENCH_DIR / "devserver.py"), "--port={port}"),
            users,
            workers=None,
        ),
    ]


def users_under_gunicorn(env: Mapping[str, str]) -> Target:
    """Target a: the users service under the chassis' Gunicorn config (:func:`chassis_env`)."""
    return Target("a", "chassis, Gunicorn", (*CHASSIS_GUNICORN, "users.wsgi:app"), env)


def users_env(database_url: str, signing_key_pem: str) -> dict[str, str]:
    """The users service's settings in every target that runs it, and in the seeding."""
    defaults = UsersSettings.model_fields
    return {
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "AUTH_SIGNING_KEY": signing_key_pem,
        "RATE_LIMITS_ENABLED": "false",
        **{name: str(defaults[name].default) for name in PRODUCTION_ARGON2},
    }


def chassis_env(users: Mapping[str, str]) -> dict[str, str]:
    """``users`` (:func:`users_env`) plus the chassis' Gunicorn config for this benchmark."""
    return {
        **users,
        "GUNICORN_BIND": "127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(GUNICORN_WORKERS),
        "GUNICORN_THREADS": str(GUNICORN_THREADS),
        "GUNICORN_ACCESSLOG": "",  # off: the baseline writes none either
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
    ready_path = target.ready_path or target.path(probe_id)
    try:
        wait_until_serving(process, base_url + ready_path, log_path)
        yield base_url
    finally:
        stop_process(process)


def wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Wait until ``url`` answers 200; fail fast, with the log, if the server cannot."""
    try:
        wait_for_http(url, timeout=60, process=process)
    except (ProcessExited, TimeoutError) as error:
        raise RuntimeError(f"{error}:\n{log_tail(log_path, 30)}") from None


def check_body(url: str, user_id: int, access_token: str) -> None:
    """Every target must answer the same JSON for the same id, or the comparison is void."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {access_token}"})
    with urllib.request.urlopen(request, timeout=5) as response:  # a 127.0.0.1 URL
        body = json.loads(response.read())
    expected = {"id": user_id, "username": f"user{user_id}", "display_name": f"User {user_id}"}
    if {key: body.get(key) for key in expected} != expected or "created_at" not in body:
        raise RuntimeError(f"{url} answered {body!r}, expected {expected} and created_at")


def count_worker_boots(log_path: Path) -> int:
    """Workers Gunicorn forked while writing ``log_path``: the first ones and every restart."""
    return len(WORKER_BOOT.findall(log_path.read_bytes()))
