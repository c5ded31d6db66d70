"""Client secrets: configured ones, development ones derived under VAR_DIR, and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flotilla import ServiceSettings
from flotilla.auth import ClientRegistry, development_client_secret, parse_client_secrets
from flotilla.resilience.http import ClientCredentials


def test_client_secrets_are_name_equals_secret_pairs() -> None:
    assert parse_client_secrets(" orders = a=b , billing=c,") == {"orders": "a=b", "billing": "c"}
    for malformed in ("orders", "=secret", "orders="):
        with pytest.raises(ValueError, match="name=secret"):
            parse_client_secrets(malformed)


def test_a_configured_registry_knows_only_its_clients(tmp_path: Path) -> None:
    registry = ClientRegistry({"orders": "right"}, development_dir=tmp_path)
    assert registry.authenticate("orders", "right")
    assert not registry.authenticate("orders", "wrong")
    assert not registry.authenticate("billing", development_client_secret(tmp_path, "billing"))


def test_in_development_each_service_has_a_secret_derived_from_one_key(tmp_path: Path) -> None:
    registry = ClientRegistry({}, development_dir=tmp_path)
    orders = development_client_secret(tmp_path, "orders")
    assert registry.authenticate("orders", orders)
    assert not registry.authenticate("billing", orders)  # each name its own secret
    assert development_client_secret(tmp_path, "orders") == orders  # kept, not remade
    key = tmp_path / "keys" / "service-clients.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert not ClientRegistry({}, development_dir=None).authenticate("orders", orders)


def test_credentials_come_from_settings_with_the_development_secret(tmp_path: Path) -> None:
    assert ClientCredentials.from_settings(ServiceSettings(VAR_DIR=tmp_path)) is None
    settings = ServiceSettings(
        SERVICE_NAME="orders", VAR_DIR=tmp_path, SERVICE_TOKEN_URL="http://users/token"
    )
    credentials = ClientCredentials.from_settings(settings)
    assert credentials is not None
    assert credentials.issuer == "users"


def test_production_refuses_a_missing_or_short_client_secret(tmp_path: Path) -> None:
    production: dict[str, Any] = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": "postgresql://db/orders",
        "VAR_DIR": tmp_path,
    }
    for secret in ("", "change-me", "s" * 31):
        with pytest.raises(ValidationError, match="SERVICE_CLIENT_SECRET"):
            ServiceSettings(
                SERVICE_TOKEN_URL="http://users/token", SERVICE_CLIENT_SECRET=secret, **production
            )
    ServiceSettings(
        SERVICE_TOKEN_URL="http://users/token", SERVICE_CLIENT_SECRET="s" * 32, **production
    )
    ServiceSettings(**production)  # a service calling nobody as itself needs none
