"""The process's Redis: one connection pool per URL and one outage guard, for every user.

The chassis keeps three things in Redis, none of which may depend on it: rate limit counts
(:mod:`flotilla.web.limits`), cache entries (:mod:`flotilla.data.cache`) and the breakers' shared
verdicts (:mod:`flotilla.resilience.http.shared`). Each takes its connections from
:func:`shared_redis`, as the readiness check does, so a worker has one pool whatever the
number of users, and each asks the same :class:`RedisGuard` before it calls, so an outage
that one of them meets is skipped by all: a process waits for one timeout per outage and
retry interval, not one per user.

Every connection has the same short timeouts, ``REDIS_TIMEOUT`` to connect and to read a
reply, and no retries: the guard is the retry policy (ADR 0028).

Each user wraps the guard in a :class:`RedisFallback` of its own that names what the user
logs: the warning says what it does instead ("limiting in process memory", "loading from the
source"). So an outage is logged once by each user that falls back, under that user's
logger, whether its own call failed or another user's did, and its end once by each.

A forked child forgets the parent's connections, as :mod:`flotilla.data.db` does with its engines:
the pool objects stay (their users hold them), emptied without closing the parent's sockets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_TIMEOUT = 0.25
"""Seconds a Redis connect or reply may take: a dead Redis must not hold up a request."""
RETRY_INTERVAL = 5.0
"""Seconds Redis is left alone after an error; every user falls back meanwhile."""

Clock = Callable[[], float]
T = TypeVar("T")


class RedisGuard:
    """Whether this process leaves Redis alone after an error: one verdict for every user.

    After an error, :meth:`skipping` is true for ``retry_interval`` seconds of ``clock``, so
    at most one call per interval and thread waits for a timeout; a success ends it. Pure
    state: no I/O, no logging (that is each :class:`RedisFallback`'s).
    """

    def __init__(
        self, *, clock: Clock = time.monotonic, retry_interval: float = RETRY_INTERVAL
    ) -> None:
        self.clock = clock
        self.retry_interval = retry_interval
        self.error = ""
        self._retry_at: float | None = None

    @property
    def failing(self) -> bool:
        """Whether the last answer from Redis was an error."""
        return self._retry_at is not None

    def skipping(self) -> bool:
        """True while the last error is less than ``retry_interval`` old."""
        retry_at = self._retry_at
        return retry_at is not None and self.clock() < retry_at

    def failed(self, error: redis.RedisError) -> None:
        """Start (or prolong) an outage; ``error`` is what every user's warning reports."""
        self.error = repr(error)[:500]
        self._retry_at = self.clock() + self.retry_interval

    def succeeded(self) -> None:
        """End the outage, if there was one: every user asks Redis again."""
        self._retry_at = None


class RedisFallback:
    """One user's side of the guard: Redis while it answers, the user's fallback otherwise.

    When this user first falls back in an outage (its own call failed, or the guard is
    skipping after another user's error), ``unavailable`` is logged as a warning with the
    error; when it reaches Redis again, ``available`` as info. ``fields`` go on both.
    """

    def __init__(
        self,
        guard: RedisGuard,
        log: logging.Logger,
        *,
        unavailable: str,
        available: str,
        **fields: object,
    ) -> None:
        self.guard = guard
        self.log = log
        self.unavailable = unavailable
        self.available = available
        self.fields = fields
        self.failing = False
        self._lock = threading.Lock()

    def run(self, action: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``action()``, which asks Redis; ``fallback()`` instead while Redis is failing."""
        if self.skipping():
            return fallback()
        try:
            result = action()
        except redis.RedisError as error:
            self.failed(error)
            return fallback()
        self.succeeded()
        return result

    def skipping(self) -> bool:
        """Whether to leave Redis alone now; the first skip of this user's outage is logged."""
        if not self.guard.skipping():
            return False
        if not self.failing:
            self._fall_back()
        return True

    def failed(self, error: redis.RedisError) -> None:
        """Tell the guard; the first failure of this user's outage is logged."""
        self.guard.failed(error)
        self._fall_back()

    def succeeded(self) -> None:
        """Tell the guard; the end of this user's outage is logged."""
        self.guard.succeeded()
        if not self.failing:
            return
        with self._lock:
            ended, self.failing = self.failing, False
        if ended:
            self.log.info(self.available, extra=self.fields)

    def _fall_back(self) -> None:
        with self._lock:
            started, self.failing = not self.failing, True
        if started:
            self.log.warning(
                self.unavailable,
                extra={
                    **self.fields,
                    "error": self.guard.error,
                    "retry_in_seconds": self.guard.retry_interval,
                },
            )


class SharedRedis:
    """This process's connection pool to the Redis at ``url``, and its outage guard."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: redis.ConnectionPool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._guards: dict[Clock, RedisGuard] = {}

    def client(self) -> redis.Redis:
        """A client on the shared pool (clients are cheap; the pool holds the connections)."""
        return redis.Redis(connection_pool=self.pool)

    def guard(self, clock: Clock = time.monotonic) -> RedisGuard:
        """The guard of the users that read ``clock``.

        In a service every user reads ``time.monotonic``, so there is one; a test that
        drives its users with a manual clock gets a guard of that clock's own.
        """
        guard = self._guards.get(clock)
        if guard is None:
            guard = self._guards.setdefault(clock, RedisGuard(clock=clock))
        return guard


_shared: dict[str, SharedRedis] = {}


def shared_redis(url: str) -> SharedRedis:
    """This process's :class:`SharedRedis` for ``url``, made on first use.

    Nothing connects until a user sends a command; connections open on demand, at most one
    per thread using Redis at the same moment.
    """
    shared = _shared.get(url)
    if shared is None:
        shared = _shared.setdefault(url, SharedRedis(url))  # atomic: one wins a race
    return shared


def _reset_pools_after_fork() -> None:
    # The child must not use (or close) the parent's sockets: forget them, open new ones.
    for shared in list(_shared.values()):
        shared.pool.reset()


os.register_at_fork(after_in_child=_reset_pools_after_fork)
