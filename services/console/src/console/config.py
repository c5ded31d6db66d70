"""Settings of the console service: the chassis settings under its own name."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from flotilla import ServiceSettings


class ConsoleSettings(ServiceSettings):
    """Environment variables read by the console service."""

    SERVICE_NAME: str = Field(
        "console",
        description="Name used in logs, metrics and the API title.",
    )

    @model_validator(mode="after")
    def _require_token_keys_in_production(self) -> Self:
        # Without keys every signed-in request would be a 503; say so at start-up instead.
        if self.is_production and not (self.AUTH_JWKS_URL or self.AUTH_PUBLIC_KEYS.strip()):
            raise ValueError("AUTH_JWKS_URL or AUTH_PUBLIC_KEYS must be set in production")
        return self
