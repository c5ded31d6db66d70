"""Settings of the users service: the chassis settings plus hashing, tokens and limits."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from flotilla import (
    MINIMUM_SECRET_LENGTH,
    PLACEHOLDER_SECRETS,
    RateLimitString,
    ServiceSettings,
    parse_client_secrets,
)


class UsersSettings(ServiceSettings):
    """Environment variables read by the users service."""

    SERVICE_NAME: str = Field("users", description="Name used in logs, metrics and the API title.")
    ARGON2_TIME_COST: int = Field(2, ge=1, description="Argon2id passes over memory per hash.")
    ARGON2_MEMORY_KIB: int = Field(
        19_456, ge=8, description="Argon2id memory per hash in KiB (OWASP: 19 MiB)."
    )
    ARGON2_PARALLELISM: int = Field(1, ge=1, description="Argon2id lanes per hash.")
    AUTH_SIGNING_KEY: str = Field(
        "",
        description="Ed25519 PEM private key signing access tokens; empty: a key under VAR_DIR "
        "(development only).",
        repr=False,
    )
    AUTH_RETIRED_KEYS: str = Field(
        "",
        description="PEM public keys of previous signing keys, still published and accepted.",
    )
    AUTH_NEXT_KEYS: str = Field(
        "",
        description="PEM public keys published ahead of signing, so verifiers have them first.",
    )
    ACCESS_TOKEN_LIFETIME: int = Field(
        900, ge=60, le=3600, description="Seconds an access token is valid."
    )
    REFRESH_TOKEN_LIFETIME: int = Field(
        1_209_600, ge=300, description="Seconds an unused refresh token is valid (14 days)."
    )
    SESSION_MAX_AGE: int = Field(
        2_592_000, ge=300, description="Seconds a login lasts however often it refreshes (30 days)."
    )
    SERVICE_CLIENT_SECRETS: str = Field(
        "",
        description="Services that may get a token of their own: comma-separated name=secret "
        "(orders=...); empty: each name's secret derived under VAR_DIR (development only).",
        repr=False,
    )
    SERVICE_TOKEN_LIFETIME: int = Field(
        300, ge=60, le=3600, description="Seconds a service's own access token is valid."
    )
    SERVICE_TOKEN_RATE_LIMIT_PER_ADDRESS: RateLimitString = Field(
        "60/minute", description="Service token requests allowed per client address."
    )
    LOGIN_RATE_LIMIT_PER_ACCOUNT: RateLimitString = Field(
        "5/minute;20/hour", description="Login attempts allowed per account, by any of its names."
    )
    LOGIN_RATE_LIMIT_PER_ADDRESS: RateLimitString = Field(
        "20/minute;200/hour", description="Login attempts allowed per client address."
    )
    REFRESH_RATE_LIMIT_PER_ADDRESS: RateLimitString = Field(
        "60/minute", description="Token refreshes allowed per client address."
    )
    REGISTER_RATE_LIMIT_PER_ADDRESS: RateLimitString = Field(
        "10/minute;100/hour", description="Registrations allowed per client address."
    )
    PASSWORD_RATE_LIMIT_PER_USER: RateLimitString = Field(
        "5/minute", description="Password change attempts allowed per account."
    )

    @model_validator(mode="after")
    def _require_signing_key_in_production(self) -> Self:
        if self.is_production and not self.AUTH_SIGNING_KEY.strip():
            raise ValueError("AUTH_SIGNING_KEY must be set in production")
        return self

    @model_validator(mode="after")
    def _check_client_secrets(self) -> Self:
        try:
            clients = parse_client_secrets(self.SERVICE_CLIENT_SECRETS)
        except ValueError as error:
            raise ValueError(f"SERVICE_CLIENT_SECRETS: {error}") from None
        weak = [
            name
            for name, secret in clients.items()
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MINIMUM_SECRET_LENGTH
        ]
        if self.is_production and weak:
            raise ValueError(
                f"SERVICE_CLIENT_SECRETS: the secret of {', '.join(weak)} must be a random "
                f"value of {MINIMUM_SECRET_LENGTH}+ characters"
            )
        return self
