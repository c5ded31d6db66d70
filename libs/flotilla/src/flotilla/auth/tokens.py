"""Access tokens: short-lived JWTs that any service verifies without calling the issuer.

A token is an RFC 9068 style access token: header ``{"alg": "EdDSA", "typ": "at+jwt",
"kid": ...}`` and claims ``iss``, ``aud``, ``sub``, ``iat``, ``exp``, ``jti``, ``roles`` and
``sid`` (the login session, i.e. the refresh-token family, it was issued for). A token a
service holds for itself (OAuth 2.0 client credentials) has ``client_id`` (RFC 9068) instead
of ``sid``: its ``sub`` is the service's name, not a user's id, and only views that take a
service (``require_service``) honour it. A user's token has the user's integer id as ``sub``,
a string as JWT requires; it is read as an integer once, when the token is verified.

Verification trusts nothing in the token before its signature is checked: the algorithm must
be on the allow list (so ``none`` and HMAC-with-a-public-key confusions are impossible), the
``kid`` must name a known key whose algorithm matches, and the issuer, audience and expiry
must match what the verifier was configured with. A verifier may remember the tokens it has
verified, so that a client reusing its token does not pay for the signature again; see
:class:`TokenVerifier` for what a remembered token must still satisfy.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

import jwt
from jwt.utils import base64url_decode

from flotilla.auth.cache import LruCache
from flotilla.auth.keys import SIGNING_ALGORITHM, SigningKey
from flotilla.data.columns import BIGINT_MAX

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


class NotAUser(Exception):
    """A service's token was asked for a user's id; it acts for a service, not a person."""


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for: a user, or with ``client_id`` a service."""

    subject: str
    """The token's ``sub`` as sent: a user's id in decimal, or a service's name."""
    roles: frozenset[str]
    token_id: str | None
    session_id: str | None
    issued_at: datetime
    expires_at: datetime
    claims: Mapping[str, Any] = field(repr=False)
    client_id: str | None = None
    """The service this token speaks for, when it is a service's own; None for a user's."""
    _user_id: int | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.client_id is None:  # a user's token: convert its subject once, here
            object.__setattr__(self, "_user_id", parse_user_id(self.subject))

    @property
    def user_id(self) -> int:
        """The user's id; :class:`NotAUser` for a service's token, which has none."""
        if self._user_id is None:
            raise NotAUser(f"the token of service {self.client_id!r} speaks for no user")
        return self._user_id

    def has_any_role(self, roles: Collection[str]) -> bool:
        """True when no role is required or the principal holds one of ``roles``."""
        return not roles or not self.roles.isdisjoint(roles)


def parse_user_id(subject: str) -> int:
    """The user id a token's ``sub`` holds: decimal digits, 1 to BIGINT; ValueError if not."""
    if not (subject.isascii() and subject.isdigit()) or subject.startswith("0"):
        raise ValueError(f"not a user id: {subject[:32]!r}")
    user_id = int(subject)
    if user_id > BIGINT_MAX:
        raise ValueError(f"not a user id: {subject[:32]!r}")
    return user_id


def issue_access_token(
    key: SigningKey,
    *,
    subject: str,
    roles: Collection[str],
    issuer: str,
    audience: str,
    lifetime: timedelta,
    session_id: str | None = None,
    profile: Mapping[str, str] | None = None,
    client_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Sign an access token for ``subject`` valid for ``lifetime`` from ``now``.

    ``profile`` adds claims about the person, which other services would otherwise have to
    ask the issuer for (OpenID Connect's ``email`` and ``name``); it never replaces the
    token's own claims (``sub``, ``exp``, ``roles`` and the rest). ``client_id`` makes it a
    service's token; a profile can never carry one in.
    """
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims: dict[str, Any] = {**(profile or {})}
    claims.pop("client_id", None)
    claims |= {
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
    if client_id is not None:
        claims["client_id"] = client_id
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


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token that passed full verification, and what a later use of it must re-check."""

    principal: Principal
    kid: str
    key: jwt.PyJWK  # the very object the signature was checked with
    not_before: float  # POSIX seconds from which it is honoured, leeway included
    expires: float  # POSIX seconds from which it no longer is, leeway included


class TokenVerifier:
    """Checks access tokens against keys from a :class:`KeySource`; no IO of its own.

    With ``cache_size`` above 0 the verifier remembers up to that many verified tokens, least
    recently used first out, so a client that sends the same token on every request until it
    expires pays for the Ed25519 check and the claim checks once. What makes that safe:

    * Only a token that passed every check is remembered, under its exact string, and the
      answer for it is the :class:`Principal` full verification produced. A rejected token is
      never remembered, so nobody can plant a failure that a good token would later meet, and
      a string differing from a remembered one in a single character — another signature,
      altered claims under the same header — is verified from scratch.
    * Every use re-checks what can change after verification. Time: ``exp`` with the same
      leeway as full verification (``iat`` and ``nbf`` too, in case the clock is set back).
      Key: the key source must still give, for the token's ``kid``, the very key object that
      verified it, so a key dropped from the source (say after a leak) stops its tokens on
      their next use, remembered or not. A token failing either check is forgotten and
      verified from scratch: refused if it expired or lost its key, remembered again if its
      key was merely refetched (a new object for the same key costs one full verification).
    * Nothing else about a token can change: its claims are covered by the signature, and the
      issuer, audience, algorithms and leeway are fixed when the verifier is made.

    The lock around the cache covers a few dictionary operations, never a verification, so
    Gunicorn's gthread workers do not queue behind each other. A token may be verified by two
    threads at once the first time it is seen; both get the same answer. ``clock`` gives the
    POSIX time for the re-checks (PyJWT reads the system clock for full verification).
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Collection[str] = (SIGNING_ALGORITHM,),
        leeway: timedelta = timedelta(seconds=10),
        cache_size: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self._jwt = jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})
        self._verified: LruCache[str, _Verified] = LruCache(cache_size)
        self._clock = clock

    @property
    def cache_size(self) -> int:
        """How many verified tokens it remembers at most; 0 when it remembers none."""
        return self._verified.max_size

    def verify(self, token: str) -> Principal:
        """The principal ``token`` speaks for; raises :class:`InvalidToken` or KeysUnavailable."""
        principal = self._remembered(token)
        if principal is not None:
            return principal
        verified = self._verify_fully(token)
        self._verified.put(token, verified)
        return verified.principal

    def _remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before whose time and key still hold, or None."""
        verified = self._verified.get(token)
        if verified is None:
            return None
        if (
            verified.not_before <= self._clock() < verified.expires
            and self.keys.key_for(verified.kid) is verified.key
        ):
            return verified.principal
        self._verified.discard(token, verified)
        return None

    def _verify_fully(self, token: str) -> _Verified:
        algorithm, kid = self._check_header(token)
        key = self.keys.key_for(kid)
        if key is None:
            raise InvalidToken("The token is signed with an unknown key.")
        if key.algorithm_name != algorithm:  # older PyJWT would verify with the key's own
            raise InvalidToken("The token is signed with an unexpected algorithm.")
        claims = self._decode(token, key, algorithm)
        principal = _principal_from(claims)
        # PyJWT has checked that these are numbers and truncates them the same way.
        leeway = self.leeway.total_seconds()
        issued, not_before = int(claims["iat"]), int(claims.get("nbf", claims["iat"]))
        return _Verified(
            principal,
            kid,
            key,
            not_before=max(issued, not_before) - leeway,
            expires=int(claims["exp"]) + leeway,
        )

    def _check_header(self, token: str) -> tuple[str, str]:
        header = _read_header(token)
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


def _read_header(token: str) -> dict[str, Any]:
    """The token's JOSE header, decoded only far enough to choose the key.

    ``jwt.get_unverified_header`` would decode the payload and signature as well, which PyJWT
    does again when it verifies. Reading the header here is not trusting it: PyJWT decodes the
    same bytes strictly while verifying and rejects the token if they are not canonical
    base64url, checks ``alg`` against the key, and nothing here is believed unless the
    signature then holds.
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken("The token is malformed.")
    try:
        header = json.loads(base64url_decode(segments[0]))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeError are ValueErrors
        raise InvalidToken("The token is malformed.") from None
    if not isinstance(header, dict):
        raise InvalidToken("The token is malformed.")
    return header


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
    client_id = claims.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not client_id):
        raise InvalidToken("The token's client is malformed.")  # never read as a user's
    issued_at = datetime.fromtimestamp(claims["iat"], UTC)
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    try:
        return Principal(
            subject=subject,
            roles=frozenset(roles),
            token_id=_optional_str(claims.get("jti")),
            session_id=_optional_str(claims.get("sid")),
            issued_at=issued_at,
            expires_at=expires_at,
            claims=MappingProxyType(claims),  # read-only: one remembered serves many requests
            client_id=client_id,
        )
    except ValueError:  # from parse_user_id alone: a user's token not naming a user id
        raise InvalidToken("The token's subject is malformed.") from None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
