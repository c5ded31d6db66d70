"""The users service on its own under Gunicorn, for the logins: settings, start, stop by PID.

The login benchmark (``logins``) loads ``POST /api/v1/tokens`` on the users service alone,
not through the running system: logins are rate-limited per address and per account by the
service itself, so a login benchmark from one address needs them off, which ``make run``'s
system must not be changed for. The server is started on a free port of 127.0.0.1, checked,
and stopped by PID.

It gets fixed settings (:func:`users_env`): the run's signing key, rate limits off and the
production Argon2id cost, written out so the figures do not depend on the caller's
environment; ``profile_request.py`` profiles the app with the same settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flotilla.serving.processes import ProcessExited, log_tail, stop_process, wait_for_http
from flotilla.testing import free_port
from users.config import UsersSettings

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
READY_PATH = "/healthz/live"
"""The chassis' liveness probe: answered without a token and without the database."""
PRODUCTION_ARGON2 = ("ARGON2_TIME_COST", "ARGON2_MEMORY_KIB", "ARGON2_PARALLELISM")
"""Settings pinned to their :class:`UsersSettings` defaults, the cost production runs with."""
WORKER_BOOT = re.compile(rb"Booting worker with pid")
"""Gunicorn's line for every worker it forks, in its plain and in the chassis' JSON log."""
CHASSIS_GUNICORN = (sys.executable, "-m", "gunicorn", "-c", "python:flotilla.serving.gunicorn")


@dataclass(frozen=True)
class Target:
    """A server to start: its command and environment (``{port}`` is filled in).

    ``workers`` is the Gunicorn worker count, so forks beyond it count as restarts.
    """

    key: str
    label: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    workers: int | None = GUNICORN_WORKERS


def users_under_gunicorn(env: Mapping[str, str]) -> Target:
    """The users service under the chassis' Gunicorn config (:func:`chassis_env`)."""
    return Target("users", "users, Gunicorn", (*CHASSIS_GUNICORN, "users.wsgi:app"), env)


def users_env(database_url: str, signing_key_pem: str) -> dict[str, str]:
    """The users service's settings for the logins, its seeding and the profile."""
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
        "GUNICORN_ACCESSLOG": "",  # off: the latency of the login itself is measured
    }


@contextmanager
def running(target: Target, log_path: Path) -> Iterator[str]:
    """Start ``target`` on a free port, wait until it answers, yield its URL, stop it by PID."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({key: value.format(port=port) for key, value in target.env.items()})
    command = [part.format(port=port) for part in target.command]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base_url + READY_PATH, log_path)
        yield base_url
    finally:
        stop_process(process)


def wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Wait until ``url`` answers 200; fail fast, with the log, if the server cannot."""
    try:
        wait_for_http(url, timeout=60, process=process)
    except (ProcessExited, TimeoutError) as error:
        raise RuntimeError(f"{error}:\n{log_tail(log_path, 30)}") from None


def count_worker_boots(log_path: Path) -> int:
    """Workers Gunicorn forked while writing ``log_path``: the first ones and every restart."""
    return len(WORKER_BOOT.findall(log_path.read_bytes()))
