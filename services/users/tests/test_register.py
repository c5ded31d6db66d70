"""POST /api/v1/users: registration, its validation and its conflicts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from users.models import User, db

ALICE = {"username": "alice", "email": "Alice@Example.COM", "password": "correct horse"}


def register(client: FlaskClient, **changes: Any) -> Any:
    """POST a registration of ALICE with ``changes`` applied."""
    return client.post("/api/v1/users", json={**ALICE, **changes})


def count_users(app: Flask) -> int:
    """How many accounts exist."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User)) or 0


def stored(app: Flask, username: str) -> User:
    """The stored row of ``username``."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        assert user is not None
        return user


def test_register_returns_the_public_profile_and_its_location(client: FlaskClient) -> None:
    response = register(client, display_name="Alice A.")
    assert response.status_code == 201
    body = response.json
    assert body is not None
    assert response.headers["Location"] == f"/api/v1/users/{body['id']}"
    assert set(body) == {"id", "username", "display_name", "created_at"}
    assert body["username"] == "alice"
    assert body["display_name"] == "Alice A."
    assert body["created_at"].endswith("+00:00")


def test_the_password_is_stored_only_as_an_argon2id_hash(app: Flask, client: FlaskClient) -> None:
    register(client)
    user = stored(app, "alice")
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, "correct horse")


def test_the_email_is_stored_lower_cased(app: Flask, client: FlaskClient) -> None:
    register(client)
    assert stored(app, "alice").email == "alice@example.com"


def test_a_new_account_is_an_active_customer(app: Flask, client: FlaskClient) -> None:
    register(client)
    user = stored(app, "alice")
    assert user.roles == ["customer"]
    assert user.is_active


def test_a_taken_username_is_409(app: Flask, client: FlaskClient) -> None:
    register(client)
    response = register(client, email="other@example.com")
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["type"] == "urn:flotilla:problem:username-taken"
    assert count_users(app) == 1


def test_a_taken_email_in_any_case_is_409(app: Flask, client: FlaskClient) -> None:
    register(client)
    response = register(client, username="alice2", email="ALICE@example.com")
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["type"] == "urn:flotilla:problem:email-taken"
    assert count_users(app) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "al"),
        ("username", "a" * 33),
        ("username", "Alice"),
        ("username", "alice smith"),
        ("username", "älice"),
        ("email", "not-an-address"),
        ("email", "a@" + "b" * 250 + ".com"),
        ("password", "short"),
        ("password", "x" * 129),
        ("display_name", ""),
    ],
)
def test_invalid_fields_are_422_and_change_nothing(
    app: Flask, client: FlaskClient, field: str, value: str
) -> None:
    response = register(client, **{field: value})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert {error["field"] for error in response.json["errors"]} == {field}
    assert count_users(app) == 0


def test_every_invalid_field_is_listed(client: FlaskClient) -> None:
    response = client.post("/api/v1/users", json={"username": "x", "password": "y"})
    assert response.status_code == 422
    assert response.json is not None
    fields = {error["field"] for error in response.json["errors"]}
    assert fields == {"username", "email", "password"}


@pytest.mark.parametrize("field", ["id", "roles", "password_hash", "is_active"])
def test_fields_the_client_does_not_own_are_refused(
    app: Flask, client: FlaskClient, field: str
) -> None:
    response = register(client, **{field: ["admin"]})
    assert response.status_code == 422
    assert count_users(app) == 0


def test_malformed_json_is_400(app: Flask, client: FlaskClient) -> None:
    response = client.post("/api/v1/users", data=b'{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert count_users(app) == 0


def test_a_form_body_is_415(app: Flask, client: FlaskClient) -> None:
    response = client.post("/api/v1/users", data={"username": "alice"})
    assert response.status_code == 415
    assert count_users(app) == 0


def test_a_huge_body_is_413(app: Flask, client: FlaskClient) -> None:
    response = register(client, display_name="x" * 2_000_000)
    assert response.status_code == 413
    assert count_users(app) == 0


def test_concurrent_registrations_of_one_name_create_one_account(app: Flask) -> None:
    def attempt(index: int) -> int:
        client = app.test_client()
        return int(register(client, email=f"alice{index}@example.com").status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [201] + [409] * 7
    assert count_users(app) == 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(username=st.text(max_size=40), email=st.text(max_size=40), password=st.text(max_size=40))
def test_any_input_is_accepted_or_refused_never_a_crash(
    client: FlaskClient, username: str, email: str, password: str
) -> None:
    response = register(client, username=username, email=email, password=password)
    assert response.status_code in {201, 409, 422}


def test_a_username_with_a_trailing_newline_is_refused(app: Flask, client: FlaskClient) -> None:
    assert register(client, username="alice\n").status_code == 422
    assert count_users(app) == 0
