"""Settings of token verification, shared by every service that protects an endpoint."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class AuthSettings(BaseSettings):
    """How a service verifies access tokens: whose, for whom, and with which keys."""

    AUTH_ISSUER: str = Field(
        "urn:flotilla:users", description="The `iss` every accepted access token must carry."
    )
    AUTH_AUDIENCE: str = Field(
        "flotilla", description="The `aud` every accepted access token must carry."
    )
    AUTH_JWKS_URL: str = Field(
        "", description="The issuer's JWKS URL; keys are fetched from it and cached."
    )
    AUTH_PUBLIC_KEYS: str = Field(
        "", description="PEM public keys to verify with instead of fetching AUTH_JWKS_URL."
    )
    AUTH_LEEWAY_SECONDS: int = Field(
        10, ge=0, le=300, description="Clock skew tolerated on a token's `exp` and `iat`."
    )
    AUTH_JWKS_MAX_AGE: float = Field(
        300.0, gt=0, description="Seconds fetched keys are used before they are fetched again."
    )
    AUTH_JWKS_TIMEOUT: float = Field(
        2.0, gt=0, description="Seconds a JWKS fetch may take; on failure the last keys serve."
    )
    AUTH_JWKS_REFETCH_INTERVAL: float = Field(
        10.0, ge=0, description="Least seconds between fetches caused by an unknown `kid`."
    )
    AUTH_TOKEN_CACHE_SIZE: int = Field(
        4096,
        ge=0,
        description="Verified tokens each worker keeps (LRU) so reuse skips the signature; 0: off.",
    )
