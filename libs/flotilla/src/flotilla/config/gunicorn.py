"""Gunicorn's settings, read from ``GUNICORN_*`` variables by :mod:`flotilla.serving.gunicorn`."""

from __future__ import annotations

import math
import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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


WORKER_CLASSES = ("gthread", "sync")
"""The worker classes the chassis runs: both block in plain threads, as its drivers do."""

COOPERATIVE_REFUSAL = (
    "{name} is refused: it serves every request of a worker on one thread by switching "
    "between greenlets, which only works if nothing blocks that thread. The chassis' drivers "
    "do: psycopg's connections and SQLAlchemy's pool, redis-py and urllib3 (calls to other "
    "services) wait in blocking socket calls unless the whole process is monkey-patched "
    "before they are imported, so one slow query would stall every request of the worker. "
    "Use gthread (the default: threads overlap that waiting) or sync."
)


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
    WORKER_CLASS: str = Field(
        "gthread",
        description="gthread (THREADS requests at once per worker) or sync (one at a time); "
        "gevent and eventlet are refused at start-up.",
    )
    THREADS: int = Field(
        4, ge=1, description="Threads per gthread worker: concurrent requests each."
    )
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
        0,
        ge=0,
        description="Requests after which a worker is replaced; 0: never (MAX_WORKER_RSS bounds "
        "leaks instead).",
    )
    MAX_REQUESTS_JITTER: int = Field(
        100, ge=0, description="Random extra requests so workers do not restart together."
    )
    MAX_WORKER_RSS: int = Field(
        256,
        ge=0,
        description="MiB of resident memory above which a worker finishes its requests and is "
        "replaced; 0: no limit.",
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

    @field_validator("WORKER_CLASS")
    @classmethod
    def _runnable_worker_class(cls, value: str) -> str:
        """Refuse cooperative (greenlet) workers with the reason, and anything unknown."""
        name = value.strip()
        if any(marker in name.lower() for marker in ("gevent", "eventlet")):
            raise ValueError(COOPERATIVE_REFUSAL.format(name=f"GUNICORN_WORKER_CLASS={name}"))
        if name not in WORKER_CLASSES:
            known = ", ".join(WORKER_CLASSES)
            raise ValueError(f"GUNICORN_WORKER_CLASS={name} is not one of {known}")
        return name
