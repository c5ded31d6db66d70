"""Where an app keeps its database: the engine, the settings it was bound with, migrations.

Apart from :mod:`flotilla.data.db` so that the migration commands, the outbox and the test
helpers can reach an app's engine without importing the extension, which imports the
``flask db`` commands, which import the migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import Engine

from flotilla.config import ServiceSettings

EXTENSION_KEY, MIGRATIONS_KEY = "flotilla.db", "flotilla.migrations"


@dataclass
class DatabaseState:
    """What one app's database needs at run time."""

    engine: Engine
    settings: ServiceSettings


def keep_database(app: Flask, state: DatabaseState, migrations: Path | None) -> None:
    """Keep ``state`` (and the ``migrations`` directory, if any) on ``app``."""
    app.extensions[EXTENSION_KEY] = state
    if migrations is not None:
        app.extensions[MIGRATIONS_KEY] = migrations


def engine_of(app: Flask) -> Engine:
    """The database engine of ``app`` (bound by :meth:`flotilla.Database.init_app`)."""
    state: DatabaseState = app.extensions[EXTENSION_KEY]
    return state.engine


def database_settings_of(app: Flask) -> ServiceSettings:
    """The settings ``app``'s database was bound with."""
    state: DatabaseState = app.extensions[EXTENSION_KEY]
    return state.settings


def migrations_of(app: Flask) -> Path:
    """The migrations directory of ``app``'s database; KeyError for a database without one."""
    directory: Path = app.extensions[MIGRATIONS_KEY]
    return directory
