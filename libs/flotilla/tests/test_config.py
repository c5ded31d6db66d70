"""Settings: typed, from the environment, refusing unsafe production values in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flotilla.config import (
    ConfigurationError,
    Environment,
    GunicornSettings,
    ServiceSettings,
    available_cpus,
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


@pytest.mark.parametrize("url", ["changeme", "mysql://u@h/d", "http://example.com"])
def test_a_database_url_of_an_unknown_kind_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings(ServiceSettings, DATABASE_URL=url)


def test_log_level_is_checked_and_case_insensitive() -> None:
    assert load_settings(ServiceSettings, LOG_LEVEL="debug").LOG_LEVEL == "DEBUG"
    with pytest.raises(ConfigurationError, match="LOG_LEVEL"):
        load_settings(ServiceSettings, LOG_LEVEL="verbose")


def test_the_refusal_is_printed_once_and_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        load_settings(ServiceSettings, LOG_LEVEL="verbose")
    assert raised.value.code == 3
    assert capsys.readouterr().err.count("configuration error: LOG_LEVEL") == 1


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000", 1)]
)
def test_usable_cpus_respect_a_container_quota(
    tmp_path: Path, cpu_max: str, expected: int | None
) -> None:
    limit = tmp_path / "cpu.max"
    limit.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(limit) == min(affinity, expected or affinity)
    assert available_cpus(tmp_path / "absent") == affinity
