"""Signing keys and their public halves as JSON Web Keys (RFC 7517).

Tokens are signed with Ed25519 (JWS ``alg`` "EdDSA"): small keys, fast verification, and no
nonce to get wrong. A key's id (``kid``) is its RFC 7638 thumbprint, so the same key has the
same id everywhere and nobody has to invent or keep names in sync.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK

SIGNING_ALGORITHM = "EdDSA"
"""The JWS algorithm of every token Flotilla issues."""

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class InvalidKey(ValueError):
    """A key could not be read: not PEM, not Ed25519, or malformed."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 thumbprint of ``public_key``: its stable, derived ``kid``."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public_bytes(public_key))}
    canonical = orjson.dumps(members, option=orjson.OPT_SORT_KEYS)
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """``public_key`` as a JWK a verifier can use: with ``kid``, ``alg`` and ``use``."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(_raw_public_bytes(public_key)),
        "kid": key_id(public_key),
        "alg": SIGNING_ALGORITHM,
        "use": "sig",
    }


def jwks_document(public_keys: Iterable[Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set (``{"keys": [...]}``) publishing ``public_keys``."""
    return {"keys": [public_jwk(key) for key in public_keys]}


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key and the ``kid`` tokens signed with it carry."""

    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key."""
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        """Wrap ``private_key``, deriving its ``kid``."""
        return cls(private_key, key_id(private_key.public_key()))

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        """Read a PKCS#8 PEM private key (as printed by ``python -m flotilla.auth``)."""
        try:
            private_key = serialization.load_pem_private_key(_unescape(pem).encode(), None)
        except (ValueError, TypeError) as error:
            raise InvalidKey(f"not a PEM private key: {error}") from None
        if not isinstance(private_key, Ed25519PrivateKey):
            raise InvalidKey("the signing key must be an Ed25519 key")
        return cls.from_private_key(private_key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The half verifiers need."""
        return self.private_key.public_key()

    def private_pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM, for a secret store."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")


def public_pem(public_key: Ed25519PublicKey) -> str:
    """``public_key`` as SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_keys(text: str) -> list[Ed25519PublicKey]:
    """Every key in ``text``, a run of PEM blocks; a private key counts as its public half.

    Environment variables often carry PEM with escaped newlines (``\\n``); both forms work.
    """
    keys = [_public_key_of(match.group(0)) for match in _PEM_BLOCK.finditer(_unescape(text))]
    if text.strip() and not keys:
        raise InvalidKey("no PEM block found")
    return keys


def _public_key_of(block: str) -> Ed25519PublicKey:
    loaded: Any
    try:
        if "PRIVATE KEY" in block:
            loaded = serialization.load_pem_private_key(block.encode(), None).public_key()
        else:
            loaded = serialization.load_pem_public_key(block.encode())
    except (ValueError, TypeError) as error:
        raise InvalidKey(f"unreadable PEM block: {error}") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise InvalidKey("verification keys must be Ed25519 keys")
    return loaded


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").strip()


def verification_keys(public_keys: Sequence[Ed25519PublicKey]) -> dict[str, PyJWK]:
    """``public_keys`` by ``kid``, ready for :class:`flotilla.auth.TokenVerifier`."""
    return {key_id(key): PyJWK(public_jwk(key)) for key in public_keys}
