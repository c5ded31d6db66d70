"""Security headers on every response; HSTS only over HTTPS; proxies trusted by count."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, request, session
from flask.testing import FlaskClient
from pydantic import ValidationError

from flotilla import ServiceSettings

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


def _with_client_route(app: Flask) -> Flask:
    @app.get("/client")
    def client_address() -> dict[str, str | None]:
        return {"remote_addr": request.remote_addr, "scheme": request.scheme}

    return app


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path) -> None:
    # PROXY_HOPS=1 says a proxy is in front, but this request reached the port directly.
    app = _with_client_route(build_app(tmp_path, PROXY_HOPS=1))
    response = app.test_client().get(
        "/client", headers=FORWARDED_HTTPS, environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert response.json == {"remote_addr": "198.51.100.7", "scheme": "http"}
    assert "Strict-Transport-Security" not in response.headers


def test_only_the_configured_proxies_are_trusted(tmp_path: Path) -> None:
    app = _with_client_route(
        build_app(tmp_path, PROXY_HOPS=1, TRUSTED_PROXIES="10.0.0.0/8, 2001:db8::/32")
    )
    client = app.test_client()
    peers = {
        "10.20.30.40": "203.0.113.9",
        "2001:db8::5": "203.0.113.9",
        "::ffff:10.0.0.1": "203.0.113.9",
        "127.0.0.1": "127.0.0.1",  # loopback is no longer in the list
        "11.0.0.1": "11.0.0.1",
    }
    for peer, seen in peers.items():
        response = client.get(
            "/client", headers=FORWARDED_HTTPS, environ_base={"REMOTE_ADDR": peer}
        )
        assert response.json is not None
        assert response.json["remote_addr"] == seen, peer


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        ServiceSettings(VAR_DIR=tmp_path, TRUSTED_PROXIES="10.0.0.0/8,nginx")


def test_openapi_and_swagger_ui_are_served(client: FlaskClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json is not None
    assert spec.json["info"]["title"] == "sample"
    assert client.get("/docs").status_code == 200


def test_an_api_has_no_session_to_read_or_write_and_sets_no_cookie(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    seen: list[dict[str, object]] = []

    @app.get("/session")
    def read_session() -> dict[str, bool]:
        seen.append(dict(session))
        return {"empty": not session}

    @app.post("/session")
    def write_session() -> dict[str, bool]:
        session["user"] = "someone"  # a null session refuses it
        return {"written": True}

    client = app.test_client()
    answers = [client.get("/session") for _ in range(2)]
    assert [answer.json for answer in answers] == [{"empty": True}, {"empty": True}]
    assert seen == [{}, {}]
    refused = client.post("/session")
    assert refused.status_code == 500
    assert all("Set-Cookie" not in answer.headers for answer in [*answers, refused])
