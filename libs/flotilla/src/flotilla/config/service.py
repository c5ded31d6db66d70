"""Settings every Flotilla service shares, and the checks that keep production safe."""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from flotilla.config.auth import AuthSettings
from flotilla.config.http import HttpClientSettings
from flotilla.config.messaging import MessagingSettings
from flotilla.config.observability import ObservabilitySettings

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
"""Databases the services are tested on; the driver suffix (``+psycopg``) may follow."""

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret"})
"""Values that are never acceptable as a secret in production."""

IPNetwork = IPv4Network | IPv6Network


def comma_separated(value: Any) -> Any:
    """A setting's comma-separated text as its items, blanks dropped; other values as given.

    For a ``mode="before"`` validator of a list setting declared ``NoDecode``, so that
    ``A, B`` in the environment means ``["A", "B"]`` rather than JSON.
    """
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Environment(StrEnum):
    """Where the service runs; production turns every safety check on."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(AuthSettings, HttpClientSettings, MessagingSettings, ObservabilitySettings):
    """Settings every Flotilla service shares. Names match the environment variables."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, validate_default=True
    )

    SERVICE_NAME: str = Field(
        "service", description="Name used in logs, metrics and the API title."
    )
    ENVIRONMENT: Environment = Field(
        Environment.DEVELOPMENT,
        description="development, test or production; production refuses unsafe defaults.",
    )
    VAR_DIR: Path = Field(
        Path("var"), description="Directory for local state: SQLite files, mail, metrics."
    )
    DATABASE_URL: str = Field(
        "",
        description="SQLAlchemy URL; empty means SQLite under VAR_DIR (required in production).",
        repr=False,
    )
    DATABASE_POOL_SIZE: int = Field(5, ge=1, description="Connections kept open per process.")
    DATABASE_MAX_OVERFLOW: int = Field(
        5, ge=0, description="Extra connections opened under burst load, closed when idle."
    )
    DATABASE_POOL_TIMEOUT: float = Field(
        5.0, gt=0, description="Seconds to wait for a free pooled connection before failing (503)."
    )
    DATABASE_CONNECT_TIMEOUT: int = Field(
        3, ge=1, description="Seconds to wait for a new database connection."
    )
    DATABASE_STATEMENT_TIMEOUT_MS: int = Field(
        10_000, ge=0, description="PostgreSQL statement_timeout in milliseconds; 0 disables."
    )
    DATABASE_MIGRATION_LOCK_TIMEOUT_MS: int = Field(
        3_000,
        ge=1,
        description="PostgreSQL lock_timeout of migrations: how long a schema change may queue "
        "for a table's lock, holding up every query behind it, before it backs off and retries.",
    )
    DATABASE_MIGRATION_LOCK_RETRIES: int = Field(
        10,
        ge=0,
        description="Retries, with jittered exponential backoff, of a migration that timed out "
        "waiting for a lock; then `db upgrade` fails, naming the statement that waited.",
    )
    DATABASE_TCP_USER_TIMEOUT_MS: int = Field(
        10_000, ge=0, description="Drop a PostgreSQL connection whose sent data goes unanswered."
    )
    DATABASE_POOL_PRE_PING: bool = Field(
        False,
        description="Ping each connection on checkout (a round trip). Off, connections the "
        "server closed are still replaced at checkout (ADR 0027).",
    )
    DATABASE_ECHO: bool = Field(False, description="Log every SQL statement (development only).")
    REDIS_URL: str = Field("", description="Redis URL for cache and limits; empty: in-process.")
    RATE_LIMITS_ENABLED: bool = Field(
        True, description="Enforce views' rate limits (per worker process without REDIS_URL)."
    )
    BROKER_URL: str = Field("", description="Message broker URL; empty: a local file transport.")
    LOG_LEVEL: LogLevel = Field("INFO", description="Minimum level of records written to stdout.")
    MAX_CONTENT_LENGTH: int = Field(
        1_048_576, ge=1, description="Largest accepted request body in bytes (413 above)."
    )
    PROXY_HOPS: int = Field(
        0, ge=0, description="Trusted reverse proxies in front (X-Forwarded-* hops); 0 trusts none."
    )
    TRUSTED_PROXIES: Annotated[list[IPNetwork], NoDecode] = Field(
        # A proxy on the same machine, as nginx under `make run`. Written as the environment
        # would give it, so the table in the README shows it so; parsed like any value.
        "127.0.0.0/8,::1/128",  # type: ignore[arg-type]
        description="Comma-separated addresses or CIDRs whose X-Forwarded-* is believed "
        "(with PROXY_HOPS); any other peer's is ignored.",
    )
    HSTS_MAX_AGE: int = Field(
        31_536_000, ge=0, description="Strict-Transport-Security max-age for HTTPS requests."
    )
    HEALTH_CHECK_TIMEOUT: float = Field(
        2.0, gt=0, description="Seconds each readiness check may take before it counts as failed."
    )

    @field_validator("TRUSTED_PROXIES", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        # strict=False: "10.0.0.1/8" means the network it lies in, as nginx's allow does.
        value = comma_separated(value)
        if isinstance(value, list):
            return [
                ip_network(item, strict=False) if isinstance(item, str) else item for item in value
            ]
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.partition("://")[0].partition("+")[0]
        if value and ("://" not in value or scheme not in DATABASE_SCHEMES):
            raise ValueError("must be a postgresql:// or sqlite:// URL")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.ENVIRONMENT is not Environment.PRODUCTION:
            return self
        if not self.DATABASE_URL:
            raise ValueError("DATABASE_URL must be set in production")
        for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL"):
            password = urlsplit(getattr(self, name)).password
            if password is not None and password.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{name} holds a placeholder password; set the real one")
        secret = self.SERVICE_CLIENT_SECRET
        if self.SERVICE_TOKEN_URL and (
            secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret) < 32
        ):
            raise ValueError(
                "SERVICE_CLIENT_SECRET must be set to a random value of 32+ characters"
            )
        return self

    @property
    def is_production(self) -> bool:
        """True when every production safety check applies."""
        return self.ENVIRONMENT is Environment.PRODUCTION

    def database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file under ``VAR_DIR``."""
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite:///{self.VAR_DIR / f'{self.SERVICE_NAME}.db'}"
