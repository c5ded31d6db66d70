"""Fixtures for the messaging tests: unique broker names, a cuttable proxy, the sample app.

Every test gets its own service name (hence queue names) and events exchange, and deletes
them afterwards, so concurrent runs against the shared RabbitMQ never see each other.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flotilla.testing import BACKENDS, TcpProxy, fresh_database
from flotilla.testing.messaging import Rabbit, amqp_server_url

HERE = Path(__file__).resolve().parent
# The sample app is imported by these tests and by the worker processes they start.
sys.path.insert(0, str(HERE))

from messaging_sample import AppFactory, Names, db, sample_app, sample_settings  # noqa: E402 - path above


@pytest.fixture
def rabbit() -> Iterator[Rabbit]:
    """A connection to the test RabbitMQ that deletes what the test declared."""
    client = Rabbit()
    yield client
    client.close()


@pytest.fixture
def names(rabbit: Rabbit) -> Names:
    """A service name and events exchange used by this test only (deleted at the end)."""
    token = uuid.uuid4().hex[:10]
    chosen = Names(service=f"t{token}", exchange=f"t{token}.events")
    rabbit.forget_later(queues=(chosen.work_queue, chosen.dead_queue), exchanges=(chosen.exchange,))
    return chosen


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A proxy in front of the test RabbitMQ that the test can cut and restore."""
    url = amqp_server_url()
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    forwarder = TcpProxy((host, int(port or 5672)))
    yield forwarder
    forwarder.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty SQLite file or PostgreSQL database."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def make_app(names: Names, tmp_path: Path, database_url: str) -> Iterator[AppFactory]:
    """Build sample apps with setting overrides; their pools are closed after the test."""
    created: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        values = {"DATABASE_URL": database_url, **overrides}
        created.append(sample_app(sample_settings(names, tmp_path, **values)))
        return created[-1]

    yield make
    for app in created:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """The sample service on RabbitMQ and the parametrised database."""
    return make_app()
