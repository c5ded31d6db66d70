"""Access tokens: short-lived JWTs that any service verifies without calling the issuer.

A token is an RFC 9068 style access token: header ``{"alg": "EdDSA", "typ": "at+jwt",
"kid": ...}`` and claims ``iss``, ``aud``, ``sub``, ``iat``, ``exp``, ``jti``, ``roles`` and
``sid`` (the login session, i.e. the refresh-token family, it was issued for).

Verification trusts nothing in the token before its signature is checked: the algorithm must
be on the allow list (so ``none`` and HMAC-with-a-public-key confusions are impossible), the
``kid`` must name a known key whose algorithm matches, and the issuer, audience and expiry
must match what the verifier was configured with.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt

from flotilla.auth.keys import SIGNING_ALGORITHM, SigningKey

TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp")


class InvalidToken(Exception):
    """The token must not be honoured; ``description`` says why, safe to show the caller."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class KeysUnavailable(Exception):
    """No verification keys could be obtained: the token may be fine, the verifier is not."""


class KeySource(Protocol):
    """Where a verifier finds the public key a token's ``kid`` names."""

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key with id ``kid``, or None when there is no such key."""
        ...


@dataclass(frozen=True)
class StaticKeys:
    """A fixed set of keys, e.g. from configuration or the issuer's own key ring."""

    keys: Mapping[str, jwt.PyJWK]

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The configured key with id ``kid``."""
        return self.keys.get(kid)


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: str
    roles: frozenset[str]
    token_id: str | None
    session_id: str | None
    issued_at: datetime
    expires_at: datetime
    claims: Mapping[str, Any] = field(repr=False)

    def has_any_role(self, roles: Collection[str]) -> bool:
        """True when no role is required or the principal holds one of ``roles``."""
        return not roles or not self.roles.isdisjoint(roles)


def issue_access_token(
    key: SigningKey,
    *,
    subject: str,
    roles: Collection[str],
    issuer: str,
    audience: str,
    lifetime: timedelta,
    session_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Sign an access token for ``subject`` valid for ``lifetime`` from ``now``."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
        "roles": sorted(roles),
    }
    if session_id is not None:
        claims["sid"] = session_id
    headers = {"kid": key.kid, "typ": TOKEN_TYPE}
    return jwt.encode(claims, key.private_key, algorithm=SIGNING_ALGORITHM, headers=headers)


_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidAudienceError, "The token is not meant for this service."),
    (jwt.InvalidIssuerError, "The token was issued by an unknown issuer."),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim."),
    (jwt.InvalidSignatureError, "The token signature is invalid."),
    (jwt.InvalidAlgorithmError, "The token is signed with an unexpected algorithm."),
)


class TokenVerifier:
    """Checks access tokens against keys from a :class:`KeySource`; no IO of its own."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Collection[str] = (SIGNING_ALGORITHM,),
        leeway: timedelta = timedelta(seconds=10),
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self._jwt = jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})

    def verify(self, token: str) -> Principal:
        """The principal ``token`` speaks for; raises :class:`InvalidToken` or KeysUnavailable."""
        algorithm, kid = self._check_header(token)
        key = self.keys.key_for(kid)
        if key is None:
            raise InvalidToken("The token is signed with an unknown key.")
        if key.algorithm_name != algorithm:  # older PyJWT would verify with the key's own
            raise InvalidToken("The token is signed with an unexpected algorithm.")
        claims = self._decode(token, key, algorithm)
        return _principal_from(claims)

    def _check_header(self, token: str) -> tuple[str, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The token is malformed.") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise InvalidToken("The token is signed with an unexpected algorithm.")
        if str(header.get("typ", "")).lower() not in (TOKEN_TYPE, f"application/{TOKEN_TYPE}"):
            raise InvalidToken("The token is not an access token.")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("The token names no key.")
        return algorithm, kid

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(_describe(error)) from None
        return claims


def _describe(error: jwt.PyJWTError) -> str:
    for kind, description in _FAILURES:
        if isinstance(error, kind):
            return description
    return "The token is malformed."


def _principal_from(claims: Mapping[str, Any]) -> Principal:
    subject, roles = claims["sub"], claims.get("roles", [])
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("The token's subject is malformed.")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken("The token's roles are malformed.")
    return Principal(
        user_id=subject,
        roles=frozenset(roles),
        token_id=_optional_str(claims.get("jti")),
        session_id=_optional_str(claims.get("sid")),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        claims=claims,
    )


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
