"""``require_auth`` on a real service: 401/403/503 problems, ``flask.g``, logs, OpenAPI, rotation.

The app comes from ``create_service`` with a flask-smorest blueprint, as a service would build
it; keys come from ``AUTH_PUBLIC_KEYS`` or from a real JWKS server on 127.0.0.1. The command
that generates signing keys is run as a subprocess at the end.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask
import jwt
import orjson
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from flask_smorest import Blueprint
from werkzeug.test import TestResponse

from flotilla import ServiceSettings, create_service
from flotilla.auth import (
    SigningKey,
    current_principal,
    issue_access_token,
    jwks_document,
    load_public_keys,
    public_pem,
    require_auth,
    require_service,
)
from flotilla.config import ConfigurationError
from flotilla.testing import capture_logs
from flotilla.web.api import register_blueprints
from flotilla.web.errors import PROBLEM_MEDIA_TYPE

from .forgery import ago, craft_token, hmac_signer
from .jwks_server import JwksServer, serving

ISSUER = "urn:flotilla:users"  # the AUTH_ISSUER and AUTH_AUDIENCE defaults
AUDIENCE = "flotilla"
REALM = "chassis_auth"


def build_auth_app(tmp_path: Path, **settings: Any) -> Flask:
    """A service with an open route, a route for any user and one for admins."""
    app = create_service(
        REALM, ServiceSettings(SERVICE_NAME="auth-sample", VAR_DIR=tmp_path, **settings)
    )
    blp = Blueprint("things", __name__, url_prefix="/things", description="Things.")

    def read_open() -> dict[str, str]:
        """Read what anyone may read."""
        return {"status": "open"}

    @require_auth()
    def read_me() -> dict[str, Any]:
        """Read who the token speaks for."""
        return {"user_id": g.user_id, "roles": sorted(current_principal().roles)}

    @require_auth(roles=["admin", "auditor"])
    def read_audit() -> dict[str, str]:
        """Read what only admins and auditors may read."""
        return {"status": "secret"}

    @require_service("orders", "billing")
    def read_stock() -> dict[str, Any]:
        """Read what only the orders and billing services may read."""
        return {"client_id": current_principal().client_id}

    # Registered by calls, not decorators: flask-smorest is untyped, and mypy --strict refuses
    # untyped decorators outside ``*.api`` modules. The order is the same as stacked decorators.
    blp.get("/open")(read_open)
    blp.get("/me")(read_me)
    blp.get("/audit")(read_audit)
    blp.get("/stock")(read_stock)
    register_blueprints(app, blp)
    return app


@pytest.fixture
def signing_key() -> SigningKey:
    """The issuer's key, trusted by ``app``."""
    return SigningKey.generate()


@pytest.fixture
def app(tmp_path: Path, signing_key: SigningKey) -> Flask:
    """A service verifying with ``signing_key``'s public half from AUTH_PUBLIC_KEYS."""
    return build_auth_app(tmp_path, AUTH_PUBLIC_KEYS=public_pem(signing_key.public_key))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


def access_token(key: SigningKey, *, roles: tuple[str, ...] = ("customer",)) -> str:
    """A good access token for user-1 signed with ``key``."""
    return issue_access_token(
        key,
        subject="1",
        roles=roles,
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=timedelta(minutes=15),
    )


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header presenting ``token``."""
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Check the common problem shape and return the body."""
    assert response.status_code == status
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = orjson.loads(response.data)
    assert body["status"] == status
    assert body["type"] == f"urn:flotilla:problem:{code}"
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


# Forged and faulty tokens, assembled by hand as an attacker would


def forge(
    key: SigningKey,
    *,
    signer: SigningKey | None = None,
    header: Mapping[str, Any] | None = None,
    sign: Callable[[bytes], bytes] | None = None,
    **claims: Any,
) -> str:
    """A token naming ``key`` but signed by ``signer`` or ``sign``, with changed parts."""
    now = int(datetime.now(UTC).timestamp())
    full_header = {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    full_claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "intruder",
        "iat": now,
        "exp": now + 900,
        "roles": ["admin"],
        **claims,
    }
    full_header = {name: value for name, value in full_header.items() if value is not None}
    sign = sign or (signer or key).private_key.sign
    return craft_token(full_header, full_claims, sign)


def hs256_with_public_key(key: SigningKey) -> str:
    """Algorithm confusion: HS256 keyed with the public PEM the verifier trusts."""
    secret = public_pem(key.public_key).encode("ascii")
    return forge(key, header={"alg": "HS256"}, sign=hmac_signer(secret))


TokenFactory = Callable[[SigningKey], str]

BAD_TOKENS: list[tuple[str, TokenFactory, str]] = [
    (
        "same-kid-other-key",
        lambda key: forge(key, signer=SigningKey.generate()),
        "The token signature is invalid.",
    ),
    (
        "unknown-key",
        lambda _: forge(SigningKey.generate()),
        "The token is signed with an unknown key.",
    ),
    (
        "alg-none",
        lambda key: forge(key, header={"alg": "none"}, sign=lambda _: b""),
        "The token is signed with an unexpected algorithm.",
    ),
    (
        "hs256-with-public-key",
        hs256_with_public_key,
        "The token is signed with an unexpected algorithm.",
    ),
    ("expired", lambda key: forge(key, iat=ago(3600), exp=ago(2700)), "The token has expired."),
    (
        "iat-far-in-the-future",
        lambda key: forge(key, iat=ago(-86_400), exp=ago(-87_300)),
        "The token is not valid yet.",
    ),
    (
        "wrong-aud",
        lambda key: forge(key, aud="billing"),
        "The token is not meant for this service.",
    ),
    (
        "wrong-iss",
        lambda key: forge(key, iss="urn:evil:users"),
        "The token was issued by an unknown issuer.",
    ),
    (
        "wrong-typ",
        lambda key: forge(key, header={"typ": "JWT"}),
        "The token is not an access token.",
    ),
    ("kid-missing", lambda key: forge(key, header={"kid": None}), "The token names no key."),
    ("garbage", lambda _: "garbage", "The token is malformed."),
    ("three-garbage-parts", lambda _: "a.b.c", "The token is malformed."),
]


@pytest.mark.parametrize(
    ("make_token", "detail"),
    [(make_token, detail) for _, make_token, detail in BAD_TOKENS],
    ids=[name for name, _, _ in BAD_TOKENS],
)
def test_a_bad_token_is_a_401_problem_with_a_bearer_challenge(
    client: FlaskClient, signing_key: SigningKey, make_token: TokenFactory, detail: str
) -> None:
    with capture_logs() as logs:
        response = client.get("/things/me", headers=bearer(make_token(signing_key)))
    body = assert_problem(response, 401, "invalid-token")
    assert body["detail"] == detail
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{REALM}", error="invalid_token", error_description="{detail}"'
    )
    assert all("user_id" not in record for record in logs)  # unverified claims stay out


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "Token abc", "Bearer\tabc"],
)
def test_a_malformed_authorization_header_is_a_401_problem(
    client: FlaskClient, authorization: str
) -> None:
    response = client.get("/things/me", headers={"Authorization": authorization})
    body = assert_problem(response, 401, "invalid-token")
    assert body["detail"] == "The Authorization header is malformed."
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{REALM}", error="invalid_token", '
        'error_description="The Authorization header is malformed."'
    )


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}], ids=["absent", "empty"])
def test_a_request_without_a_token_is_challenged_without_an_error_code(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get("/things/me", headers=headers)
    body = assert_problem(response, 401, "invalid-token")
    assert body["detail"] == "A bearer token is required."
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}"'


def test_a_valid_token_reaches_the_view_with_the_principal_in_g(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    with client:
        response = client.get("/things/me", headers=bearer(access_token(signing_key)))
        assert response.status_code == 200
        assert response.json == {"user_id": 1, "roles": ["customer"]}
        assert flask.g.user_id == 1
        assert flask.g.principal.user_id == 1
        assert flask.g.principal.roles == frozenset({"customer"})


def test_the_scheme_name_is_case_insensitive(client: FlaskClient, signing_key: SigningKey) -> None:
    headers = {"Authorization": f"bEARER {access_token(signing_key)}"}
    assert client.get("/things/me", headers=headers).status_code == 200


def test_the_user_id_is_in_every_log_line_of_the_request(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    with capture_logs() as logs:
        client.get(
            "/things/me", headers={**bearer(access_token(signing_key)), "X-Request-ID": "r1"}
        )
    (line,) = [record for record in logs if record["message"] == "request finished"]
    assert line["request_id"] == "r1"
    assert line["user_id"] == "1"
    assert line["status"] == 200


def test_a_token_without_the_role_is_a_403_problem_naming_the_user_in_the_logs(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    with capture_logs() as logs:
        response = client.get("/things/audit", headers=bearer(access_token(signing_key)))
    body = assert_problem(response, 403, "insufficient-role")
    assert body["detail"] == "This requires one of the roles: admin, auditor."
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{REALM}", error="insufficient_scope"')
    (line,) = [record for record in logs if record["message"] == "request finished"]
    assert line["user_id"] == "1"
    assert line["status"] == 403


@pytest.mark.parametrize("roles", [("admin",), ("auditor", "customer")])
def test_a_token_with_one_of_the_roles_is_let_through(
    client: FlaskClient, signing_key: SigningKey, roles: tuple[str, ...]
) -> None:
    response = client.get("/things/audit", headers=bearer(access_token(signing_key, roles=roles)))
    assert response.status_code == 200
    assert response.json == {"status": "secret"}


def test_an_open_route_needs_no_token(client: FlaskClient) -> None:
    assert client.get("/things/open").json == {"status": "open"}


def test_current_principal_outside_a_protected_view_is_a_programming_error(app: Flask) -> None:
    with app.test_request_context("/things/open"), pytest.raises(RuntimeError, match="outside"):
        current_principal()


def test_the_openapi_document_declares_the_scheme_and_each_protected_operation(
    client: FlaskClient,
) -> None:
    spec: dict[str, Any] = client.get("/openapi.json").json  # type: ignore[assignment]
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert "Problem" in spec["components"]["schemas"]
    paths = spec["paths"]
    me, audit, open_ = (paths[f"/things/{name}"]["get"] for name in ("me", "audit", "open"))
    assert me["summary"] == "Read who the token speaks for."
    for operation in (me, audit):
        assert operation["security"] == [{"bearerAuth": []}]
        problem = operation["responses"]["401"]["content"][PROBLEM_MEDIA_TYPE]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}
    assert me["responses"]["403"]["description"] == "A service's token."
    assert "403" in audit["responses"]
    stock = paths["/things/stock"]["get"]
    assert stock["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(stock["responses"])
    assert "security" not in open_
    assert "401" not in open_["responses"]


# Services' own tokens: only where a service is named, never where a user is expected


def service_token(key: SigningKey, client_id: str) -> str:
    """A service's own token, as users issues it for the client credentials grant."""
    return issue_access_token(
        key,
        subject=client_id,
        roles=("service",),
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=timedelta(minutes=5),
        client_id=client_id,
    )


def test_a_named_service_is_let_in(client: FlaskClient, signing_key: SigningKey) -> None:
    for name in ("orders", "billing"):
        response = client.get("/things/stock", headers=bearer(service_token(signing_key, name)))
        assert response.json == {"client_id": name}


def test_users_and_other_services_are_refused_where_a_service_is_named(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    assert_problem(client.get("/things/stock"), 401, "invalid-token")
    for token in (
        access_token(signing_key),
        access_token(signing_key, roles=("admin", "service")),  # a role is not an identity
        service_token(signing_key, "notifications"),
    ):
        response = client.get("/things/stock", headers=bearer(token))
        body = assert_problem(response, 403, "wrong-principal")
        assert "orders" in body["detail"]
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_a_service_token_is_refused_where_a_user_is_expected(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    # Its subject is a service's name: a view would take "orders" for a user id.
    for path in ("/things/me", "/things/audit"):
        response = client.get(path, headers=bearer(service_token(signing_key, "orders")))
        assert_problem(response, 403, "wrong-principal")


def test_a_profile_cannot_smuggle_a_client_id_into_a_users_token(signing_key: SigningKey) -> None:
    token = issue_access_token(
        signing_key,
        subject="7",
        roles=("customer",),
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=timedelta(minutes=5),
        profile={"email": "a@example.com", "client_id": "orders"},
    )
    assert "client_id" not in jwt.decode(token, options={"verify_signature": False})


def test_a_malformed_client_id_claim_is_refused(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    for client_id in (5, "", ["orders"]):
        token = forge(signing_key, client_id=client_id)
        assert_problem(client.get("/things/me", headers=bearer(token)), 401, "invalid-token")


def test_require_service_must_name_a_service() -> None:
    with pytest.raises(ValueError, match="services"):
        require_service()


# Keys unavailable: the service is at fault, not the token


def test_unconfigured_verification_is_a_503_problem(tmp_path: Path) -> None:
    client = build_auth_app(tmp_path).test_client()
    response = client.get("/things/me", headers=bearer(access_token(SigningKey.generate())))
    body = assert_problem(response, 503, "verification-unavailable")
    assert body["detail"] == "Token verification is not configured."
    assert "WWW-Authenticate" not in response.headers


def test_unreadable_public_keys_stop_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="AUTH_PUBLIC_KEYS"):
        build_auth_app(tmp_path, AUTH_PUBLIC_KEYS="not a key")


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> Iterator[JwksServer]:
    """A real HTTP server publishing ``signing_key``, running in a thread."""
    with serving(jwks_document([signing_key.public_key])) as server:
        yield server


def test_an_unreachable_jwks_at_first_use_is_a_503_not_a_401(
    tmp_path: Path, silent_url: str, signing_key: SigningKey
) -> None:
    app = build_auth_app(tmp_path, AUTH_JWKS_URL=silent_url, AUTH_JWKS_TIMEOUT=0.2)
    with capture_logs() as logs:
        response = app.test_client().get("/things/me", headers=bearer(access_token(signing_key)))
    body = assert_problem(response, 503, "verification-unavailable")
    assert body["detail"] == "Token verification keys are unavailable."
    assert response.headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in response.headers
    assert any(record["message"] == "token keys unavailable" for record in logs)


def test_a_rotated_key_is_picked_up_without_a_restart(
    tmp_path: Path, jwks_server: JwksServer, signing_key: SigningKey
) -> None:
    app = build_auth_app(tmp_path, AUTH_JWKS_URL=jwks_server.url, AUTH_JWKS_REFETCH_INTERVAL=0)
    client = app.test_client()
    retired_token = access_token(signing_key)
    assert client.get("/things/me", headers=bearer(retired_token)).status_code == 200
    assert jwks_server.requests == 1

    new_key = SigningKey.generate()
    jwks_server.publish(new_key, signing_key)
    response = client.get("/things/me", headers=bearer(access_token(new_key)))
    assert response.status_code == 200
    assert jwks_server.requests == 2  # refetched once for the new kid

    assert client.get("/things/me", headers=bearer(retired_token)).status_code == 200
    assert jwks_server.requests == 2  # the retired key, still published, is still cached


def test_a_token_by_a_key_the_issuer_never_published_is_401_after_a_refetch(
    tmp_path: Path, jwks_server: JwksServer, signing_key: SigningKey
) -> None:
    app = build_auth_app(tmp_path, AUTH_JWKS_URL=jwks_server.url)
    client = app.test_client()
    assert client.get("/things/me", headers=bearer(access_token(signing_key))).status_code == 200
    response = client.get("/things/me", headers=bearer(access_token(SigningKey.generate())))
    body = assert_problem(response, 401, "invalid-token")
    assert body["detail"] == "The token is signed with an unknown key."


# The command that generates signing keys


def test_generate_key_prints_a_private_pem_and_its_kid(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flotilla.auth", "generate-key"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    key = SigningKey.from_pem(result.stdout)
    assert result.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE KEY" not in result.stderr  # the secret goes to stdout only
    assert f"kid: {key.kid}\n" in result.stderr
    (public_key,) = load_public_keys(result.stderr)
    assert public_pem(public_key) == public_pem(key.public_key)


def test_an_answer_for_a_signed_in_caller_is_never_stored(
    client: FlaskClient, signing_key: SigningKey
) -> None:
    response = client.get("/things/me", headers=bearer(access_token(signing_key)))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_an_answer_for_anyone_keeps_its_own_caching(client: FlaskClient) -> None:
    assert "Cache-Control" not in client.get("/things/open").headers
