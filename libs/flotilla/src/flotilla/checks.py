"""Readiness checks for the dependencies a service may be configured with.

Each factory returns a callable for :meth:`flotilla.health.Health.add_check`; the callable
raises when the dependency cannot be used. Timeouts are set on the client as well as by the
probe's deadline, so a dead dependency does not hold a connection attempt open for long.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from kombu.connection import Connection


def redis_check(url: str, timeout: float) -> Callable[[], None]:
    """PING the Redis server at ``url``."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

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
