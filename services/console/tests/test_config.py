"""Settings of the console: defaults, the lists it reads, and what production refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from console.config import ConsoleSettings

DATABASE = "postgresql://console@db/console"
PRODUCTION: dict[str, Any] = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": DATABASE,
    "REDIS_URL": "redis://redis:6379/0",
    "AUTH_JWKS_URL": "http://users:8000/.well-known/jwks.json",
    "SECRET_KEY": "k" * 40,
}


def test_defaults(tmp_path: Path) -> None:
    settings = ConsoleSettings(VAR_DIR=tmp_path)
    assert settings.SERVICE_NAME == "console"
    assert not settings.is_production
    assert settings.SESSION_COOKIE_SECURE
    assert settings.DEAD_LETTER_SERVICES == ["notifications"]
    assert settings.STATUS_PROGRAMS == {}


def test_lists_come_comma_separated_as_the_environment_gives_them(tmp_path: Path) -> None:
    settings = ConsoleSettings(
        VAR_DIR=tmp_path,
        STATUS_PROGRAMS="users-relay=http://127.0.0.1:8011/metrics, worker=http://w:9100/m",
        SECRET_KEY_FALLBACKS="old-one, older",
        DEAD_LETTER_SERVICES="notifications,billing",
    )
    assert settings.STATUS_PROGRAMS == {
        "users-relay": "http://127.0.0.1:8011/metrics",
        "worker": "http://w:9100/m",
    }
    assert settings.SECRET_KEY_FALLBACKS == ["old-one", "older"]
    assert settings.DEAD_LETTER_SERVICES == ["notifications", "billing"]
    with pytest.raises(ValidationError, match="name=URL pairs"):
        ConsoleSettings(VAR_DIR=tmp_path, STATUS_PROGRAMS="no-url")


def test_production_is_accepted_with_everything_set() -> None:
    assert ConsoleSettings(**PRODUCTION).is_production


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AUTH_JWKS_URL": ""}, "AUTH_JWKS_URL or AUTH_PUBLIC_KEYS"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "change-me"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be set"),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE must stay on"),
        ({"REDIS_URL": ""}, "REDIS_URL must be set"),
    ],
)
def test_production_refuses_unsafe_session_settings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConsoleSettings(**(PRODUCTION | change))


@pytest.mark.process
def test_start_up_without_a_secret_key_in_production_stops_with_one_line() -> None:
    env = {
        **os.environ,
        **{name: str(value) for name, value in PRODUCTION.items()},
        "SECRET_KEY": "",
    }
    command = [sys.executable, "-c", "import console.wsgi"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "configuration error: SECRET_KEY must be set to a random value of 32+ characters"
    )
