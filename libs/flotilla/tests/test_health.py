"""Liveness never touches I/O; readiness checks every dependency with a deadline."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from flotilla.testing import free_port
from flotilla.web.health import Health, begin_shutdown

from .conftest import build_app


def health_of(app: Flask) -> Health:
    """The app's health extension."""
    health: Health = app.extensions["flotilla.health"]
    return health


def failing_check() -> None:
    raise ConnectionRefusedError("connection refused")


def test_live_answers_without_checks(app: Flask, client: FlaskClient) -> None:
    health_of(app).add_check("database", failing_check)
    response = client.get("/healthz/live")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_reports_each_check(app: Flask, client: FlaskClient) -> None:
    health_of(app).add_check("database", lambda: None)
    health_of(app).add_check("cache", lambda: None)
    response = client.get("/healthz/ready")
    assert response.status_code == 200
    assert response.json is not None
    assert set(response.json["checks"]) == {"database", "cache"}
    assert response.json["checks"]["cache"]["status"] == "ok"


def test_ready_is_503_when_a_check_fails(app: Flask, client: FlaskClient) -> None:
    health_of(app).add_check("database", lambda: None)
    health_of(app).add_check("broker", failing_check)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["broker"] == {
        "status": "fail",
        "duration_ms": response.json["checks"]["broker"]["duration_ms"],
        "error": "ConnectionRefusedError",
    }
    assert "refused" not in response.get_data(as_text=True)


def test_a_hanging_check_fails_at_the_deadline(tmp_path: Path) -> None:
    app = build_app(tmp_path, HEALTH_CHECK_TIMEOUT=0.2)
    release = threading.Event()
    health_of(app).add_check("database", lambda: release.wait(30))
    client = app.test_client()
    try:
        first = client.get("/healthz/ready")
        second = client.get("/healthz/ready")
    finally:
        release.set()
    assert first.status_code == 503
    assert first.json is not None
    assert first.json["checks"]["database"]["error"] == "Timeout"
    # The stuck check is not started a second time; it is reported as still running.
    assert second.json is not None
    assert second.json["checks"]["database"]["error"] == "StillRunning"


def test_ready_fails_as_soon_as_shutdown_begins(client: FlaskClient) -> None:
    assert client.get("/healthz/ready").status_code == 200
    begin_shutdown()
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.json == {"status": "shutting-down", "checks": {}}
    assert client.get("/healthz/live").status_code == 200


def test_redis_and_broker_are_checked_when_configured(tmp_path: Path) -> None:
    app = build_app(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:6379/0",
        BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
    )
    response = app.test_client().get("/healthz/ready")
    assert response.status_code == 200, response.json
    assert response.json is not None
    assert set(response.json["checks"]) == {"redis", "broker"}


def test_unreachable_redis_and_broker_degrade_readiness_without_failing_it(
    tmp_path: Path,
) -> None:
    app = build_app(
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//",
        HEALTH_CHECK_TIMEOUT=1.0,
    )
    response = app.test_client().get("/healthz/ready")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "degraded"
    checks = response.json["checks"]
    assert checks["redis"]["status"] == checks["broker"]["status"] == "fail"
    assert checks["redis"]["critical"] is checks["broker"]["critical"] is False


def test_a_failed_critical_check_fails_readiness_whatever_else_is_degraded(app: Flask) -> None:
    health_of(app).add_check("database", failing_check)
    health_of(app).add_check("cache", failing_check, critical=False)
    response = app.test_client().get("/healthz/ready")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == "fail"


def test_no_dependency_checks_without_urls(client: FlaskClient) -> None:
    response = client.get("/healthz/ready")
    assert response.json == {"status": "ok", "checks": {}}
