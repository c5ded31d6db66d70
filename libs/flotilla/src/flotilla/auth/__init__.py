"""Identity for services: access tokens every service verifies locally, and ``require_auth``.

The users service issues short-lived EdDSA-signed JWTs and publishes its public keys as a JWK
Set; every other service verifies tokens with those keys, cached, without calling users on
each request. See ``docs/auth.md`` for the token model and key rotation.
"""

from flotilla.auth.clients import (
    ClientRegistry,
    development_client_secret,
    parse_client_secrets,
)
from flotilla.auth.extension import (
    Auth,
    InsufficientRole,
    InvalidCredentials,
    VerificationUnavailable,
    WrongKindOfToken,
    current_principal,
    require_auth,
    require_service,
    token_rejected,
)
from flotilla.auth.jwks import JwksCache
from flotilla.auth.keys import (
    SIGNING_ALGORITHM,
    InvalidKey,
    SigningKey,
    jwks_document,
    load_public_keys,
    public_jwk,
    public_pem,
    verification_keys,
)
from flotilla.auth.roles import ADMIN, CUSTOMER, SERVICE
from flotilla.auth.tokens import (
    InvalidToken,
    KeySource,
    KeysUnavailable,
    NotAUser,
    Principal,
    StaticKeys,
    TokenVerifier,
    issue_access_token,
    parse_user_id,
)

__all__ = [
    "ADMIN",
    "CUSTOMER",
    "SERVICE",
    "SIGNING_ALGORITHM",
    "Auth",
    "ClientRegistry",
    "InsufficientRole",
    "InvalidCredentials",
    "InvalidKey",
    "InvalidToken",
    "JwksCache",
    "KeySource",
    "KeysUnavailable",
    "NotAUser",
    "Principal",
    "SigningKey",
    "StaticKeys",
    "TokenVerifier",
    "VerificationUnavailable",
    "WrongKindOfToken",
    "current_principal",
    "development_client_secret",
    "issue_access_token",
    "jwks_document",
    "load_public_keys",
    "parse_client_secrets",
    "parse_user_id",
    "public_jwk",
    "public_pem",
    "require_auth",
    "require_service",
    "token_rejected",
    "verification_keys",
]
