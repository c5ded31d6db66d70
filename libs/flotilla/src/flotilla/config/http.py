"""Settings of calls to other services: timeouts, the deadline, retries and the breaker.

The numbers behind the defaults are in docs/resilience.md.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class HttpClientSettings(BaseSettings):
    """How a service calls the services it depends on (``flotilla.resilience.http``)."""

    REQUEST_DEADLINE: float = Field(
        10.0,
        gt=0,
        description="Seconds a request may spend in calls to other services; a caller's "
        "X-Deadline-Ms can only shorten it.",
    )
    SERVICE_TOKEN_URL: str = Field(
        "",
        description="The issuer's token endpoint, where this service gets its own token for "
        "calls that need one (client credentials); empty: it calls with none.",
    )
    SERVICE_CLIENT_SECRET: str = Field(
        "",
        description="This service's client secret at SERVICE_TOKEN_URL; empty: derived from "
        "a key under VAR_DIR (development only).",
        repr=False,
    )
    SERVICE_CLIENT_ID: str = Field(
        "",
        description="The name this service gets its own token under (what callees allow); "
        "empty: SERVICE_NAME.",
    )
    HTTP_CONNECT_TIMEOUT: float = Field(
        0.5, gt=0, description="Seconds to open a connection to another service."
    )
    HTTP_READ_TIMEOUT: float = Field(
        2.0, gt=0, description="Seconds to wait for another service's answer, per attempt."
    )
    HTTP_POOL_SIZE: int = Field(
        10, ge=1, description="Connections kept open per process to each service called."
    )
    HTTP_CONNECTION_MAX_REQUESTS: int = Field(
        20,
        ge=0,
        description="Requests after which a connection to another service is closed and "
        "opened anew, so the callee's workers share the connections; 0: never.",
    )
    HTTP_RETRIES: int = Field(
        2, ge=0, description="Retries of a failed idempotent call (or one with an Idempotency-Key)."
    )
    HTTP_RETRY_BACKOFF: float = Field(
        0.05, gt=0, description="Base delay in seconds of the exponential, jittered retry backoff."
    )
    HTTP_RETRY_BACKOFF_MAX: float = Field(
        1.0, gt=0, description="Longest delay in seconds between two attempts of a call."
    )
    HTTP_RETRY_BUDGET_RATIO: float = Field(
        0.2,
        ge=0,
        description="Retries allowed per call made, over the budget window, per process.",
    )
    HTTP_RETRY_BUDGET_MIN_PER_SECOND: float = Field(
        3.0, ge=0, description="Retries per second always allowed, however few calls are made."
    )
    HTTP_BREAKER_FAILURES: int = Field(
        5, ge=1, description="Consecutive failed calls that open a service's circuit breaker."
    )
    HTTP_BREAKER_FAILURE_RATE: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of failed calls in the window that also opens the breaker.",
    )
    HTTP_BREAKER_MIN_CALLS: int = Field(
        20, ge=1, description="Calls in the window before the failure rate counts."
    )
    HTTP_BREAKER_WINDOW: float = Field(
        10.0, gt=0, description="Seconds of recent calls the failure rate and budget look at."
    )
    HTTP_BREAKER_COOLDOWN: float = Field(
        5.0, gt=0, description="Seconds an open breaker refuses calls before one trial call."
    )
    HTTP_BREAKER_SHARED: bool = Field(
        True,
        description="Share open breakers between processes through Redis (when REDIS_URL is set).",
    )
