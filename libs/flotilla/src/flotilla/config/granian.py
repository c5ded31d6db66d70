"""The web server's settings: which one runs (``WEB_SERVER``) and granian's own (``GRANIAN_*``).

Gunicorn's are in :mod:`flotilla.config.gunicorn`; ``flotilla serve`` reads these.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flotilla.config.gunicorn import available_cpus

WebServer = Literal["gunicorn", "granian"]
GranianLogLevel = Literal["critical", "error", "warning", "info", "debug"]

STOP_REQUEST_WAIT = 0.5
"""Seconds a stopping worker that no longer accepts gives the connections it holds to deliver
a request before granian's stop closes those that have not (:mod:`flotilla.serving.serve.worker`):
a client sends its request right behind the handshake, so half a second covers any network
but a broken one."""


class ServeSettings(BaseSettings):
    """What ``flotilla serve APP`` runs the app under."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    WEB_SERVER: WebServer = Field(
        "granian",
        description="The server `flotilla serve` runs the app under: granian or gunicorn.",
    )


class GranianSettings(BaseSettings):
    """granian's settings under ``flotilla serve``, each a ``GRANIAN_<NAME>`` variable."""

    model_config = SettingsConfigDict(
        env_prefix="GRANIAN_", case_sensitive=True, extra="ignore", frozen=True
    )

    BIND: str = Field("0.0.0.0:8000", description="Address to listen on (host:port or unix:path).")
    WORKERS: int = Field(
        default_factory=available_cpus,
        ge=1,
        description="Worker processes: one per usable CPU (CPU quota respected).",
    )
    BLOCKING_THREADS: int = Field(
        4, ge=1, description="Python threads per worker: requests each runs at once."
    )
    BACKLOG: int = Field(1024, ge=128, description="Connections the kernel queues unaccepted.")
    BACKPRESSURE: int = Field(
        0,
        ge=0,
        description="Connections one worker holds open at most; 0: BACKLOG / WORKERS.",
    )
    KEEPALIVE: int = Field(
        5,
        ge=0,
        description="Seconds an idle kept-alive connection (or one sending its headers) stays "
        "open; 0: one request per connection.",
    )
    TIMEOUT: int = Field(
        30,
        ge=1,
        description="Seconds without a heartbeat (a thread holding the GIL) before a worker "
        "is killed and replaced.",
    )
    GRACEFUL_TIMEOUT: int = Field(
        30,
        ge=1,
        description="Seconds a stopping worker gets to finish its requests (STOP_LINGER "
        "included) before it is killed.",
    )
    STOP_LINGER: float = Field(
        2.0,
        ge=0,
        description="Seconds a stopping worker still answers, readiness failing and each "
        "connection closed after its answer, before it stops accepting.",
    )
    RESPAWN_INTERVAL: float = Field(
        1.0,
        ge=0,
        description="Seconds a new worker serves beside the one it replaces (SIGHUP, "
        "lifetime, memory) before that one is stopped.",
    )
    WORKERS_LIFETIME: int = Field(
        0, ge=0, description="Seconds after which a worker is replaced (60 or more); 0: never."
    )
    WORKERS_MAX_RSS: int = Field(
        256,
        ge=0,
        description="MiB of resident memory above which a worker is replaced; 0: no limit.",
    )
    RSS_INTERVAL: int = Field(
        30, ge=1, description="Seconds between two checks of the workers' memory."
    )
    LOG_LEVEL: GranianLogLevel = Field("info", description="Level of granian's own log.")
    ACCESSLOG: bool = Field(
        True, description="One JSON line per request (the app's, with its request id)."
    )
    METRICS_DIR: str = Field(
        "", description="PROMETHEUS_MULTIPROC_DIR for the workers; empty: a fresh temp dir."
    )
    SERVICE_NAME: str = Field(
        "",
        validation_alias="SERVICE_NAME",
        description="Name in granian's log lines; empty: the app's package (users.wsgi -> users).",
    )

    @model_validator(mode="after")
    def _drain_after_the_linger(self) -> Self:
        """A worker killed at ``GRACEFUL_TIMEOUT`` must have had time to drain after lingering."""
        if self.STOP_LINGER + STOP_REQUEST_WAIT >= self.GRACEFUL_TIMEOUT:
            raise ValueError(
                f"GRANIAN_STOP_LINGER ({self.STOP_LINGER:g} s) plus the {STOP_REQUEST_WAIT:g} s a "
                "stopping worker waits for requests must be less than GRANIAN_GRACEFUL_TIMEOUT "
                f"({self.GRACEFUL_TIMEOUT} s), or the worker is killed before it drains"
            )
        return self

    @field_validator("WORKERS_LIFETIME")
    @classmethod
    def _lifetime_granian_accepts(cls, value: int) -> int:
        """granian refuses lifetimes under a minute; say so with the variable's name."""
        if 0 < value < 60:
            raise ValueError("GRANIAN_WORKERS_LIFETIME must be 0 (never) or at least 60 seconds")
        return value
