"""Readiness checks for the dependencies a service may be configured with.

Each factory returns a callable for :meth:`flotilla.web.health.Health.add_check`; the callable
raises when the dependency cannot be used. Timeouts are set on the client as well as by the
probe's deadline, so a dead dependency does not hold a connection attempt open for long.
"""

from __future__ import annotations

from collections.abc import Callable

from kombu.connection import Connection

from flotilla.resilience.redis_client import shared_redis


def redis_check(url: str) -> Callable[[], None]:
    """PING the Redis server at ``url`` on the process's pool, with its short timeouts.

    Past the outage guard on purpose: readiness reports what Redis answers now, also while
    the cache and the rate limits are leaving it alone after an error.
    """
    client = shared_redis(url).client()

    def check() -> None:
        client.ping()

    return check


def broker_check(url: str, timeout: float) -> Callable[[], None]:
    """Open (and close) a connection to the message broker at ``url``."""

    def check() -> None:
        connection = Connection(url, connect_timeout=timeout)
        with connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)

    return check
