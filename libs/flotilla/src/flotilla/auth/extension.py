"""``require_auth``: bearer-token protection for views, verified locally.

``Auth(app, settings)`` builds the app's :class:`TokenVerifier` from settings: keys from the
issuer's JWKS URL (fetched and cached) or from configured PEM public keys. The issuer itself
passes its own key ring as ``keys``. A protected view then needs one line::

    @blp.get("/me")
    @require_auth()
    def read_me(): ...

    @blp.get("")
    @require_auth(roles=["admin"])
    def list_users(): ...

    @blp.post("")
    @require_service("orders")  # only the orders service's own token
    def reserve_stock(): ...

Failures follow RFC 6750: 401 with ``WWW-Authenticate: Bearer ... error="invalid_token"`` for
a missing, malformed, expired or forged token, 403 with ``error="insufficient_scope"`` when
the token is good but lacks every required role. Both are problem+json like every error.
A service's own token (``client_id``) is refused by ``require_auth`` and a user's by
``require_service``, both with 403: neither can stand in for the other.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request

from flotilla.auth.jwks import JwksCache
from flotilla.auth.keys import load_public_keys, verification_keys
from flotilla.auth.tokens import (
    InvalidToken,
    KeySource,
    KeysUnavailable,
    Principal,
    StaticKeys,
    TokenVerifier,
)
from flotilla.config import AuthSettings, ConfigurationError
from flotilla.web import context
from flotilla.web.api import api_of, document_operation
from flotilla.web.errors import Forbidden, ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])

SECURITY_SCHEME = "bearerAuth"


class InvalidCredentials(Unauthorized):
    """The bearer token is missing or must not be honoured (401)."""

    code, title = "invalid-token", "Invalid Token"


class InsufficientRole(Forbidden):
    """The token is valid but holds none of the roles the endpoint requires (403)."""

    code, title = "insufficient-role", "Insufficient Role"


class WrongKindOfToken(Forbidden):
    """A service's token where a user's is needed, a user's or another service's where a
    particular service's is (403)."""

    code, title = "wrong-principal", "Not Allowed For This Caller"


class VerificationUnavailable(ServiceUnavailable):
    """The verification keys cannot be obtained; the token may well be valid (503)."""

    code, title = "verification-unavailable", "Token Verification Unavailable"


class Auth:
    """Token verification for an app; state in ``app.extensions["flotilla.auth"]``."""

    def __init__(
        self, app: Flask | None = None, settings: AuthSettings | None = None, **kwargs: Any
    ) -> None:
        self.verifier: TokenVerifier | None = None
        self.realm = "flotilla"
        if app is not None and settings is not None:
            self.init_app(app, settings, **kwargs)

    def init_app(
        self, app: Flask, settings: AuthSettings, *, keys: KeySource | None = None
    ) -> None:
        """Verify with ``keys``, else with the keys the settings point at."""
        source = keys or key_source_from(settings)
        if source is not None:
            self.verifier = TokenVerifier(
                source,
                issuer=settings.AUTH_ISSUER,
                audience=settings.AUTH_AUDIENCE,
                leeway=timedelta(seconds=settings.AUTH_LEEWAY_SECONDS),
                cache_size=settings.AUTH_TOKEN_CACHE_SIZE,
            )
        self.realm = app.import_name.partition(".")[0]
        app.extensions["flotilla.auth"] = self
        _declare_security_scheme(app)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization`` header value, or a 401/503 problem."""
        if self.verifier is None:
            raise VerificationUnavailable("Token verification is not configured.")
        token = self._bearer_token(authorization)
        try:
            return self.verifier.verify(token)
        except InvalidToken as error:
            raise self.rejection(error.description) from None
        except KeysUnavailable as error:
            log.warning("token keys unavailable", extra={"error": str(error)})
            raise VerificationUnavailable(
                "Token verification keys are unavailable.", headers={"Retry-After": "5"}
            ) from None

    def _bearer_token(self, authorization: str | None) -> str:
        if not authorization:
            raise self._unauthorized("A bearer token is required.", None)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
            raise self.rejection("The Authorization header is malformed.")
        return token.strip()

    def rejection(self, description: str) -> InvalidCredentials:
        """The 401 problem, with its challenge, for a token that must not be honoured."""
        return self._unauthorized(description, "invalid_token")

    def _unauthorized(self, description: str, error: str | None) -> InvalidCredentials:
        return InvalidCredentials(
            description, headers={"WWW-Authenticate": self.challenge(error, description)}
        )

    def challenge(self, error: str | None = None, description: str | None = None) -> str:
        """An RFC 6750 ``WWW-Authenticate`` value; no error code when no token was sent."""
        parts = [f'realm="{self.realm}"']
        if error:
            parts.append(f'error="{error}"')
        if error and description:
            parts.append(f'error_description="{description}"')
        return "Bearer " + ", ".join(parts)


def key_source_from(settings: AuthSettings) -> KeySource | None:
    """Keys from the JWKS URL, else from the configured PEM public keys, else None."""
    if settings.AUTH_JWKS_URL:
        return JwksCache(
            settings.AUTH_JWKS_URL,
            timeout=settings.AUTH_JWKS_TIMEOUT,
            max_age=settings.AUTH_JWKS_MAX_AGE,
            refetch_interval=settings.AUTH_JWKS_REFETCH_INTERVAL,
        )
    if settings.AUTH_PUBLIC_KEYS:
        try:
            return StaticKeys(verification_keys(load_public_keys(settings.AUTH_PUBLIC_KEYS)))
        except ValueError as error:
            raise ConfigurationError(f"AUTH_PUBLIC_KEYS: {error}") from None
    return None


def _declare_security_scheme(app: Flask) -> None:
    api = api_of(app)
    if api is not None and SECURITY_SCHEME not in api.spec.components.security_schemes:
        scheme = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        api.spec.components.security_scheme(SECURITY_SCHEME, scheme)


def require_auth(*, roles: Collection[str] = ()) -> Callable[[View], View]:
    """Let the view run only for a valid bearer token holding one of ``roles`` (any if empty).

    The principal is left in ``flask.g.principal`` (see :func:`current_principal`), its id in
    ``flask.g.user_id`` and in every log line of the request. The answer is one user's, so
    it says ``Cache-Control: no-store`` unless the view chose otherwise: no browser or
    shared cache keeps it for whoever uses the machine or the proxy next.
    """
    required = frozenset(roles)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def protected(*args: Any, **kwargs: Any) -> Response:
            _authorize(required)
            response = current_app.make_response(view(*args, **kwargs))
            if "Cache-Control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
            return response

        forbidden = "A service's token, or one without the required role."
        return cast(View, _document(protected, forbidden if required else "A service's token."))

    return decorator


def require_service(*clients: str) -> Callable[[View], View]:
    """Let the view run only for a service's own token, of one of the services ``clients``.

    For calls between services, never for people: a user's token, administrators' included,
    is refused with 403, as is the token of a service not named. The principal is in
    ``flask.g.principal`` as with :func:`require_auth`; its ``client_id`` names the caller.
    """
    allowed = frozenset(clients)
    if not allowed:
        raise ValueError("require_service needs the services it lets in")

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def protected(*args: Any, **kwargs: Any) -> Any:
            _authorize_service(allowed)
            return view(*args, **kwargs)

        return cast(View, _document(protected, "Not the token of a service allowed here."))

    return decorator


def _authorize_service(allowed: frozenset[str]) -> None:
    auth: Auth = current_app.extensions["flotilla.auth"]
    principal = auth.authenticate(request.headers.get("Authorization"))
    g.principal = principal
    if principal.client_id not in allowed:
        detail = f"Only these services may call this: {', '.join(sorted(allowed))}."
        raise WrongKindOfToken(
            detail, headers={"WWW-Authenticate": auth.challenge("insufficient_scope", detail)}
        )


def _authorize(required: frozenset[str]) -> None:
    auth: Auth = current_app.extensions["flotilla.auth"]
    principal = auth.authenticate(request.headers.get("Authorization"))
    if principal.client_id is not None:  # its subject is a service's name, not a user's id
        detail = "This takes a user's token, not a service's."
        raise WrongKindOfToken(
            detail, headers={"WWW-Authenticate": auth.challenge("insufficient_scope", detail)}
        )
    g.principal = principal
    g.user_id = user_id = principal.user_id
    context.set_user_id(user_id)
    if not principal.has_any_role(required):
        detail = f"This requires one of the roles: {', '.join(sorted(required))}."
        raise InsufficientRole(
            detail, headers={"WWW-Authenticate": auth.challenge("insufficient_scope", detail)}
        )


def _document(view: Callable[..., Any], forbidden: str) -> Callable[..., Any]:
    problems = {401: "No valid bearer token.", 403: forbidden}
    return document_operation(view, problems=problems, security=[{SECURITY_SCHEME: []}])


def token_rejected(description: str) -> InvalidCredentials:
    """A 401 for a token that verified but must not act, e.g. issued before a revocation."""
    auth: Auth = current_app.extensions["flotilla.auth"]
    return auth.rejection(description)


def current_principal() -> Principal:
    """The principal of the current request; only inside a view under :func:`require_auth`."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise RuntimeError("current_principal() outside a view protected by require_auth()")
    return principal
