"""Connections the server closed while pooled are replaced at checkout, not handed out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from flotilla import ServiceSettings
from flotilla.data.db import create_engine_from_settings
from flotilla.data.db_liveness import is_open
from flotilla.testing import postgres_database


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def engine_for(url: str, tmp_path: Path, *, pre_ping: bool = False) -> Engine:
    settings = ServiceSettings(
        SERVICE_NAME="liveness", VAR_DIR=tmp_path, DATABASE_URL=url, DATABASE_POOL_PRE_PING=pre_ping
    )
    return create_engine_from_settings(settings)


def backend_pids(engine: Engine, count: int) -> list[int]:
    """Fill the pool with ``count`` connections held at once; their server process ids."""
    connections = [engine.connect() for _ in range(count)]
    try:
        return [c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in connections]
    finally:
        for connection in connections:
            connection.close()


def terminate(url: str, pids: list[int]) -> None:
    """End those sessions from outside, as a restart or an idle timeout of the server does."""
    other = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with other.connect() as connection:
        for pid in pids:
            connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    other.dispose()


def test_every_closed_pooled_connection_is_replaced_before_use(url: str, tmp_path: Path) -> None:
    engine = engine_for(url, tmp_path)
    old = backend_pids(engine, 3)
    terminate(url, old)
    # Each checkout now meets a dead connection first; none of them reaches a caller.
    new = backend_pids(engine, 3)
    assert not set(new) & set(old)
    engine.dispose()


def test_a_live_idle_connection_is_kept(url: str, tmp_path: Path) -> None:
    engine = engine_for(url, tmp_path)
    first = backend_pids(engine, 1)
    assert backend_pids(engine, 1) == first
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        assert is_open(raw.pgconn)
    engine.dispose()


def test_a_terminated_connection_is_seen_as_closed_without_a_round_trip(
    url: str, tmp_path: Path
) -> None:
    engine = engine_for(url, tmp_path)
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        connection.rollback()
        terminate(url, [pid])
        deadline = time.monotonic() + 5
        while is_open(raw.pgconn) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not is_open(raw.pgconn)
        connection.invalidate()
    engine.dispose()


def test_with_pre_ping_the_round_trip_does_the_same_work(url: str, tmp_path: Path) -> None:
    engine = engine_for(url, tmp_path, pre_ping=True)
    old = backend_pids(engine, 2)
    terminate(url, old)
    assert not set(backend_pids(engine, 2)) & set(old)
    engine.dispose()
