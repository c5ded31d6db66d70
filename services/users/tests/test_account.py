"""One's own account (/api/v1/users/me), password changes, and the admin command line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flotilla.data.columns import utc_now
from users.models import RefreshToken, User, db

from .conftest import PASSWORD, Account, access_token, bearer, json_of

NEW_PASSWORD = "a brand new passphrase"


def stored(app: Flask, user_id: int) -> User:
    """The account as the database holds it now."""
    with app.app_context():
        user = db.session().get(User, user_id)
    assert user is not None
    return user


def test_me_is_the_private_view_of_ones_account(client: FlaskClient, customer: Account) -> None:
    response = client.get("/api/v1/users/me", headers=customer.headers)
    assert response.status_code == 200
    body = json_of(response)
    assert body["id"] == customer.id
    assert body["email"] == customer.email
    assert body["roles"] == ["customer"]
    assert body["is_active"] is True
    assert "password" not in response.get_data(as_text=True)


def test_ones_account_is_never_stored_by_a_cache(client: FlaskClient, customer: Account) -> None:
    read = client.get("/api/v1/users/me", headers=customer.headers)
    changed = client.patch("/api/v1/users/me", json={}, headers=customer.headers)

    assert read.headers["Cache-Control"] == "no-store"
    assert changed.headers["Cache-Control"] == "no-store"


def test_patch_me_without_a_body_is_a_422_problem(client: FlaskClient, customer: Account) -> None:
    response = client.patch("/api/v1/users/me", headers=customer.headers)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_me_needs_a_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="users"'


def test_patch_me_changes_only_the_given_fields(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    response = client.patch(
        "/api/v1/users/me", json={"display_name": "Carol C."}, headers=customer.headers
    )
    assert response.status_code == 200
    assert json_of(response)["display_name"] == "Carol C."
    assert stored(app, customer.id).email == customer.email


def test_patch_me_stores_the_email_lower_cased(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    response = client.patch(
        "/api/v1/users/me", json={"email": "Carol.New@Example.COM"}, headers=customer.headers
    )
    assert response.status_code == 200
    assert stored(app, customer.id).email == "carol.new@example.com"


def test_patch_me_to_a_taken_email_is_409(
    app: Flask, client: FlaskClient, customer: Account, other_customer: Account
) -> None:
    response = client.patch(
        "/api/v1/users/me", json={"email": other_customer.email}, headers=customer.headers
    )
    assert response.status_code == 409
    assert json_of(response)["type"] == "urn:flotilla:problem:email-taken"
    assert stored(app, customer.id).email == customer.email


@pytest.mark.parametrize(
    "field",
    [
        {"roles": ["admin"]},
        {"id": 1},
        {"password_hash": "x"},
        {"is_active": False},
        {"username": "mallory"},
        {"display_name": "ok", "roles": ["admin"]},
    ],
)
def test_patch_me_refuses_fields_the_owner_does_not_own(
    app: Flask, client: FlaskClient, customer: Account, field: dict[str, Any]
) -> None:
    before = stored(app, customer.id)
    response = client.patch("/api/v1/users/me", json=field, headers=customer.headers)
    assert response.status_code == 422
    after = stored(app, customer.id)
    assert (after.roles, after.username, after.password_hash, after.is_active) == (
        before.roles,
        before.username,
        before.password_hash,
        before.is_active,
    )
    assert after.display_name == before.display_name


def change_password(client: FlaskClient, account: Account, current: str) -> Any:
    """PUT /api/v1/users/me/password."""
    return client.put(
        "/api/v1/users/me/password",
        json={"current_password": current, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )


def test_a_password_change_needs_the_current_password(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    response = change_password(client, customer, "not the password")
    assert response.status_code == 403
    assert json_of(response)["type"] == "urn:flotilla:problem:wrong-password"
    login = client.post("/api/v1/tokens", json={"login": customer.username, "password": PASSWORD})
    assert login.status_code == 200


def test_a_password_change_ends_every_session(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    credentials = {"login": customer.username, "password": PASSWORD}
    refresh_token = json_of(client.post("/api/v1/tokens", json=credentials))["refresh_token"]
    earlier = bearer(
        access_token(app, customer.id, customer.roles, now=utc_now() - timedelta(minutes=1))
    )

    assert change_password(client, customer, PASSWORD).status_code == 204

    refreshed = client.post("/api/v1/tokens/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 401
    with app.app_context():
        assert all(row.revoked_at for row in db.session().scalars(select(RefreshToken)))
    revoked = client.get("/api/v1/users/me", headers=earlier)
    assert revoked.status_code == 401
    assert "password change" in json_of(revoked)["detail"]
    assert client.post("/api/v1/tokens", json=credentials).status_code == 401
    new_login = {"login": customer.username, "password": NEW_PASSWORD}
    assert client.post("/api/v1/tokens", json=new_login).status_code == 200


def test_a_deactivated_accounts_token_is_refused_by_users(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    with app.app_context():
        db.session().get(User, customer.id).is_active = False  # type: ignore[union-attr]
        db.session().commit()
    assert client.get("/api/v1/users/me", headers=customer.headers).status_code == 401


def test_create_admin_makes_an_administrator(app: Flask, client: FlaskClient) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create-admin", "root", "--email", "root@example.com", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "created administrator root" in result.output
    login = client.post("/api/v1/tokens", json={"login": "root", "password": PASSWORD})
    token = json_of(login)["access_token"]
    listing = client.get("/api/v1/users", headers=bearer(token))
    assert listing.status_code == 200
    assert [user["roles"] for user in json_of(listing)["items"]] == [["customer", "admin"]]


def test_create_admin_refuses_a_taken_name_and_a_short_password(
    app: Flask, customer: Account
) -> None:
    runner = app.test_cli_runner()
    taken = ["users", "create-admin", customer.username, "--email", "x@example.com"]
    result = runner.invoke(args=[*taken, "--password-stdin"], input=f"{PASSWORD}\n")
    assert result.exit_code == 1
    assert "taken" in result.output
    short = ["users", "create-admin", "newroot", "--email", "n@example.com", "--password-stdin"]
    result = runner.invoke(args=short, input="short\n")
    assert result.exit_code == 1
    assert "8 to 128" in result.output


def test_grant_admin_promotes_an_existing_account(app: Flask, customer: Account) -> None:
    result = app.test_cli_runner().invoke(args=["users", "grant-admin", customer.username])
    assert result.exit_code == 0, result.output
    assert stored(app, customer.id).roles == ["customer", "admin"]
    again = app.test_cli_runner().invoke(args=["users", "grant-admin", customer.username])
    assert again.exit_code == 0
    assert stored(app, customer.id).roles == ["customer", "admin"]
    missing = app.test_cli_runner().invoke(args=["users", "grant-admin", "nobody"])
    assert missing.exit_code == 1


def test_a_nul_character_in_a_display_name_is_a_422_that_changes_nothing(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    response = client.patch(
        "/api/v1/users/me", json={"display_name": "a\x00"}, headers=customer.headers
    )
    assert response.status_code == 422
    assert stored(app, customer.id).display_name is None
