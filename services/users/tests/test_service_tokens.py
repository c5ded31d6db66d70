"""Services' own tokens: the client credentials grant, and where such a token is refused."""

from __future__ import annotations

import base64
from pathlib import Path

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flotilla.auth import development_client_secret
from users import create_app

from .conftest import Account, bearer, json_of, make_settings

TOKEN_PATH = "/api/v1/service-tokens"
GRANT = {"grant_type": "client_credentials"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic credentials, as RFC 6749 2.3.1 sends a client's name and secret."""
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def ask(client: FlaskClient, headers: dict[str, str], form: dict[str, str] = GRANT) -> TestResponse:
    """POST the grant as a form."""
    return client.post(TOKEN_PATH, data=form, headers=headers)


def development_secret(app: Flask, client_id: str) -> str:
    return development_client_secret(app.extensions["flotilla.settings"].VAR_DIR, client_id)


def test_a_service_with_its_development_secret_gets_a_token_of_its_own(
    app: Flask, client: FlaskClient
) -> None:
    response = ask(client, basic("orders", development_secret(app, "orders")))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = json_of(response)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == claims["sub"] == "orders"
    assert claims["roles"] == ["service"]
    assert "sid" not in claims
    assert "email" not in claims


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("orders", "wrong"),
        basic("nobody", "wrong"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer abc"},
    ],
)
def test_wrong_or_missing_client_credentials_are_a_401_problem(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = ask(client, headers)
    assert response.status_code == 401
    assert json_of(response)["type"] == "urn:flotilla:problem:invalid-client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_another_grant_type_is_refused(app: Flask, client: FlaskClient) -> None:
    secret = development_secret(app, "orders")
    response = ask(client, basic("orders", secret), {"grant_type": "password"})
    assert response.status_code == 422


def test_configured_secrets_replace_the_development_ones(tmp_path: Path, app: Flask) -> None:
    settings = app.extensions["flotilla.settings"]
    configured = create_app(
        make_settings(settings.DATABASE_URL, tmp_path, SERVICE_CLIENT_SECRETS="orders=" + "s" * 40)
    ).test_client()
    assert ask(configured, basic("orders", "s" * 40)).status_code == 200
    derived = development_client_secret(tmp_path, "orders")
    assert ask(configured, basic("orders", derived)).status_code == 401
    assert (
        ask(
            configured, basic("catalog", development_client_secret(tmp_path, "catalog"))
        ).status_code
        == 401
    )


def test_production_refuses_short_client_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SERVICE_CLIENT_SECRETS: the secret of orders"):
        make_settings(
            "sqlite://",
            tmp_path,
            ENVIRONMENT="production",
            SECRET_KEY="k" * 40,
            AUTH_SIGNING_KEY="x",
            SERVICE_CLIENT_SECRETS="orders=short",
        )


def test_a_service_token_is_not_a_users_token(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    token = json_of(ask(client, basic("orders", development_secret(app, "orders"))))
    service = bearer(token["access_token"])
    for path in ("/api/v1/users/me", f"/api/v1/users/{customer.id}", "/api/v1/users"):
        response = client.get(path, headers=service)
        assert response.status_code == 403, path
        assert json_of(response)["type"] == "urn:flotilla:problem:wrong-principal"
    assert client.get("/api/v1/users/me", headers=customer.headers).status_code == 200
