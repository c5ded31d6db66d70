"""Tokens assembled by hand, as an attacker would, rather than with PyJWT's encoder.

A test can then build exactly the header, claims and signature it wants the verifier to see,
including ones no honest issuer would produce; :func:`valid_claims` and :func:`header_for`
are the honest ones to start from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from flotilla.auth import SIGNING_ALGORITHM, SigningKey

ISSUER = "urn:flotilla:users"
AUDIENCE = "flotilla"


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def craft_token(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWS with exactly ``header`` and ``claims``, signed by ``sign``."""
    signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def hmac_signer(secret: bytes) -> Callable[[bytes], bytes]:
    """Signs like HS256 with ``secret``."""
    return lambda data: hmac.digest(secret, data, hashlib.sha256)


def ago(seconds: int) -> int:
    """The POSIX time ``seconds`` ago (negative: in the future)."""
    return int(datetime.now(UTC).timestamp()) - seconds


def valid_claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a good token issued now, with ``overrides`` (None removes a claim)."""
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "1",
        "iat": now,
        "exp": now + 900,
        "jti": "token-1",
        "roles": ["customer"],
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def header_for(key: SigningKey, **overrides: Any) -> dict[str, Any]:
    """The header of a good token signed with ``key``, with ``overrides`` (None removes)."""
    header: dict[str, Any] = {"alg": SIGNING_ALGORITHM, "typ": "at+jwt", "kid": key.kid}
    header.update(overrides)
    return {name: value for name, value in header.items() if value is not None}
