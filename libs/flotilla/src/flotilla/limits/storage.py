"""Where counts live: in Redis (with ``REDIS_URL``) or in this process's memory.

While Redis fails, counts go to memory: :class:`StorageFailover`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from limits.strategies import RateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("flotilla.limits")

T = TypeVar("T")

REDIS_TIMEOUT = 0.5
"""Seconds a Redis connect or command may take: a dead Redis must not hold up requests."""
REDIS_RETRY_INTERVAL = 5.0
"""Seconds spent on in-process limits after a Redis error before Redis is tried again."""


class StorageFailover:
    """Runs limiter calls on Redis, or on process memory while Redis is failing.

    Failing open to local limits is the choice because the alternatives are worse: refusing
    every request (fail closed) turns a cache outage into a full service outage, and no limit
    at all (fail open) leaves logins open to guessing exactly when something is already wrong.
    Local limits still stop a single client's burst, at worst once per worker process.

    After an error, Redis is left alone for ``retry_interval`` seconds (of ``clock``), so at
    most one request per interval and thread waits for its timeout. The outage is logged once
    when it starts and once when Redis answers again, never per request.
    """

    def __init__(
        self,
        remote: RateLimiter | None,
        local: RateLimiter,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_interval: float = REDIS_RETRY_INTERVAL,
    ) -> None:
        self.remote = remote
        self.local = local
        self.clock = clock
        self.retry_interval = retry_interval
        self.failing = False
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def run(self, call: Callable[[RateLimiter], T]) -> T:
        """``call`` on the limiter in use; on a Redis error, again on the local one."""
        if self.remote is None or self.clock() < self._retry_at:
            return call(self.local)
        try:
            result = call(self.remote)
        except redis.RedisError as error:
            self._mark_failing(error)
            return call(self.local)
        if self.failing:
            self._mark_recovered()
        return result

    def _mark_failing(self, error: redis.RedisError) -> None:
        with self._lock:
            self._retry_at = self.clock() + self.retry_interval
            started, self.failing = not self.failing, True
        if started:
            log.warning(
                "rate limit storage unavailable, limiting in process memory",
                extra={"error": repr(error)[:500], "retry_in_seconds": self.retry_interval},
            )

    def _mark_recovered(self) -> None:
        with self._lock:
            ended, self.failing = self.failing, False
        if ended:
            log.info("rate limit storage available again")


def redis_pool(url: str) -> redis.ConnectionPool:
    """Connections to ``url`` with short timeouts and no retries: the failover retries."""
    return redis.ConnectionPool.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
