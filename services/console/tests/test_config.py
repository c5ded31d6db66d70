"""Settings of console: defaults, and what production refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from console.config import ConsoleSettings

DATABASE = "postgresql://console@db/console"


def test_defaults(tmp_path: Path) -> None:
    settings = ConsoleSettings(VAR_DIR=tmp_path)
    assert settings.SERVICE_NAME == "console"
    assert not settings.is_production


def test_production_needs_keys_to_verify_tokens_with() -> None:
    production = {"ENVIRONMENT": "production", "DATABASE_URL": DATABASE}
    with pytest.raises(ValidationError, match="AUTH_JWKS_URL or AUTH_PUBLIC_KEYS"):
        ConsoleSettings(**production)  # type: ignore[arg-type]
    jwks = "http://users:8000/.well-known/jwks.json"
    settings = ConsoleSettings(**production, AUTH_JWKS_URL=jwks)  # type: ignore[arg-type]
    assert settings.is_production


@pytest.mark.process
def test_start_up_without_keys_in_production_stops_with_one_line() -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": DATABASE,
        "AUTH_JWKS_URL": "",
        "AUTH_PUBLIC_KEYS": "",
    }
    command = [sys.executable, "-c", "import console.wsgi"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "configuration error: AUTH_JWKS_URL or AUTH_PUBLIC_KEYS must be set in production"
    )
