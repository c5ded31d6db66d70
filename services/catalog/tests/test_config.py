"""Settings of the catalog: defaults, and what production refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog.config import CatalogSettings

DATABASE = "postgresql://catalog@db/catalog"


def test_defaults(tmp_path: Path) -> None:
    settings = CatalogSettings(VAR_DIR=tmp_path)
    assert settings.SERVICE_NAME == "catalog"
    assert settings.PRODUCT_CACHE_TTL == 60


@pytest.mark.parametrize("ttl", [0, -1, 86_401])
def test_a_cache_ttl_out_of_range_is_refused(ttl: float) -> None:
    with pytest.raises(ValidationError, match="PRODUCT_CACHE_TTL"):
        CatalogSettings(PRODUCT_CACHE_TTL=ttl)


def test_production_needs_keys_to_verify_tokens_with() -> None:
    production = {"ENVIRONMENT": "production", "DATABASE_URL": DATABASE}
    with pytest.raises(ValidationError, match="AUTH_JWKS_URL or AUTH_PUBLIC_KEYS"):
        CatalogSettings(**production)  # type: ignore[arg-type]
    jwks = "http://users:8000/.well-known/jwks.json"
    assert CatalogSettings(**production, AUTH_JWKS_URL=jwks).is_production  # type: ignore[arg-type]


@pytest.mark.process
def test_start_up_without_keys_in_production_stops_with_one_line() -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": DATABASE,
        "AUTH_JWKS_URL": "",
        "AUTH_PUBLIC_KEYS": "",
    }
    command = [sys.executable, "-c", "import catalog.wsgi"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "configuration error: AUTH_JWKS_URL or AUTH_PUBLIC_KEYS must be set in production"
    )
