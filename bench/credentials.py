"""The run's signing key and the access token every loaded request carries.

``GET /api/v1/users/{id}`` requires a signed-in user, so the benchmark signs in the way a
client does after a login: with a bearer token the users service verifies on each request
(EdDSA signature, issuer, audience, expiry) without a database round trip. The key is made
per run and given to the servers in ``AUTH_SIGNING_KEY``, so no key is written to disk and
none outlives the run; the one token is signed with it and stays valid longer than any run,
so the measurement never meets an expired token (the service's own tokens live 15 minutes,
which only the issuer enforces). The baseline ignores the header.
"""

from __future__ import annotations

from datetime import timedelta

from flotilla.auth import SigningKey, issue_access_token
from users.config import UsersSettings

TOKEN_LIFETIME = timedelta(days=1)
TOKEN_ROLES = ("customer",)
"""What a registered user holds: the least a token for ``GET /api/v1/users/{id}`` needs."""


def generate_signing_key() -> str:
    """A new Ed25519 private key as PEM, for ``AUTH_SIGNING_KEY``."""
    return SigningKey.generate().private_pem()


def issue_bench_token(settings: UsersSettings, user_id: int) -> str:
    """An access token for ``user_id`` that the servers configured with ``settings`` accept."""
    return issue_access_token(
        SigningKey.from_pem(settings.AUTH_SIGNING_KEY),
        subject=str(user_id),
        roles=TOKEN_ROLES,
        issuer=settings.AUTH_ISSUER,
        audience=settings.AUTH_AUDIENCE,
        lifetime=TOKEN_LIFETIME,
    )
