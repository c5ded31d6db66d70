"""Tokens for services themselves: OAuth 2.0's client credentials grant (RFC 6749 4.4).

A service that calls another as itself (orders reserving stock in catalog) asks here for a
token with its name and client secret, sent as HTTP Basic credentials. The token is an
access token like a user's — same key, issuer and audience, verified the same way by every
service — with ``client_id`` naming the service, ``sub`` the same name, the role
``service``, no session and no profile, and a lifetime of ``SERVICE_TOKEN_LIFETIME``. The
chassis refuses it wherever a user's token is required and accepts it only on views marked
``require_service(<name>)``. Like a user's access token it cannot be revoked before it
expires; changing the client's secret stops it from getting another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from flask import current_app, g, request

from flotilla import (
    SERVICE,
    ClientRegistry,
    Unauthorized,
    ValidationFailed,
    current_settings,
    issue_access_token,
    parse_client_secrets,
)
from users.config import UsersSettings
from users.keys import current_key_ring

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])

GRANT_TYPE = "client_credentials"


class InvalidClient(Unauthorized):
    """No client credentials, an unknown client or a wrong secret; never saying which (401)."""

    code, title = "invalid-client", "Invalid Client"


class UnsupportedGrantType(ValidationFailed):
    """A grant other than client credentials (422)."""

    code, title = "unsupported-grant-type", "Unsupported Grant Type"


@dataclass(frozen=True)
class ServiceToken:
    """What the token endpoint answers (RFC 6749 5.1); there is no refresh token."""

    access_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret


def client_registry(settings: UsersSettings) -> ClientRegistry:
    """The services that may get tokens: configured, or any name in development."""
    development = None if settings.is_production else settings.VAR_DIR
    return ClientRegistry(
        parse_client_secrets(settings.SERVICE_CLIENT_SECRETS), development_dir=development
    )


def require_client(view: View) -> View:
    """Let ``view`` run only for a known service's HTTP Basic credentials (else 401).

    Checked before the form is read, so a caller without credentials learns nothing about
    what the endpoint takes; the service's name is left in ``flask.g.client_id``.
    """

    @functools.wraps(view)
    def authenticated(*args: Any, **kwargs: Any) -> Any:
        client_id, secret = _basic_credentials(request.headers.get("Authorization"))
        registry: ClientRegistry = current_app.extensions["users.clients"]
        if not registry.authenticate(client_id, secret):
            log.warning("service token refused", extra={"client_id": client_id[:64]})
            raise _invalid_client()
        g.client_id = client_id
        return view(*args, **kwargs)

    return cast(View, authenticated)


def issue_service_token(*, grant_type: str) -> ServiceToken:
    """A token for the service :func:`require_client` let in."""
    if grant_type != GRANT_TYPE:
        raise UnsupportedGrantType(f"Only grant_type={GRANT_TYPE} is served here.")
    client_id: str = g.client_id
    settings = current_settings(UsersSettings)
    token = issue_access_token(
        current_key_ring().signing,
        subject=client_id,
        roles=[SERVICE],
        issuer=settings.AUTH_ISSUER,
        audience=settings.AUTH_AUDIENCE,
        lifetime=timedelta(seconds=settings.SERVICE_TOKEN_LIFETIME),
        client_id=client_id,
    )
    log.info("service token issued", extra={"client_id": client_id})
    return ServiceToken(token, settings.SERVICE_TOKEN_LIFETIME)


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    """Client id and secret from ``Basic base64(id:secret)``, each form-urlencoded first."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client() from None
    client_id, separator, secret = decoded.partition(":")
    if not separator or not client_id:
        raise _invalid_client()
    return unquote(client_id), unquote(secret)


def _invalid_client() -> InvalidClient:
    return InvalidClient(
        "The client credentials are missing or wrong.",
        headers={"WWW-Authenticate": 'Basic realm="users"'},
    )
