"""SQLAlchemy 2 engine and sessions for a Flask app, sized and guarded from settings.

Two ways to talk to the database:

* :attr:`Database.session` — an ORM session per app context, for writes. Service functions
  commit it explicitly; it is removed when the context ends.
* :meth:`Database.reading` — a session on an autocommit connection, for the hot read path.
  SQLAlchemy otherwise wraps every read in ``BEGIN … ROLLBACK``: two extra round trips that
  cost about a fifth of throughput on a one-row lookup (see ``bench/RESULTS.md``).

PostgreSQL gets a pool sized from settings, a connect timeout and a server-side statement
timeout; SQLite (the embedded default) gets WAL mode and a busy timeout. Pools are reset in
every forked child, so Gunicorn's ``preload_app`` never shares a socket between workers.
A database that refuses connections, drops them or times out a statement becomes a fast 503
problem, not a hang or a 500 (see ``_postgres_connect_args`` for the one case it cannot
bound: a server that is alive but frozen). Connections the server closed while they sat in
the pool (a restart) are replaced at checkout, not handed out (``flotilla.data.db_liveness``).
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, current_app
from flask.globals import app_ctx
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from flotilla.config import ServiceSettings
from flotilla.data.db_liveness import drop_closed_connections
from flotilla.data.db_metrics import watch_pool
from flotilla.data.db_state import EXTENSION_KEY, DatabaseState, keep_database
from flotilla.data.dbcli import cli
from flotilla.observability import tracing
from flotilla.web.errors import Problem, ServiceUnavailable, ValidationFailed, problem_response
from flotilla.web.health import health_of

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names that are stable across databases, so migrations can refer to them."""


_BARE_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _reset_pools_after_fork() -> None:
    # The child must not use (or close) the parent's sockets: forget them, open new ones.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_reset_pools_after_fork)


def dispose_all() -> None:
    """Close every pooled connection of this process, telling the server goodbye."""
    for engine in list(_engines):
        engine.dispose()


def create_engine_from_settings(settings: ServiceSettings) -> Engine:
    """An engine for ``settings.database_url()`` with pool and timeouts from settings."""
    url = make_url(settings.database_url())
    if url.drivername in _BARE_POSTGRES_SCHEMES:
        # postgres:// and postgresql:// (as platforms hand them out) mean psycopg 3 here.
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url.database, settings)
    else:
        engine = create_engine(
            url,
            pool_size=settings.DATABASE_POOL_SIZE,
            max_overflow=settings.DATABASE_MAX_OVERFLOW,
            pool_timeout=settings.DATABASE_POOL_TIMEOUT,
            pool_pre_ping=settings.DATABASE_POOL_PRE_PING,
            pool_recycle=1800,
            connect_args=_postgres_connect_args(settings),
            echo=settings.DATABASE_ECHO,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
            # Logged errors must not carry e-mails or password hashes in production.
            hide_parameters=settings.is_production,
        )
        if not settings.DATABASE_POOL_PRE_PING:
            drop_closed_connections(engine)
    _engines.add(engine)
    return engine


def _postgres_connect_args(settings: ServiceSettings) -> dict[str, Any]:
    options = f"-c statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT_MS}"
    return {
        "connect_timeout": settings.DATABASE_CONNECT_TIMEOUT,
        "application_name": settings.SERVICE_NAME,
        "options": options,
        # A lost network (or a dead server host) breaks the connection in about ten seconds
        # instead of the kernel's two hours. A server that is alive but frozen still ACKs at
        # the TCP level; only the readiness probe's deadline covers that case.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": settings.DATABASE_TCP_USER_TIMEOUT_MS,
    }


def _sqlite_engine(path: str | None, settings: ServiceSettings) -> Engine:
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{path or ''}",
        connect_args={"timeout": 5.0, "check_same_thread": False},
        echo=settings.DATABASE_ECHO,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _json_text(value: Any) -> str:
    """JSON columns (event payloads, stored answers) written by orjson, not the json module.

    Several times faster on the payloads the services write with every order, and the same
    text the services answer with (``flotilla.web.jsonprovider``): datetimes, UUIDs, dataclasses.
    """
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",  # readers never block the writer
        "synchronous=NORMAL",  # durable at checkpoints; safe with WAL
        "foreign_keys=ON",
        "busy_timeout=5000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class _AppSession(Session):
    """A session that uses the engine of the app it was opened in."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine:
        """The current app's engine, whatever the mapper or clause."""
        state: DatabaseState = current_app.extensions[EXTENSION_KEY]
        return state.engine


def _app_context_id() -> int:
    # One session per app context (a request, a CLI command), as Flask-SQLAlchemy scopes it.
    return id(app_ctx._get_current_object())  # type: ignore[attr-defined]


class Database:
    """The database of one service: declare it at module level, bind it with ``init_app``."""

    def __init__(self, metadata: MetaData, *, migrations: Path | None = None) -> None:
        self.metadata = metadata
        self.migrations = migrations
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(class_=_AppSession, expire_on_commit=False), scopefunc=_app_context_id
        )

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Create the engine, close sessions per app context and add a readiness check."""
        state = DatabaseState(create_engine_from_settings(settings), settings)
        tracing.instrument_engine(state.engine, settings)
        watch_pool(state.engine)
        keep_database(app, state, self.migrations)
        if self.migrations is not None:
            app.cli.add_command(cli)
        app.teardown_appcontext(self._remove_session)
        app.register_error_handler(OperationalError, _unavailable)
        app.register_error_handler(PoolTimeoutError, _unavailable)
        app.register_error_handler(DataError, _unstorable)
        health = health_of(app)
        if health is not None:
            health.add_check("database", lambda: _ping(state.engine))

    @property
    def engine(self) -> Engine:
        """The engine of the current app."""
        state: DatabaseState = current_app.extensions[EXTENSION_KEY]
        return state.engine

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only, on an autocommit connection: no BEGIN/ROLLBACK."""
        with (
            self.autocommit() as connection,
            Session(bind=connection, autoflush=False, expire_on_commit=False) as session,
        ):
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A Core connection in autocommit: each statement is its own transaction, no BEGIN.

        For the hottest paths: a read, or a write that is one statement, takes one round trip
        instead of three; a ``select()`` of columns skips the session's identity map and
        object construction, several times cheaper than loading objects. Anything that must
        change several rows together belongs in ``engine.connect()`` with a commit.
        """
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def _remove_session(self, _error: BaseException | None) -> None:
        self.session.remove()


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _unavailable(error: Exception) -> Any:
    log.warning("database unavailable", extra={"error": repr(error)[:500]})
    problem: Problem = ServiceUnavailable(
        "The database is unavailable; retry shortly.", headers={"Retry-After": "1"}
    )
    return problem_response(problem)


class UnstorableValue(ValidationFailed):
    """The database refused a value validation let through, e.g. a NUL character (422)."""

    code, title = "unstorable-value", "Unstorable Value"


def _unstorable(error: DataError) -> Any:
    # SQLSTATE class 22 (data exception): the value came from the request, which changes
    # nothing, rather than from a broken server; logged in full, since a schema should have
    # refused it first.
    log.warning("database refused a value", exc_info=error)
    problem: Problem = UnstorableValue("The request holds a value that cannot be stored.")
    return problem_response(problem)
