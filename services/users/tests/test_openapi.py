"""The OpenAPI document describes every endpoint, its inputs and its error responses."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def spec(client: FlaskClient) -> dict[str, Any]:
    """The service's OpenAPI document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json or {}
    return document


def test_every_users_operation_is_documented(client: FlaskClient) -> None:
    paths = spec(client)["paths"]
    assert set(paths["/api/v1/users"]) >= {"get", "post"}
    assert "get" in paths["/api/v1/users/{user_id}"]


def test_registration_documents_its_outcomes(client: FlaskClient) -> None:
    register = spec(client)["paths"]["/api/v1/users"]["post"]
    assert {"201", "409", "422"} <= set(register["responses"])
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/UserCreate")


def test_public_schema_has_no_private_fields(client: FlaskClient) -> None:
    public = spec(client)["components"]["schemas"]["UserPublic"]["properties"]
    assert set(public) == {"id", "username", "display_name", "created_at"}
    create = spec(client)["components"]["schemas"]["UserCreate"]["properties"]
    assert create["password"]["writeOnly"] is True
