"""Databases in tests: throw-away PostgreSQL databases, app fixtures and migration checks.

:func:`fresh_database` gives an empty database of either backend in :data:`BACKENDS`;
:func:`app_fixture` makes a pytest fixture of a service's app on one, and the ``check_*``
functions are the migration tests every service runs on it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Literal, TypeVar

import pytest
from flask import Flask
from sqlalchemy import Engine, MetaData, create_engine, inspect, make_url, text
from sqlalchemy.exc import OperationalError

from flotilla.config import ServiceSettings
from flotilla.data.db_state import engine_of
from flotilla.data.migrations import differences, downgrade, upgrade

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_ENV = "FLOTILLA_TEST_POSTGRES_URL"
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
BACKENDS = ("sqlite", "postgres")
"""The databases a service's tests run on: the embedded default and the production one."""


def postgres_server_url() -> str:
    """The PostgreSQL server tests use: ``FLOTILLA_TEST_POSTGRES_URL`` or the local one."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


@contextmanager
def postgres_database(server_url: str | None = None) -> Iterator[str]:
    """Create an empty database on the server at ``server_url``; yield its URL; drop it."""
    server_url = server_url or postgres_server_url()
    name = f"flotilla_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class PostgresUnavailable(RuntimeError):
    """The test PostgreSQL server cannot be reached; tests on PostgreSQL fail, never skip."""


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """Yield the URL of an empty database of ``backend`` (one of :data:`BACKENDS`).

    SQLite gets a new file in ``directory``; PostgreSQL a database of its own on
    :func:`postgres_server_url`, dropped afterwards. An unreachable server raises
    :class:`PostgresUnavailable` naming it: a missing PostgreSQL must fail the run, since
    passing on SQLite alone says nothing about production.
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'database.db'}"
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_database())
        except OperationalError as error:
            # The message carries the driver's reason; its traceback would only bury it.
            message = f"PostgreSQL is required at {postgres_server_url()}: {error}"
            raise PostgresUnavailable(message) from None
        yield url


def app_fixture(
    create_app: Callable[[SettingsT], Flask],
    make_settings: Callable[[str, Path], SettingsT],
    *,
    scope: Literal["function", "session"] = "function",
    migrate: bool = False,
) -> object:
    """A pytest fixture: an app per backend in :data:`BACKENDS`, each on a :func:`fresh_database`.

    The app is ``create_app(make_settings(database_url, var_dir))``, upgraded to head if
    ``migrate``; its pool is closed before the database goes. Assign the fixture in a conftest
    or test module: the name it is assigned to is the fixture's name::

        migrated_app = app_fixture(create_app, make_settings, scope="session", migrate=True)
    """

    def app_on_fresh_database(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Flask]:
        directory = tmp_path_factory.mktemp(request.param)
        with fresh_database(request.param, directory) as url:
            app = create_app(make_settings(url, directory))
            if migrate:
                upgrade(app)
            yield app
            engine_of(app).dispose()

    return pytest.fixture(app_on_fresh_database, scope=scope, params=BACKENDS)


def table_names(app: Flask) -> set[str]:
    """The tables that exist in ``app``'s database now."""
    engine = engine_of(app)
    return set(inspect(engine).get_table_names())


def check_upgrade_from_empty(app: Flask, metadata: MetaData, *, tables: set[str]) -> None:
    """Upgrade ``app``'s empty database to head; fail unless ``tables`` exist and match the models.

    This and the two checks below are what every service's migrations must pass, on each
    backend; a service's ``test_migrations`` calls them with its app and ``metadata``.
    """
    upgrade(app)
    missing = tables - table_names(app)
    assert not missing, f"tables missing after upgrade: {sorted(missing)}"
    _check_schema_matches(app, metadata)


def check_downgrade_to_base(app: Flask, metadata: MetaData) -> None:
    """Upgrade, downgrade to base, upgrade again; fail unless base leaves no table behind."""
    upgrade(app)
    downgrade(app, "base")
    left = table_names(app) - {"alembic_version"}
    assert not left, f"tables left after downgrading to base: {sorted(left)}"
    upgrade(app)
    _check_schema_matches(app, metadata)


def check_upgrade_twice(app: Flask, metadata: MetaData) -> None:
    """Upgrade to head twice; fail unless the second is a no-op that leaves the schema right."""
    upgrade(app)
    upgrade(app)
    _check_schema_matches(app, metadata)


def _check_schema_matches(app: Flask, metadata: MetaData) -> None:
    found = differences(app, metadata)
    assert found == [], f"the migrated schema differs from the models: {found}"


def empty_tables(engine: Engine, metadata: MetaData) -> None:
    """Delete every row of ``metadata``'s tables, children first; ids restart on PostgreSQL."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


def migrate(app: Flask) -> None:
    """Bring ``app``'s database to the latest revision, then close the connections it used.

    What a deployment's pre-start step does before the servers start.
    """
    upgrade(app)
    engine_of(app).dispose()
