"""The issuer's key ring: the key that signs access tokens and the retired keys still honoured.

Rotation without downtime (docs/auth.md): publish the new key's public half in
``AUTH_NEXT_KEYS`` and wait until every verifier's cached JWKS has it; then sign with it
(``AUTH_SIGNING_KEY``) and keep the old key's public half in ``AUTH_RETIRED_KEYS`` until the
last token it signed has expired.

Without ``AUTH_SIGNING_KEY`` (development only; production refuses to start) a key is made
once and kept under ``VAR_DIR``, so every Gunicorn worker and every restart signs with the
same key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import current_app

from flotilla import (
    ConfigurationError,
    InvalidKey,
    SigningKey,
    StaticKeys,
    jwks_document,
    load_public_keys,
    verification_keys,
)
from users.config import UsersSettings

log = logging.getLogger(__name__)

DEVELOPMENT_KEY_FILE = "keys/users-signing-key.pem"


@dataclass(frozen=True)
class KeyRing:
    """The active signing key, the keys that will sign next and those that signed before."""

    signing: SigningKey
    retired: tuple[Ed25519PublicKey, ...] = ()
    upcoming: tuple[Ed25519PublicKey, ...] = ()

    @property
    def public_keys(self) -> list[Ed25519PublicKey]:
        """Every key a token may be verified with: the active one, then upcoming, then retired."""
        keys = [self.signing.public_key]
        for key in (*self.upcoming, *self.retired):
            if key not in keys:
                keys.append(key)
        return keys

    def jwks(self) -> dict[str, Any]:
        """The JWK Set published at ``/.well-known/jwks.json``."""
        return jwks_document(self.public_keys)

    def key_source(self) -> StaticKeys:
        """The keys the issuer verifies its own tokens with: no fetch from itself."""
        return StaticKeys(verification_keys(self.public_keys))


def load_key_ring(settings: UsersSettings) -> KeyRing:
    """The key ring the settings describe; a bad key stops start-up naming the variable."""
    retired = _public_keys(settings, "AUTH_RETIRED_KEYS")
    upcoming = _public_keys(settings, "AUTH_NEXT_KEYS")
    if not settings.AUTH_SIGNING_KEY.strip():
        signing = _development_key(settings.VAR_DIR / DEVELOPMENT_KEY_FILE)
        return KeyRing(signing, retired, upcoming)
    try:
        return KeyRing(SigningKey.from_pem(settings.AUTH_SIGNING_KEY), retired, upcoming)
    except InvalidKey as error:
        raise ConfigurationError(f"AUTH_SIGNING_KEY: {error}") from None


def _public_keys(settings: UsersSettings, name: str) -> tuple[Ed25519PublicKey, ...]:
    try:
        return tuple(load_public_keys(getattr(settings, name)))
    except InvalidKey as error:
        raise ConfigurationError(f"{name}: {error}") from None


def _development_key(path: Path) -> SigningKey:
    """The key kept at ``path``, created on first use; concurrent workers agree on one."""
    with contextlib.suppress(FileNotFoundError):
        return SigningKey.from_pem(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-")
    try:
        with os.fdopen(descriptor, "w") as file:  # mkstemp creates it readable by us only
            file.write(key.private_pem())
        os.link(temporary, path)  # fails if another process linked its key first
        log.warning("development signing key created", extra={"path": str(path)})
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
    return SigningKey.from_pem(path.read_text())


def current_key_ring() -> KeyRing:
    """The key ring of the current app."""
    ring: KeyRing = current_app.extensions["users.key_ring"]
    return ring
