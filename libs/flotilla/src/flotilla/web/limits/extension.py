"""The :class:`Limits` extension: an app's rate limit storage, which counts and refuses."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from flask import Flask, current_app

from flotilla.config import ServiceSettings
from flotilla.resilience.redis_client import SharedRedis, shared_redis
from flotilla.web.limits.items import Bucket
from flotilla.web.limits.refusal import refuse

if TYPE_CHECKING:
    from limits import RateLimitItem

    from flotilla.web.limits.storage import StorageFailover

EXTENSION_KEY = "flotilla.limits"


class Limits:
    """Rate limit storage for an app; state in ``app.extensions["flotilla.limits"]``.

    The strategy is the moving window: "5 per minute" means at most 5 in any 60 seconds, and
    ``Retry-After`` is when the oldest counted request leaves the window. A fixed window would
    let 10 through around a window boundary, which matters for limits on password guessing.
    Its cost, one list of up to N timestamps per key, is small for such limits.

    ``clock`` is for tests: the Redis outage guard of the users reading it.

    The storage is made by the first request a limit applies to, and with it the ``limits``
    library is loaded: a service whose views declare no limit never carries it.
    """

    def __init__(
        self,
        app: Flask | None = None,
        settings: ServiceSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.enabled = True
        self.key_prefix = ""
        self._redis: SharedRedis | None = None
        self._failover: StorageFailover | None = None
        self._making = threading.Lock()
        if app is not None and settings is not None:
            self.init_app(app, settings)

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Count ``app``'s limits in ``REDIS_URL``'s Redis, or in memory when it is empty."""
        self.enabled = settings.RATE_LIMITS_ENABLED
        # Services sharing a Redis keep apart, and so does the same scope in two services.
        self.key_prefix = f"flotilla:{settings.SERVICE_NAME}:limits"
        use_redis = settings.REDIS_URL and self.enabled
        self._redis = shared_redis(settings.REDIS_URL) if use_redis else None
        self._failover = None  # made again, for these settings, by the next limited request
        app.extensions[EXTENSION_KEY] = self

    @property
    def redis_pool(self) -> redis.ConnectionPool | None:
        """The pool of the Redis that holds the counts; None when they are held in memory."""
        return None if self._redis is None else self._redis.pool

    @property
    def failover(self) -> StorageFailover:
        """Where the counts go, made on first use (see the class)."""
        failover = self._failover
        if failover is None:
            with self._making:  # one storage, whichever thread asks first
                failover = self._failover = self._failover or self._make_failover()
        return failover

    def _make_failover(self) -> StorageFailover:
        from flotilla.web.limits.storage import StorageFailover, memory_limiter  # noqa: PLC0415

        local = memory_limiter()
        if self._redis is None:
            return StorageFailover(local)
        return StorageFailover.on_redis(self._redis, self.key_prefix, local, self.clock)

    def close(self) -> None:
        """Close the process's Redis connections (tests, shutdown); the next request reopens."""
        if self.redis_pool is not None:
            self.redis_pool.disconnect()

    def hit(self, bucket: Bucket) -> None:
        """Count a request against each limit; raise :class:`TooManyRequests` at the first full."""
        for item in bucket.items:
            if not self._hit(item, bucket):
                refuse(item, bucket, self.retry_after(item, bucket))

    def test(self, bucket: Bucket) -> None:
        """Raise :class:`TooManyRequests` if a limit is used up, without counting a request."""
        for item in bucket.items:
            if not self._test(item, bucket):
                refuse(item, bucket, self.retry_after(item, bucket))

    def count(self, bucket: Bucket) -> None:
        """Count a request against every limit that has room: a failure to remember."""
        for item in bucket.items:
            self._hit(item, bucket)

    def retry_after(self, item: RateLimitItem, bucket: Bucket) -> int:
        """Whole seconds until ``item`` admits a request again for ``bucket``; at least 1."""
        stats = self.failover.run(
            lambda limiter: limiter.get_window_stats(item, bucket.scope, bucket.key)
        )
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _hit(self, item: RateLimitItem, bucket: Bucket) -> bool:
        return self.failover.run(lambda limiter: limiter.hit(item, bucket.scope, bucket.key))

    def _test(self, item: RateLimitItem, bucket: Bucket) -> bool:
        return self.failover.run(lambda limiter: limiter.test(item, bucket.scope, bucket.key))


def current_limits() -> Limits:
    """The current app's :class:`Limits`; an app built without it cannot enforce limits."""
    limits: Limits | None = current_app.extensions.get(EXTENSION_KEY)
    if limits is None:
        raise RuntimeError("rate_limit needs the Limits extension: build the app with Limits")
    return limits
