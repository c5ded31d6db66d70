"""Start-up in production stops on unsafe settings with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flotilla.testing import free_port

UNSAFE = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": "postgresql+psycopg://users:changeme@db/users",
}
GUNICORN = [
    sys.executable,
    "-m",
    "gunicorn",
    "-c",
    "python:flotilla.serving.gunicorn",
    "users.wsgi:app",
]
COMMANDS = {
    "import": ([sys.executable, "-c", "import users.wsgi"], {}),
    "gunicorn": (GUNICORN, {}),
    # Without preload the worker loads the app; the master must halt, not respawn it forever.
    # (One worker: when several fail at once, Gunicorn 27 halts with a traceback and status 1.)
    "gunicorn, no preload": (GUNICORN, {"GUNICORN_PRELOAD_APP": "false", "GUNICORN_WORKERS": "1"}),
}
MESSAGE = "configuration error: DATABASE_URL holds a placeholder password; set the real one"


@pytest.mark.process
@pytest.mark.parametrize("command", COMMANDS)
def test_a_placeholder_password_stops_start_up_with_one_line(command: str) -> None:
    argv, extra = COMMANDS[command]
    env = {**os.environ, **UNSAFE, **extra, "GUNICORN_BIND": f"127.0.0.1:{free_port()}"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [MESSAGE]


@pytest.mark.process
def test_a_missing_database_url_stops_start_up() -> None:
    env = {**os.environ, **UNSAFE, "DATABASE_URL": ""}
    result = subprocess.run(
        COMMANDS["import"][0], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 3
    assert result.stderr.strip() == "configuration error: DATABASE_URL must be set in production"
