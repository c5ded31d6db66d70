"""Settings of background work: Celery tasks, events, the outbox relay, their metrics port."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

TaskPool = Literal["prefork", "threads", "solo"]
"""Celery's execution pools the chassis supports (docs/adr/0019-task-pools.md)."""


class MessagingSettings(BaseSettings):
    """How a service publishes events and runs tasks; the broker itself is ``BROKER_URL``."""

    BROKER_CONNECT_TIMEOUT: float = Field(
        3.0, gt=0, description="Seconds to wait for the broker before a publish counts as failed."
    )
    TASK_SOFT_TIME_LIMIT: float = Field(
        60.0,
        gt=0,
        description="Seconds after which a running task is asked to stop (retried); prefork only.",
    )
    TASK_TIME_LIMIT: float = Field(
        90.0,
        gt=0,
        description="Seconds after which a running task's process is killed; prefork only.",
    )
    TASK_MAX_RETRIES: int = Field(
        5, ge=0, description="Retries of a failing task before it goes to the dead-letter queue."
    )
    TASK_RETRY_BACKOFF: float = Field(
        1.0, gt=0, description="Base delay in seconds of the exponential, jittered retry backoff."
    )
    TASK_RETRY_BACKOFF_MAX: float = Field(
        300.0, gt=0, description="Longest delay in seconds between two retries of a task."
    )
    TASK_POOL: TaskPool = Field(
        "prefork",
        description="How a worker runs tasks: prefork (a process each), threads, or solo (inline).",
    )
    TASK_CONCURRENCY: int = Field(
        2, ge=1, description="Tasks a worker runs at once: processes (prefork) or threads."
    )
    EVENTS_EXCHANGE: str = Field(
        "flotilla.events", description="Topic exchange events are published to, by event type."
    )
    OUTBOX_BATCH_SIZE: int = Field(
        100, ge=1, description="Events the outbox relay claims and publishes per transaction."
    )
    OUTBOX_POLL_INTERVAL: float = Field(
        1.0, gt=0, description="Seconds the outbox relay sleeps when no event is pending."
    )
    OUTBOX_RETENTION_SECONDS: int = Field(
        604_800, ge=0, description="Seconds published events stay in the outbox before pruning."
    )
    METRICS_BIND: str = Field(
        "",
        pattern=r"^(|.*:\d+)$",
        description="host:port a relay, recovery loop or worker serves /metrics on; empty: none.",
    )

    @model_validator(mode="after")
    def _hard_limit_after_soft_limit(self) -> Self:
        if self.TASK_TIME_LIMIT <= self.TASK_SOFT_TIME_LIMIT:
            raise ValueError("TASK_TIME_LIMIT must be greater than TASK_SOFT_TIME_LIMIT")
        return self
