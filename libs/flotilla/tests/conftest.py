"""Fixtures for the chassis tests: a small service with routes that exercise each part."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from flotilla import Conflict, ServiceSettings, create_service, set_user_id
from flotilla.web.health import reset_shutdown


def build_app(tmp_path: Path, **settings: Any) -> Flask:
    """A service with a few routes for testing the chassis, no database."""
    app = create_service(
        "chassis_sample",
        ServiceSettings(SERVICE_NAME="sample", VAR_DIR=tmp_path, **settings),
        version="9.9.9",
    )

    @app.get("/ok")
    def ok() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo")
    def echo() -> Any:
        return request.get_json()

    @app.get("/conflict")
    def conflict() -> str:
        raise Conflict("The name is taken.", name="alice")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals: password=hunter2")

    @app.get("/whoami/<int:user_id>")
    def whoami(user_id: int) -> dict[str, int]:
        set_user_id(user_id)
        return {"user_id": user_id}

    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The sample service with default settings."""
    yield build_app(tmp_path)
    reset_shutdown()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of :func:`app`."""
    return app.test_client()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/.well-known/jwks.json"
