"""Security headers on every response; HSTS only over HTTPS; proxies trusted by count."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from .conftest import build_app

FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def test_every_response_has_the_security_headers(client: FlaskClient) -> None:
    for response in (client.get("/ok"), client.get("/missing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_is_sent_over_https(client: FlaskClient) -> None:
    response = client.get("/ok", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_forwarded_headers_are_ignored_without_trusted_proxies(client: FlaskClient) -> None:
    response = client.get("/ok", headers=FORWARDED_HTTPS)
    assert "Strict-Transport-Security" not in response.headers


def test_forwarded_headers_are_believed_from_a_trusted_proxy(tmp_path: Path) -> None:
    app = build_app(tmp_path, PROXY_HOPS=1)

    @app.get("/client")
    def client_address() -> dict[str, str | None]:
        from flask import request

        return {"remote_addr": request.remote_addr, "scheme": request.scheme}

    response = app.test_client().get("/client", headers=FORWARDED_HTTPS)
    assert response.json == {"remote_addr": "203.0.113.9", "scheme": "https"}
    assert "Strict-Transport-Security" in response.headers


def test_openapi_and_swagger_ui_are_served(client: FlaskClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json is not None
    assert spec.json["info"]["title"] == "sample"
    assert client.get("/docs").status_code == 200
