"""The health endpoint of the worker's app: readiness covers the database and the broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from flotilla.testing import TcpProxy, wait_until
from flotilla.testing.messaging import amqp_server_url
from notifications import create_app
from notifications.models import db

from .conftest import make_settings


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A proxy in front of the test RabbitMQ that the test can cut and restore."""
    host, _, port = amqp_server_url().split("@", 1)[1].split("/", 1)[0].partition(":")
    forwarder = TcpProxy((host, int(port or 5672)))
    yield forwarder
    forwarder.close()


@pytest.fixture
def broker_app(tmp_path: Path, proxy: TcpProxy) -> Iterator[Flask]:
    """The notifications app on SQLite with the broker behind ``proxy``."""
    settings = make_settings(
        f"sqlite:///{tmp_path / 'n.db'}", tmp_path, BROKER_URL=proxy.url(), HEALTH_CHECK_TIMEOUT=1.0
    )
    app = create_app(settings)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_readiness_reports_the_broker_and_fails_while_it_is_unreachable(
    broker_app: Flask, proxy: TcpProxy
) -> None:
    client = broker_app.test_client()
    response = client.get("/healthz/ready")
    assert response.status_code == 200, response.json
    assert response.json is not None
    assert set(response.json["checks"]) == {"database", "broker"}
    proxy.cut()
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["broker"]["status"] == "fail"
    assert response.json["checks"]["database"]["status"] == "ok"
    assert client.get("/healthz/live").status_code == 200
    proxy.restore()
    # A check still running from the failed probe counts as failed until it ends.
    wait_until(lambda: client.get("/healthz/ready").status_code == 200, what="ready again")


def test_the_embedded_default_has_no_broker_to_check(app: Flask) -> None:
    response = app.test_client().get("/healthz/ready")
    assert response.status_code == 200
    assert response.json is not None
    assert set(response.json["checks"]) == {"database"}
