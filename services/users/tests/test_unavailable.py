"""A database that is down gives a fast 503 problem and failing readiness, never a hang."""

from __future__ import annotations

from pathlib import Path

from flotilla.testing import free_port
from users import create_app

from .conftest import access_token, bearer, make_settings


def test_requests_get_503_when_postgres_is_unreachable(tmp_path: Path) -> None:
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(make_settings(closed, tmp_path, DATABASE_CONNECT_TIMEOUT=1))
    client = app.test_client()

    response = client.get("/api/v1/users/1", headers=bearer(access_token(app, 1, ("customer",))))
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert "127.0.0.1" not in response.get_data(as_text=True)

    registration = client.post(
        "/api/v1/users",
        json={"username": "dora", "email": "dora@example.com", "password": "long enough"},
    )
    assert registration.status_code == 503

    login = client.post("/api/v1/tokens", json={"login": "dora", "password": "long enough"})
    assert login.status_code == 503

    ready = client.get("/healthz/ready")
    assert ready.status_code == 503
    assert ready.json is not None
    assert ready.json["checks"]["database"]["status"] == "fail"
    assert client.get("/healthz/live").status_code == 200
