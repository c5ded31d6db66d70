"""Settings of the catalog service: the chassis settings plus how long product reads are cached."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from flotilla import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Environment variables read by the catalog service."""

    SERVICE_NAME: str = Field(
        "catalog", description="Name used in logs, metrics and the API title."
    )
    PRODUCT_CACHE_TTL: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Seconds a product read is cached (Redis, else per worker); writes drop it.",
    )

    @model_validator(mode="after")
    def _require_token_keys_in_production(self) -> Self:
        # Without keys every administrator request would be a 503; say so at start-up instead.
        if self.is_production and not (self.AUTH_JWKS_URL or self.AUTH_PUBLIC_KEYS.strip()):
            raise ValueError("AUTH_JWKS_URL or AUTH_PUBLIC_KEYS must be set in production")
        return self
