"""Settings: typed, from the environment, refusing unsafe production values in one line."""

from __future__ import annotations

import pytest

from flotilla.config import (
    ConfigurationError,
    Environment,
    GunicornSettings,
    ServiceSettings,
    load_settings,
    settings_table,
)

STRONG_SECRET = "x" * 40
POSTGRES = "postgresql+psycopg://app@db/app"


def test_defaults_are_for_development() -> None:
    settings = ServiceSettings()
    assert settings.ENVIRONMENT is Environment.DEVELOPMENT
    assert settings.database_url() == "sqlite:///var/service.db"


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "12")
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "old-one, older-one")
    settings = load_settings(ServiceSettings)
    assert settings.DATABASE_POOL_SIZE == 12
    assert settings.SECRET_KEY_FALLBACKS == ["old-one", "older-one"]


@pytest.mark.parametrize("secret", ["", "changeme", "development-only-secret", "short"])
def test_production_refuses_a_placeholder_secret_key(secret: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            ServiceSettings, ENVIRONMENT="production", SECRET_KEY=secret, DATABASE_URL=POSTGRES
        )
    message = str(raised.value)
    assert "SECRET_KEY" in message
    assert "\n" not in message


def test_production_refuses_a_missing_database_url() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(ServiceSettings, ENVIRONMENT="production", SECRET_KEY=STRONG_SECRET)
    assert "DATABASE_URL" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_production_accepts_real_values() -> None:
    settings = load_settings(
        ServiceSettings, ENVIRONMENT="production", SECRET_KEY=STRONG_SECRET, DATABASE_URL=POSTGRES
    )
    assert settings.is_production


def test_a_wrongly_typed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "many")
    with pytest.raises(ConfigurationError, match="DATABASE_POOL_SIZE"):
        load_settings(ServiceSettings)


def test_configuration_error_exits_without_a_traceback() -> None:
    assert issubclass(ConfigurationError, SystemExit)


def test_secrets_are_not_in_the_repr() -> None:
    settings = ServiceSettings(SECRET_KEY=STRONG_SECRET)
    assert STRONG_SECRET not in repr(settings)


def test_gunicorn_settings_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_TIMEOUT", "7")
    settings = load_settings(GunicornSettings)
    assert (settings.WORKERS, settings.TIMEOUT, settings.WORKER_CLASS) == (3, 7, "gthread")
    assert settings.THREADS == 4


def test_the_settings_table_lists_every_setting() -> None:
    table = settings_table(ServiceSettings)
    for name in ServiceSettings.model_fields:
        assert f"| `{name}` |" in table
