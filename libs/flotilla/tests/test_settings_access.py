"""The chassis hands out an app's settings, API, health checks and engine by type, not by key."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import MetaData

from flotilla import Database, ServiceSettings, create_service
from flotilla.data.db_state import database_settings_of, engine_of
from flotilla.settings import current_settings, settings_of
from flotilla.web.api import ServiceApi, api_of
from flotilla.web.health import Health, health_of

from .conftest import build_app


class SampleSettings(ServiceSettings):
    """A service's own settings class."""

    GREETING: str = "hello"


def test_the_settings_an_app_was_created_with_come_back_typed(tmp_path: Path) -> None:
    settings = SampleSettings(SERVICE_NAME="sample", VAR_DIR=tmp_path)
    app = create_service("chassis_sample", settings, version="1")
    assert settings_of(app, SampleSettings) is settings
    with app.app_context():
        assert current_settings(SampleSettings).GREETING == "hello"


def test_the_api_and_the_health_checks_of_a_service(app: Flask) -> None:
    assert isinstance(api_of(app), ServiceApi)
    assert isinstance(health_of(app), Health)
    assert api_of(Flask("bare")) is None
    assert health_of(Flask("bare")) is None


def test_the_engine_and_settings_a_database_was_bound_with(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    settings = settings_of(app, ServiceSettings)
    Database(MetaData()).init_app(app, settings)
    assert database_settings_of(app) is settings
    assert engine_of(app).url.drivername == "sqlite"
