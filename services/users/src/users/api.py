"""HTTP endpoints of the users service: parse, call one service function, return a schema."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from flotilla import (
    ADMIN,
    BIGINT_MAX,
    Blueprint,
    Page,
    PageQuery,
    ProblemSchema,
    accepts_any_body,
    current_principal,
    rate_limit,
    require_auth,
)
from users import clients, service, sessions
from users.keys import current_key_ring
from users.models import User
from users.schemas import (
    JsonWebKeySet,
    PasswordChange,
    ServiceTokenPublic,
    ServiceTokenRequest,
    TokenCreate,
    TokenPair,
    TokenRefresh,
    UserCreate,
    UserPrivate,
    UserPublic,
    UsersPrivate,
    UserUpdate,
)

users = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Accounts.")
tokens = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="Logins.")
service_tokens = Blueprint(
    "service_tokens",
    __name__,
    url_prefix="/api/v1/service-tokens",
    description="Services' own tokens, for their calls to each other; internal.",
)
well_known = Blueprint("well_known", __name__, url_prefix="/.well-known", description="Keys.")

USER_ID = f"<int(max={BIGINT_MAX}):user_id>"
NO_STORE = {"Cache-Control": "no-store"}  # RFC 6749 5.1: token responses are never cached


def login_account() -> str | None:
    """The account a login attempt is for, so attempts are counted per account."""
    body = request.get_json(silent=True)
    login = body.get("login") if isinstance(body, dict) else None
    return sessions.account_key(login) if isinstance(login, str) and login.strip() else None


def signed_in_user() -> str | None:
    """The id the request's verified token speaks for."""
    return current_principal().subject


@users.post("")
@rate_limit("REGISTER_RATE_LIMIT_PER_ADDRESS")
@users.arguments(UserCreate)
@users.response(201, UserPublic)
@users.alt_response(409, schema=ProblemSchema, description="Username or e-mail taken.")
def register_user(data: dict[str, Any]) -> tuple[User, dict[str, str]]:
    """Register an account."""
    user = service.register_user(**data)
    return user, {"Location": url_for("users.get_user", user_id=user.id)}


@users.get("/me")
@require_auth()
@users.response(200, UserPrivate)
def read_me() -> User:
    """Read one's own account."""
    return service.current_user()


@users.patch("/me")
@require_auth()
@users.arguments(UserUpdate)
@users.response(200, UserPrivate)
@users.alt_response(409, schema=ProblemSchema, description="E-mail taken.")
def update_me(changes: dict[str, Any]) -> User:
    """Change one's display name or e-mail address."""
    return service.update_me(changes)


@users.put("/me/password")
@require_auth()
@rate_limit("PASSWORD_RATE_LIMIT_PER_USER", key=signed_in_user)
@users.arguments(PasswordChange)
@users.response(204)
@users.alt_response(403, schema=ProblemSchema, description="Current password wrong.")
def change_password(data: dict[str, str]) -> None:
    """Change one's password; every session of the account ends."""
    service.change_password(**data)


@users.get(f"/{USER_ID}")
@require_auth()
@users.response(200, UserPublic)
@users.alt_response(404, schema=ProblemSchema, description="No such user.")
def get_user(user_id: int) -> User:
    """Read an account's public profile."""
    return service.get_user(user_id)


@users.get("")
@require_auth(roles=[ADMIN])
@users.arguments(PageQuery, location="query", as_kwargs=True)
@users.response(200, UsersPrivate)
def list_users(limit: int, cursor: str | None) -> Page[User]:
    """List accounts in registration order, one page at a time (administrators)."""
    return service.list_users(limit=limit, cursor=cursor)


@tokens.post("")
@rate_limit("LOGIN_RATE_LIMIT_PER_ADDRESS")
@rate_limit("LOGIN_RATE_LIMIT_PER_ACCOUNT", key=login_account)
@tokens.arguments(TokenCreate)
@tokens.response(200, TokenPair)
@tokens.alt_response(401, schema=ProblemSchema, description="Wrong login or password.")
def log_in(credentials: dict[str, str]) -> tuple[sessions.IssuedTokens, dict[str, str]]:
    """Log in: an access token and a refresh token."""
    return sessions.log_in(**credentials), NO_STORE


@tokens.post("/refresh")
@rate_limit("REFRESH_RATE_LIMIT_PER_ADDRESS")
@tokens.arguments(TokenRefresh)
@tokens.response(200, TokenPair)
@tokens.alt_response(401, schema=ProblemSchema, description="Refresh token not valid.")
def refresh(data: dict[str, str]) -> tuple[sessions.IssuedTokens, dict[str, str]]:
    """Trade a refresh token for a new pair; the old refresh token is used up."""
    return sessions.refresh(**data), NO_STORE


@tokens.delete("")
@tokens.arguments(TokenRefresh)
@tokens.response(204)
def log_out(data: dict[str, str]) -> None:
    """Log out: the refresh token's session ends (unknown tokens are ignored)."""
    sessions.log_out(**data)


@service_tokens.post("")
@accepts_any_body  # RFC 6749 takes the grant as a form
@rate_limit("SERVICE_TOKEN_RATE_LIMIT_PER_ADDRESS")
@clients.require_client
@service_tokens.arguments(ServiceTokenRequest, location="form")
@service_tokens.response(200, ServiceTokenPublic)
@service_tokens.alt_response(401, schema=ProblemSchema, description="Wrong client credentials.")
def issue_service_token(data: dict[str, str]) -> tuple[clients.ServiceToken, dict[str, str]]:
    """A token for a service itself, by its name and secret in HTTP Basic credentials."""
    return clients.issue_service_token(**data), NO_STORE


@well_known.get("/jwks.json")
@well_known.response(200, JsonWebKeySet)
def read_jwks() -> tuple[dict[str, Any], dict[str, str]]:
    """The public keys that verify access tokens (RFC 7517 JWK Set)."""
    return current_key_ring().jwks(), {"Cache-Control": "public, max-age=300"}
