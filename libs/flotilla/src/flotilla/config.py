"""Typed service settings, read from the environment and nowhere else.

Every setting is declared once, with a type, a default and a one-line description. The same
declarations drive validation at start-up, the configuration table in the README and the
consistency checks in the test suite, so documentation cannot drift from code.

Services subclass :class:`ServiceSettings` to add their own settings.
"""

from __future__ import annotations

import math
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
"""Databases the services are tested on; the driver suffix (``+psycopg``) may follow."""

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "development-only-secret"})
"""Values that are never acceptable as a secret in production."""

DEVELOPMENT_SECRET_KEY = "development-only-secret"  # noqa: S105 - a marker refused in production


class Environment(StrEnum):
    """Where the service runs; production turns every safety check on."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


EXIT_CONFIGURATION = 3
"""Exit status for bad settings: Gunicorn's WORKER_BOOT_ERROR, so its master stops too."""


class ConfigurationError(SystemExit):
    """Start-up stops because of a setting; the message is one line naming the variable.

    A :class:`SystemExit` so that Gunicorn, Flask's CLI and ``python -m`` exit without a
    traceback that would bury the message, with status 3 so that a Gunicorn master whose
    workers load the app (no preload) halts instead of restarting them forever.
    """

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_CONFIGURATION)
        self.message = f"configuration error: {message}"

    def __str__(self) -> str:
        return self.message


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ServiceSettings(BaseSettings):
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
    SECRET_KEY: str = Field(
        DEVELOPMENT_SECRET_KEY,
        description="Key for signing; required and not a placeholder in production.",
        repr=False,
    )
    SECRET_KEY_FALLBACKS: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated retired keys still accepted for verification.",
        repr=False,
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
    DATABASE_TCP_USER_TIMEOUT_MS: int = Field(
        10_000, ge=0, description="Drop a PostgreSQL connection whose sent data goes unanswered."
    )
    DATABASE_POOL_PRE_PING: bool = Field(
        False, description="Test each connection on checkout (one extra round trip per request)."
    )
    DATABASE_ECHO: bool = Field(False, description="Log every SQL statement (development only).")
    REDIS_URL: str = Field("", description="Redis URL for cache and limits; empty: in-process.")
    BROKER_URL: str = Field("", description="Message broker URL; empty: a local file transport.")
    LOG_LEVEL: LogLevel = Field("INFO", description="Minimum level of records written to stdout.")
    MAX_CONTENT_LENGTH: int = Field(
        1_048_576, ge=1, description="Largest accepted request body in bytes (413 above)."
    )
    PROXY_HOPS: int = Field(
        0, ge=0, description="Trusted reverse proxies in front (X-Forwarded-* hops); 0 trusts none."
    )
    HSTS_MAX_AGE: int = Field(
        31_536_000, ge=0, description="Strict-Transport-Security max-age for HTTPS requests."
    )
    HEALTH_CHECK_TIMEOUT: float = Field(
        2.0, gt=0, description="Seconds each readiness check may take before it counts as failed."
    )
    API_VERSION: str = Field("v1", description="Version string shown in the OpenAPI document.")

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: Any) -> Any:
        if isinstance(data, dict) and "SECRET_KEY_FALLBACKS" in data:
            data = {**data, "SECRET_KEY_FALLBACKS": _split_list(data["SECRET_KEY_FALLBACKS"])}
        return data

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
        if self.SECRET_KEY.strip().lower() in PLACEHOLDER_SECRETS or len(self.SECRET_KEY) < 32:
            raise ValueError("SECRET_KEY must be set to a random value of 32+ characters")
        if not self.DATABASE_URL:
            raise ValueError("DATABASE_URL must be set in production")
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


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_class: type[SettingsT], **overrides: Any) -> SettingsT:
    """Read settings from the environment, or stop start-up with one line naming the variable."""
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        stop = ConfigurationError(_describe(error))
    print(stop, file=sys.stderr, flush=True)  # noqa: T201 - logging may not be set up yet
    raise stop


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name else message)
    return "; ".join(problems)


def settings_table(
    settings_class: type[BaseSettings], *, besides: type[BaseSettings] | None = None
) -> str:
    """The settings of ``settings_class`` (minus those of ``besides``) as a Markdown table."""
    inherited = besides.model_fields if besides else {}
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, field in settings_class.model_fields.items():
        base = inherited.get(name)
        if base is not None and (base.default, base.description) == (
            field.default,
            field.description,
        ):
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, StrEnum):
            default = default.value
        shown = "*(empty)*" if default in ("", []) else f"`{default}`"
        if field.default_factory not in (None, list):
            shown = "*(computed)*"  # depends on the machine; the meaning says how
        rows.append(f"| `{_variable(settings_class, name)}` | {shown} | {field.description} |")
    return "\n".join(rows)


def available_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (containers).

    ``os.cpu_count()`` reports the host's CPUs, so a pod limited to one CPU on a 64-core node
    would start 129 workers.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def _default_workers() -> int:
    return 2 * available_cpus() + 1


class GunicornSettings(BaseSettings):
    """Gunicorn's settings, each overridable by a ``GUNICORN_<NAME>`` environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="GUNICORN_", case_sensitive=True, extra="ignore", frozen=True
    )

    BIND: str = Field("0.0.0.0:8000", description="Address to listen on (host:port or unix:path).")
    WORKERS: int = Field(
        default_factory=_default_workers,
        ge=1,
        description="Worker processes: 2 x usable CPUs + 1 (CPU quota respected).",
    )
    WORKER_CLASS: str = Field("gthread", description="Worker type; gthread serves with threads.")
    THREADS: int = Field(4, ge=1, description="Threads per worker: concurrent requests each.")
    TIMEOUT: int = Field(30, ge=1, description="Seconds of silence before a worker is killed.")
    GRACEFUL_TIMEOUT: int = Field(
        30, ge=1, description="Seconds in-flight requests get to finish after SIGTERM."
    )
    KEEPALIVE: int = Field(5, ge=0, description="Seconds an idle keep-alive connection stays open.")
    KEEPALIVE_REQUESTS: int = Field(
        100,
        ge=0,
        description="Requests on one connection before it is closed, so clients spread over "
        "workers again; 0: no limit.",
    )
    MAX_REQUESTS: int = Field(
        1000, ge=0, description="Requests after which a worker is replaced (bounds leaks)."
    )
    MAX_REQUESTS_JITTER: int = Field(
        100, ge=0, description="Random extra requests so workers do not restart together."
    )
    PRELOAD_APP: bool = Field(
        True, description="Import the app once in the master; workers fork with it loaded."
    )
    ACCESSLOG: str = Field("-", description="Access log target; '-' is stdout, empty disables.")
    LOGLEVEL: str = Field("info", description="Level of Gunicorn's own log.")
    CONTROL_SOCKET: str = Field(
        "", description="Path of Gunicorn's control socket; empty disables it."
    )
    WORKER_TMP_DIR: str = Field(
        "/dev/shm" if Path("/dev/shm").is_dir() else "",  # noqa: S108 - memory, not disk
        description="Heartbeat files' directory; memory-backed so a read-only root works.",
    )
    FORWARDED_ALLOW_IPS: str = Field(
        "", description="Proxies Gunicorn itself trusts; empty leaves it to PROXY_HOPS."
    )
    METRICS_DIR: str = Field(
        "", description="PROMETHEUS_MULTIPROC_DIR for the workers; empty: a fresh temp dir."
    )
    SERVICE_NAME: str = Field(
        "",
        validation_alias="SERVICE_NAME",
        description="Name in Gunicorn's log lines; empty: the app's package (users.wsgi -> users).",
    )


def _variable(settings_class: type[BaseSettings], name: str) -> str:
    """The environment variable that sets field ``name``."""
    alias = settings_class.model_fields[name].validation_alias
    if isinstance(alias, str):
        return alias
    return f"{settings_class.model_config.get('env_prefix', '')}{name}"
