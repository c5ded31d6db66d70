"""Tokens assembled by hand, as an attacker would, rather than with PyJWT's encoder.

A test can then build exactly the header, claims and signature it wants the verifier to see,
including ones no honest issuer would produce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson


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
