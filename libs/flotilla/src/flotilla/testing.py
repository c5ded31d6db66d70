"""Helpers for testing Flotilla services against real parts (with pytest, a dev dependency).

* :func:`capture_logs` collects the JSON log records of a block, so tests assert on logs.
* :func:`postgres_database` creates a throw-away PostgreSQL database and drops it afterwards;
  :func:`fresh_database` gives an empty database of either backend in :data:`BACKENDS`;
  :func:`app_fixture` makes a pytest fixture of a service's app on one, and the ``check_*``
  functions are the migration tests every service runs on it.
* :func:`service_redis` hands out the test Redis and deletes a service's keys afterwards.
* :class:`ManualClock` is a clock tests move by hand, where code takes a ``clock``.
* :func:`wait_for_http` (from :mod:`flotilla.processes`) polls a URL until it answers.
* :class:`GunicornServer` starts a real Gunicorn with the chassis config on a free port,
  waits until ``/healthz/ready`` answers, and stops it by PID; :func:`read_json_lines` reads
  the JSON logs such child processes write.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson
import pytest
import redis
from flask import Flask
from sqlalchemy import Engine, MetaData, create_engine, inspect, make_url, text
from sqlalchemy.exc import OperationalError

from flotilla.config import ServiceSettings
from flotilla.logging import JsonFormatter
from flotilla.migrations import differences, downgrade, upgrade
from flotilla.processes import ProcessExited, stop_process, wait_for_http

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_ENV = "FLOTILLA_TEST_POSTGRES_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
BACKENDS = ("sqlite", "postgres")
"""The databases a service's tests run on: the embedded default and the production one."""


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(orjson.loads(self.format(record)))


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect every log record of the block as the dict the JSON formatter would write."""
    handler = _ListHandler()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, previous_level or level))
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


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
            app.extensions["flotilla.db"].engine.dispose()

    return pytest.fixture(app_on_fresh_database, scope=scope, params=BACKENDS)


def table_names(app: Flask) -> set[str]:
    """The tables that exist in ``app``'s database now."""
    engine: Engine = app.extensions["flotilla.db"].engine
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


@contextmanager
def service_redis(service_name: str) -> Iterator[str]:
    """Yield the test Redis's URL (``REDIS_URL`` or the local one); clean up afterwards.

    Every key of a service whose name starts with ``service_name`` is deleted, so tests that
    give their services unique names never see each other's counters on the shared server.
    """
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    yield url
    with redis.Redis.from_url(url) as connection:
        for key in connection.scan_iter(match=f"flotilla:{service_name}*"):
            connection.delete(key)


def empty_tables(engine: Engine, metadata: MetaData) -> None:
    """Delete every row of ``metadata``'s tables, children first; ids restart on PostgreSQL."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ManualClock:
    """A monotonic clock tests move by hand, for code that takes a ``clock`` callable.

    It reads ``start`` (arbitrary, but not 0) until a test calls :meth:`advance` or sets
    :attr:`now`, so the time a cache or a limiter sees is exact and no test sleeps. Started at
    ``time.time()`` it stands in for POSIX time as well.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects written to ``path``, one a line; other lines (tracebacks) are skipped."""
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return records


class GunicornServer:
    """A real Gunicorn running ``app_uri`` with ``-c python:flotilla.gunicorn``.

    Use as a context manager; output goes to ``log_path`` so tests can read the JSON logs.
    """

    def __init__(
        self,
        app_uri: str,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
        port: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.app_uri = app_uri
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.cwd = cwd
        self.env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{self.port}", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GunicornServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The master's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, *, ready_timeout: float = 60.0) -> None:
        """Start the master and wait until ``/healthz/ready`` answers 200."""
        command = [sys.executable, "-m", "gunicorn", "-c", "python:flotilla.gunicorn"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed command line
                [*command, self.app_uri], env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )
        try:
            wait_for_http(f"{self.url}/healthz/ready", timeout=ready_timeout, process=self.process)
        except (TimeoutError, ProcessExited):
            self.stop()
            raise

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the master."""
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the master, wait for it, SIGKILL if it hangs; return its exit code."""
        if self.process is None:
            return 0
        return stop_process(self.process, timeout=timeout)

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines the server wrote so far (non-JSON lines are skipped)."""
        return read_json_lines(self.log_path)
