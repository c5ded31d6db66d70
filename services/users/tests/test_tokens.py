"""Logins, rotating refresh tokens and logout: POST/DELETE /api/v1/tokens, /tokens/refresh."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from flotilla.data.columns import utc_now
from users.keys import current_key_ring
from users.models import RefreshToken, User, db
from users.passwords import Passwords

from .conftest import PASSWORD, Account


def log_in(client: FlaskClient, login: str, password: str = PASSWORD) -> Any:
    """POST /api/v1/tokens."""
    return client.post("/api/v1/tokens", json={"login": login, "password": password})


def refresh(client: FlaskClient, refresh_token: str) -> Any:
    """POST /api/v1/tokens/refresh."""
    return client.post("/api/v1/tokens/refresh", json={"refresh_token": refresh_token})


def claims_of(app: Flask, token: str) -> dict[str, Any]:
    """The verified claims of an access token issued by ``app``."""
    settings = app.extensions["flotilla.settings"]
    with app.app_context():
        key = current_key_ring().signing.public_key
    decoded: dict[str, Any] = jwt.decode(
        token, key, algorithms=["EdDSA"], audience=settings.AUTH_AUDIENCE
    )
    return decoded


def refresh_rows(app: Flask) -> list[RefreshToken]:
    """Every stored refresh token."""
    with app.app_context():
        return list(db.session().scalars(select(RefreshToken).order_by(RefreshToken.id)))


def test_a_login_returns_an_eddsa_access_token_and_a_refresh_token(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    response = log_in(client, customer.username)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    header = jwt.get_unverified_header(body["access_token"])
    with app.app_context():
        assert header == {
            "alg": "EdDSA",
            "typ": "at+jwt",
            "kid": current_key_ring().signing.kid,
        }
    claims = claims_of(app, body["access_token"])
    assert claims["iss"] == "urn:flotilla:users"
    assert claims["aud"] == "flotilla"
    assert claims["sub"] == str(customer.id)
    assert claims["roles"] == ["customer"]
    assert claims["exp"] - claims["iat"] == 900
    assert len(body["refresh_token"]) >= 43  # 32 random bytes, base64url: 256 bits
    assert claims["email"] == customer.email  # the profile orders needs, without asking users


def test_a_new_access_token_carries_the_profile_as_it_is_now(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    first = log_in(client, customer.username).json
    assert "name" not in claims_of(app, first["access_token"])  # no display name yet
    changed = client.patch(
        "/api/v1/users/me",
        json={"display_name": "Carol C.", "email": "carol.c@example.com"},
        headers=customer.headers,
    )
    assert changed.status_code == 200
    renewed = refresh(client, first["refresh_token"]).json
    claims = claims_of(app, renewed["access_token"])
    assert (claims["email"], claims["name"]) == ("carol.c@example.com", "Carol C.")


def test_the_login_may_be_the_email_in_any_case(client: FlaskClient, customer: Account) -> None:
    assert log_in(client, customer.email.upper()).status_code == 200


def test_refresh_tokens_are_stored_only_as_sha256_digests(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    token = log_in(client, customer.username).json["refresh_token"]
    [row] = refresh_rows(app)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(value) for value in vars(row).values()}


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "inactive account"])
def test_every_failed_login_is_the_same_generic_401(
    app: Flask, client: FlaskClient, customer: Account, case: str
) -> None:
    login, password = customer.username, PASSWORD
    if case == "wrong password":
        password = "not the password"
    elif case == "unknown user":
        login = "nobody"
    else:
        with app.app_context():
            db.session().execute(update(User).values(is_active=False))
            db.session().commit()
    response = log_in(client, login, password)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert (body["type"], body["title"], body["detail"]) == (
        "urn:flotilla:problem:invalid-login",
        "Invalid Login",
        "The login or password is wrong.",
    )
    assert refresh_rows(app) == []


class CountingPasswords(Passwords):
    """Passwords that count how many hashes they check."""

    verified = 0

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Count, then check as usual."""
        CountingPasswords.verified += 1
        return super().verify(password_hash, password)


def test_an_unknown_user_costs_one_password_check_like_a_known_one(
    app: Flask, client: FlaskClient, customer: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingPasswords(app.extensions["flotilla.settings"])
    monkeypatch.setitem(app.extensions, "users.passwords", counting)
    for login in (customer.username, "nobody", customer.username):
        before = CountingPasswords.verified
        log_in(client, login, "not the password")
        assert CountingPasswords.verified == before + 1, login


def test_a_refresh_rotates_the_refresh_token(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    first = log_in(client, customer.username).json
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200
    assert second.headers["Cache-Control"] == "no-store"
    assert second.json["refresh_token"] != first["refresh_token"]
    assert (
        claims_of(app, second.json["access_token"])["sid"]
        == claims_of(app, first["access_token"])["sid"]
    )
    third = refresh(client, second.json["refresh_token"])
    assert third.status_code == 200


def test_reusing_a_used_refresh_token_revokes_the_whole_session(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    stolen = log_in(client, customer.username).json["refresh_token"]
    legitimate = refresh(client, stolen).json["refresh_token"]
    replay = refresh(client, stolen)
    assert replay.status_code == 401
    assert replay.json["type"] == "urn:flotilla:problem:invalid-refresh-token"
    assert refresh(client, legitimate).status_code == 401  # the family is gone
    assert all(row.revoked_at is not None for row in refresh_rows(app))
    assert log_in(client, customer.username).status_code == 200  # a new login still works


def test_other_sessions_survive_a_reuse_in_one(client: FlaskClient, customer: Account) -> None:
    phone = log_in(client, customer.username).json["refresh_token"]
    laptop = log_in(client, customer.username).json["refresh_token"]
    refresh(client, phone)
    refresh(client, phone)  # reuse: the phone's session is revoked
    assert refresh(client, laptop).status_code == 200


def test_concurrent_refreshes_with_one_token_let_at_most_one_through(
    app: Flask, customer: Account
) -> None:
    token = log_in(app.test_client(), customer.username).json["refresh_token"]
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def use() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(refresh(client, token).status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) <= 1
    assert sorted(set(statuses) - {200}) == [401]
    live = [row for row in refresh_rows(app) if row.revoked_at is None and row.used_at is None]
    assert len(live) <= 1


@pytest.mark.parametrize("column", ["expires_at", "session_expires_at"])
def test_an_expired_refresh_token_is_401(
    app: Flask, client: FlaskClient, customer: Account, column: str
) -> None:
    token = log_in(client, customer.username).json["refresh_token"]
    with app.app_context():
        past = utc_now() - timedelta(seconds=1)
        db.session().execute(update(RefreshToken).values({column: past}))
        db.session().commit()
    response = refresh(client, token)
    assert response.status_code == 401
    assert response.json["detail"] == "The refresh token has expired."


def test_a_refresh_never_outlives_the_session(
    app: Flask, make_account: Callable[..., Account]
) -> None:
    account = make_account("short")
    settings = app.extensions["flotilla.settings"]
    body = log_in(app.test_client(), account.username).json
    assert body["refresh_expires_in"] == min(
        settings.REFRESH_TOKEN_LIFETIME, settings.SESSION_MAX_AGE
    )
    [row] = refresh_rows(app)
    assert row.expires_at <= row.session_expires_at


@pytest.mark.parametrize("token", ["", "x" * 300])
def test_a_malformed_refresh_request_is_422(client: FlaskClient, token: str) -> None:
    assert refresh(client, token).status_code == 422


def test_an_unknown_refresh_token_is_401(client: FlaskClient) -> None:
    assert refresh(client, "never issued").status_code == 401


def test_logout_ends_the_session(app: Flask, client: FlaskClient, customer: Account) -> None:
    token = log_in(client, customer.username).json["refresh_token"]
    response = client.delete("/api/v1/tokens", json={"refresh_token": token})
    assert response.status_code == 204
    assert refresh(client, token).status_code == 401
    assert all(row.revoked_at is not None for row in refresh_rows(app))


def test_logging_out_an_unknown_token_is_204(client: FlaskClient) -> None:
    response = client.delete("/api/v1/tokens", json={"refresh_token": "never issued"})
    assert response.status_code == 204


def test_a_deactivated_account_cannot_refresh(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    token = log_in(client, customer.username).json["refresh_token"]
    with app.app_context():
        db.session().execute(update(User).values(is_active=False))
        db.session().commit()
    assert refresh(client, token).status_code == 401


def test_a_hash_made_with_older_costs_is_upgraded_at_login(
    app: Flask, client: FlaskClient, customer: Account
) -> None:
    with app.app_context():
        stored = db.session().scalar(select(User.password_hash))
    assert stored is not None
    assert "m=64," in stored
    cheaper = Passwords(
        app.extensions["flotilla.settings"].model_copy(update={"ARGON2_MEMORY_KIB": 32})
    )
    with app.app_context():
        db.session().execute(update(User).values(password_hash=cheaper.hash(PASSWORD)))
        db.session().commit()
    assert log_in(client, customer.username).status_code == 200
    with app.app_context():
        upgraded = db.session().scalar(select(User.password_hash))
    assert upgraded is not None
    assert "m=64," in upgraded


def test_a_nul_character_in_a_login_is_a_422_on_every_database(client: FlaskClient) -> None:
    response = client.post("/api/v1/tokens", json={"login": "a\x00b@x", "password": "x"})
    assert response.status_code == 422
