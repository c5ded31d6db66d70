"""Settings of the console: where the services answer, and how its sessions are kept."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from flotilla import PLACEHOLDER_SECRETS, ServiceSettings, comma_separated

MINIMUM_SECRET_KEY_LENGTH = 32


class ConsoleSettings(ServiceSettings):
    """Environment variables read by the console service."""

    SERVICE_NAME: str = Field(
        "console",
        description="Name used in logs, metrics and the API title.",
    )
    USERS_URL: str = Field(
        "http://127.0.0.1:8001",
        description="Base URL of the users service: logins, token refresh, logouts.",
    )
    CATALOG_URL: str = Field(
        "http://127.0.0.1:8002",
        description="Base URL of the catalog service: products and their stock.",
    )
    ORDERS_URL: str = Field(
        "http://127.0.0.1:8003",
        description="Base URL of the orders service: orders and their history.",
    )
    STATUS_PROGRAMS: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Background processes on the status page, as comma-separated "
        "name=metrics URL pairs (users-relay=http://127.0.0.1:8011/metrics).",
    )
    DEAD_LETTER_SERVICES: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["notifications"],
        description="Comma-separated services whose task dead letters the console shows and "
        "replays, on BROKER_URL.",
    )
    PROMETHEUS_URL: str = Field(
        "",
        description="Prometheus the charts query; empty: the console samples the services' "
        "own /metrics while someone watches.",
    )
    SECRET_KEY: str = Field(
        "",
        description="Signs the session cookie and the forms' CSRF tokens; empty: a key under "
        "VAR_DIR (development only).",
        repr=False,
    )
    SECRET_KEY_FALLBACKS: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated earlier SECRET_KEYs, still accepted while a rotation "
        "runs: sessions signed with them stay signed in.",
        repr=False,
    )
    SESSION_COOKIE_SECURE: bool = Field(
        True,
        description="Send the session cookie over HTTPS only, named __Host-console; off "
        "(plain HTTP, development only) it is named console.",
    )
    SESSION_IDLE_TIMEOUT: int = Field(
        1800, ge=1, description="Seconds without a request after which a session ends."
    )
    SESSION_ABSOLUTE_TIMEOUT: int = Field(
        28_800, ge=1, description="Seconds after sign-in after which a session ends anyway."
    )

    @field_validator("STATUS_PROGRAMS", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        pairs: list[str] = comma_separated(value)
        if not all("=" in pair for pair in pairs):
            raise ValueError("must be comma-separated name=URL pairs")
        return dict(pair.split("=", 1) for pair in pairs)

    @field_validator("DEAD_LETTER_SERVICES", "SECRET_KEY_FALLBACKS", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return comma_separated(value)

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Self:
        if not self.is_production:
            return self
        if not (self.AUTH_JWKS_URL or self.AUTH_PUBLIC_KEYS.strip()):
            raise ValueError("AUTH_JWKS_URL or AUTH_PUBLIC_KEYS must be set in production")
        key = self.SECRET_KEY
        if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < MINIMUM_SECRET_KEY_LENGTH:
            raise ValueError("SECRET_KEY must be set to a random value of 32+ characters")
        if not self.SESSION_COOKIE_SECURE:
            raise ValueError("SESSION_COOKIE_SECURE must stay on in production")
        if not self.REDIS_URL:
            raise ValueError("REDIS_URL must be set in production: sessions live there")
        return self
