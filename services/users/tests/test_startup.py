"""Start-up in production stops on unsafe settings with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flotilla.testing import free_port

UNSAFE = {"ENVIRONMENT": "production", "SECRET_KEY": "changeme", "DATABASE_URL": ""}
COMMANDS = {
    "import": [sys.executable, "-c", "import users.wsgi"],
    "gunicorn": [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:flotilla.gunicorn",
        "users.wsgi:app",
    ],
}


@pytest.mark.process
@pytest.mark.parametrize("command", COMMANDS)
def test_a_placeholder_secret_stops_start_up_with_one_line(command: str) -> None:
    env = {**os.environ, **UNSAFE, "GUNICORN_BIND": f"127.0.0.1:{free_port()}"}
    result = subprocess.run(
        COMMANDS[command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "configuration error: SECRET_KEY must be set to a random value of 32+ characters"
    ]


@pytest.mark.process
def test_a_missing_database_url_stops_start_up() -> None:
    env = {**os.environ, **UNSAFE, "SECRET_KEY": "k" * 40}
    result = subprocess.run(
        COMMANDS["import"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "configuration error: DATABASE_URL must be set in production"
