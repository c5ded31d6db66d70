"""Start-up in production stops on unsafe mail settings with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRODUCTION = {"ENVIRONMENT": "production", "DATABASE_URL": "sqlite://"}
PROBES = [sys.executable, "-c", "import notifications.wsgi"]
WORKER = [sys.executable, "-m", "flask", "--app", "notifications", "tasks", "worker"]


@pytest.mark.process
@pytest.mark.parametrize(
    ("argv", "extra", "message"),
    [
        (PROBES, {}, "SMTP_HOST must be set in production (.eml files are for development)"),
        (
            WORKER,
            {"SMTP_HOST": "mail.example.com", "SMTP_USERNAME": "shop", "SMTP_STARTTLS": "false"},
            "SMTP_USERNAME needs SMTP_STARTTLS: a password is never sent in clear",
        ),
    ],
    ids=["probes without SMTP_HOST", "worker with a password in clear"],
)
def test_unsafe_mail_settings_stop_start_up(
    argv: list[str], extra: dict[str, str], message: str
) -> None:
    env = {**os.environ, **PRODUCTION, **extra}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines() == [f"configuration error: {message}"]
