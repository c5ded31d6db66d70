"""GET /api/v1/users/{id} (signed-in users) and the paginated list (administrators)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from .conftest import Account


def create(client: FlaskClient, name: str) -> dict[str, Any]:
    """Register ``name`` and return the response body."""
    response = client.post(
        "/api/v1/users",
        json={"username": name, "email": f"{name}@example.com", "password": "long enough"},
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json or {}
    return body


def test_a_user_is_read_by_id_without_private_fields(
    client: FlaskClient, customer: Account
) -> None:
    created = create(client, "bob")
    response = client.get(f"/api/v1/users/{created['id']}", headers=customer.headers)
    assert response.status_code == 200
    assert response.json == created
    assert set(created) == {"id", "username", "display_name", "created_at"}
    assert "example.com" not in response.get_data(as_text=True)


def test_reading_a_user_needs_a_token(client: FlaskClient) -> None:
    created = create(client, "bob")
    response = client.get(f"/api/v1/users/{created['id']}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_an_absent_user_is_a_404_problem(client: FlaskClient, customer: Account) -> None:
    response = client.get("/api/v1/users/424242", headers=customer.headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["type"] == "urn:flotilla:problem:user-not-found"


def test_an_id_beyond_bigint_is_404_not_500(client: FlaskClient, customer: Account) -> None:
    for user_id in ("99999999999999999999", "-1"):
        response = client.get(f"/api/v1/users/{user_id}", headers=customer.headers)
        assert response.status_code == 404


def test_pages_cover_every_user_once_in_order(client: FlaskClient, admin: Account) -> None:
    names = [f"user{index:02}" for index in range(7)]
    for name in names:
        create(client, name)
    seen: list[str] = []  # the administrator comes first
    cursor: str | None = None
    for _page in range(10):
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/api/v1/users{query}", headers=admin.headers).json
        assert body is not None
        assert len(body["items"]) <= 3
        seen += [item["username"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["ada", *names]


def test_a_page_that_fits_has_no_next_cursor(client: FlaskClient, admin: Account) -> None:
    body = client.get("/api/v1/users?limit=1", headers=admin.headers).json
    assert body is not None
    assert [item["username"] for item in body["items"]] == ["ada"]
    assert body["next_cursor"] is None


def test_the_default_page_is_20(client: FlaskClient, admin: Account) -> None:
    for index in range(20):
        create(client, f"many{index:02}")
    body = client.get("/api/v1/users", headers=admin.headers).json
    assert body is not None
    assert len(body["items"]) == 20
    assert body["next_cursor"]


def test_limits_outside_1_to_100_are_422(client: FlaskClient, admin: Account) -> None:
    for limit in ("0", "101", "-5", "ten"):
        response = client.get(f"/api/v1/users?limit={limit}", headers=admin.headers)
        assert response.status_code == 422, limit
        assert response.json is not None
        assert response.json["errors"][0]["field"] == "limit"


def test_a_forged_cursor_is_400(client: FlaskClient, admin: Account) -> None:
    for cursor in ("garbage", "WyJ4Il0"):  # not base64 JSON; a list holding a string
        response = client.get(f"/api/v1/users?cursor={cursor}", headers=admin.headers)
        assert response.status_code == 400
        assert response.json is not None
        assert response.json["type"] == "urn:flotilla:problem:invalid-cursor"
