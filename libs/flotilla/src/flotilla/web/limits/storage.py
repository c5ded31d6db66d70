"""Where counts live: in Redis (with ``REDIS_URL``) or in this process's memory.

Redis is reached on the process's pool and behind its outage guard
(:mod:`flotilla.resilience.redis_client`), which the cache and the breakers share; while it fails,
counts go to memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter

from flotilla.resilience.redis_client import RedisFallback, SharedRedis

log = logging.getLogger("flotilla.limits")

T = TypeVar("T")


def memory_limiter() -> RateLimiter:
    """A moving-window limiter counting in this process's memory."""
    return MovingWindowRateLimiter(MemoryStorage())


class StorageFailover:
    """Runs limiter calls on Redis, or on process memory while Redis is failing.

    Failing open to local limits is the choice because the alternatives are worse: refusing
    every request (fail closed) turns a cache outage into a full service outage, and no limit
    at all (fail open) leaves logins open to guessing exactly when something is already wrong.
    Local limits still stop a single client's burst, at worst once per worker process.

    After an error, the process's guard leaves Redis alone for its retry interval, so at
    most one request per interval and thread waits for a timeout. The outage is logged once
    when the limits start counting in memory and once when they reach Redis again, never per
    request.
    """

    def __init__(
        self,
        local: RateLimiter,
        remote: RateLimiter | None = None,
        fallback: RedisFallback | None = None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.fallback = fallback

    @classmethod
    def on_redis(
        cls, shared: SharedRedis, key_prefix: str, local: RateLimiter, clock: Callable[[], float]
    ) -> StorageFailover:
        """Counts under ``key_prefix`` in ``shared``'s Redis; in ``local`` while it fails."""
        storage = RedisStorage(shared.url, connection_pool=shared.pool, key_prefix=key_prefix)
        fallback = RedisFallback(
            shared.guard(clock),
            log,
            unavailable="rate limit storage unavailable, limiting in process memory",
            available="rate limit storage available again",
        )
        return cls(local, MovingWindowRateLimiter(storage), fallback)

    def run(self, call: Callable[[RateLimiter], T]) -> T:
        """``call`` on the limiter in use; on a Redis error, again on the local one."""
        remote, fallback = self.remote, self.fallback
        if remote is None or fallback is None:
            return call(self.local)
        return fallback.run(lambda: call(remote), lambda: call(self.local))
