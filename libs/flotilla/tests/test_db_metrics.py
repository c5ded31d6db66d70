"""The pool gauges follow checkouts and count each process's capacity once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from flotilla import ServiceSettings
from flotilla.data.db import create_engine_from_settings
from flotilla.data.db_metrics import pool_gauges, watch_pool
from flotilla.testing import postgres_database


def gauge(name: str) -> float:
    """The current value of a pool gauge of this process."""
    gauges = pool_gauges()
    value: float = getattr(gauges, name)._value.get()
    return value


@pytest.mark.postgres
def test_in_use_follows_checkouts_and_capacity_is_added_once(tmp_path: Path) -> None:
    with postgres_database() as url:
        settings = ServiceSettings(
            DATABASE_URL=url, DATABASE_POOL_SIZE=3, DATABASE_MAX_OVERFLOW=2, VAR_DIR=tmp_path
        )
        engine = create_engine_from_settings(settings)
        watch_pool(engine)
        in_use, capacity = gauge("in_use"), gauge("capacity")
        try:
            with engine.connect() as first, engine.connect() as second:
                first.execute(text("SELECT 1"))
                second.execute(text("SELECT 1"))
                assert gauge("in_use") == in_use + 2
            assert gauge("in_use") == in_use
            with engine.connect():
                pass
            assert gauge("capacity") == capacity + 5  # size 3 + overflow 2, counted once
        finally:
            engine.dispose()
