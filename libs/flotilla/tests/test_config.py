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
    comma_separated,
    load_settings,
    settings_table,
)

POSTGRES = "postgresql+psycopg://app:s3cr3t-Pa55word@db/app"


def test_defaults_are_for_development() -> None:
    settings = ServiceSettings()
    assert settings.ENVIRONMENT is Environment.DEVELOPMENT
    assert settings.database_url() == "sqlite:///var/service.db"


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "12")
    settings = load_settings(ServiceSettings)
    assert settings.DATABASE_POOL_SIZE == 12


def test_secret_key_is_not_a_setting_and_an_old_one_is_ignored() -> None:
    # Nothing signs with it (no cookie sessions, tokens are Ed25519): not required anywhere.
    assert "SECRET_KEY" not in ServiceSettings.model_fields
    settings = load_settings(ServiceSettings, ENVIRONMENT="production", DATABASE_URL=POSTGRES)
    assert settings.is_production


def test_production_refuses_a_missing_database_url() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(ServiceSettings, ENVIRONMENT="production")
    assert "DATABASE_URL" in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "BROKER_URL"])
@pytest.mark.parametrize("password", ["change-me", "CHANGEME", "secret"])
def test_production_refuses_a_placeholder_password(name: str, password: str) -> None:
    urls = {
        "DATABASE_URL": POSTGRES,
        "REDIS_URL": "redis://redis:6379/0",
        "BROKER_URL": "amqp://shop:real-pa55word@rabbitmq:5672//",
    }
    scheme, _, rest = urls[name].partition("://")
    urls[name] = f"{scheme}://someone:{password}@{rest.rpartition('@')[2]}"
    with pytest.raises(ConfigurationError) as raised:
        load_settings(ServiceSettings, ENVIRONMENT="production", **urls)
    assert str(raised.value) == (
        f"configuration error: {name} holds a placeholder password; set the real one"
    )


def test_production_accepts_real_values() -> None:
    settings = load_settings(
        ServiceSettings,
        ENVIRONMENT="production",
        DATABASE_URL=POSTGRES,
        REDIS_URL="redis://:long-random-pa55@redis:6379/0",
    )
    assert settings.is_production


def test_a_wrongly_typed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "many")
    with pytest.raises(ConfigurationError, match="DATABASE_POOL_SIZE"):
        load_settings(ServiceSettings)


def test_configuration_error_exits_without_a_traceback() -> None:
    assert issubclass(ConfigurationError, SystemExit)


def test_secrets_are_not_in_the_repr() -> None:
    settings = ServiceSettings(DATABASE_URL=POSTGRES)
    assert "s3cr3t" not in repr(settings)


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


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        (" a,, ,b, ", ["a", "b"]),
        ("", []),
        (["kept", " as is "], ["kept", " as is "]),
    ],
)
def test_comma_separated_text_becomes_its_items_and_other_values_pass(
    value: object, items: object
) -> None:
    assert comma_separated(value) == items


def test_trusted_proxies_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1/8, ,127.0.0.1")
    proxies = [str(network) for network in ServiceSettings().TRUSTED_PROXIES]
    assert proxies == ["10.0.0.0/8", "127.0.0.1/32"]
