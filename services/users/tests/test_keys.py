"""The JWKS endpoint, key rotation without downtime, and where the signing key comes from."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from flask import Flask

from flotilla.auth import SigningKey, public_pem
from flotilla.config import ConfigurationError
from flotilla.data.migrations import upgrade
from users import create_app, service

from .conftest import access_token, bearer, json_of, make_settings


def sqlite_app(directory: Path, **overrides: str) -> Flask:
    """A users app on an SQLite file in ``directory``, migrated."""
    app = create_app(make_settings(f"sqlite:///{directory / 'users.db'}", directory, **overrides))
    upgrade(app)
    return app


def test_the_jwks_publishes_the_signing_key(app: Flask) -> None:
    response = app.test_client().get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    [key] = json_of(response)["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in key  # never the private part


def test_rotation_keeps_old_tokens_valid_until_the_retired_key_is_dropped(
    tmp_path: Path,
) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    before = sqlite_app(tmp_path, AUTH_SIGNING_KEY=old.private_pem())
    with before.app_context():
        user = service.register_user(username="rita", email="r@example.com", password="x" * 8)
    old_token = bearer(access_token(before, user.id, ("customer",)))

    after = sqlite_app(
        tmp_path, AUTH_SIGNING_KEY=new.private_pem(), AUTH_RETIRED_KEYS=public_pem(old.public_key)
    )
    kids = [
        key["kid"] for key in json_of(after.test_client().get("/.well-known/jwks.json"))["keys"]
    ]
    assert kids == [new.kid, old.kid]  # the active key first
    assert after.test_client().get("/api/v1/users/me", headers=old_token).status_code == 200
    new_token = bearer(access_token(after, user.id, ("customer",)))
    assert after.test_client().get("/api/v1/users/me", headers=new_token).status_code == 200

    dropped = sqlite_app(tmp_path, AUTH_SIGNING_KEY=new.private_pem())
    refused = dropped.test_client().get("/api/v1/users/me", headers=old_token)
    assert refused.status_code == 401
    assert json_of(refused)["detail"] == "The token is signed with an unknown key."


def test_the_development_key_is_made_once_and_shared(tmp_path: Path) -> None:
    first, second = sqlite_app(tmp_path), sqlite_app(tmp_path)
    key_file = tmp_path / "keys" / "users-signing-key.pem"
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    jwks = [json_of(app.test_client().get("/.well-known/jwks.json")) for app in (first, second)]
    assert jwks[0] == jwks[1]


def test_production_refuses_to_start_without_a_signing_key(tmp_path: Path) -> None:
    production = {"ENVIRONMENT": "production"}
    with pytest.raises(ValueError, match="AUTH_SIGNING_KEY must be set in production"):
        make_settings("postgresql://db/users", tmp_path, **production)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AUTH_SIGNING_KEY", "not a key"),
        ("AUTH_SIGNING_KEY", public_pem(SigningKey.generate().public_key)),
        ("AUTH_RETIRED_KEYS", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
    ],
)
def test_an_unreadable_key_stops_start_up_naming_the_setting(
    tmp_path: Path, setting: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        create_app(make_settings(f"sqlite:///{tmp_path / 'u.db'}", tmp_path, **{setting: value}))


def test_escaped_newlines_in_the_key_setting_are_accepted(tmp_path: Path) -> None:
    key = SigningKey.generate()
    escaped = key.private_pem().replace("\n", "\\n")
    app = sqlite_app(tmp_path, AUTH_SIGNING_KEY=escaped)
    [published] = json_of(app.test_client().get("/.well-known/jwks.json"))["keys"]
    assert published["kid"] == key.kid


def test_next_keys_are_published_before_they_sign(tmp_path: Path) -> None:
    current, upcoming, retired = (SigningKey.generate() for _ in range(3))
    app = sqlite_app(
        tmp_path,
        AUTH_SIGNING_KEY=current.private_pem(),
        AUTH_NEXT_KEYS=public_pem(upcoming.public_key),
        AUTH_RETIRED_KEYS=public_pem(retired.public_key),
    )
    kids = [key["kid"] for key in json_of(app.test_client().get("/.well-known/jwks.json"))["keys"]]
    assert kids == [current.kid, upcoming.kid, retired.kid]
    header = jwt.get_unverified_header(access_token(app, 1, ("customer",)))
    assert header["kid"] == current.kid
