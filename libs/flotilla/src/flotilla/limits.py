"""Rate limits for views: ``@rate_limit("5/minute")``, counted in Redis or in process memory.

A limit is declared on the view, directly under the route decorator, and may name a setting
so that operators tune it per environment without touching code::

    @blp.post("/tokens")
    @rate_limit("LOGIN_RATE_LIMIT_PER_ADDRESS")
    @rate_limit("LOGIN_RATE_LIMIT_PER_ACCOUNT", key=account_in_body)
    @blp.arguments(LoginRequest)
    def log_in(credentials): ...

A refused request is a 429 problem with ``Retry-After``. Counts live in Redis when
``REDIS_URL`` is set, shared by every worker and replica. Without it they live in each worker
process, so the effective limit is the limit times the number of workers: acceptable for the
embedded default on a laptop, not for production. ``RATE_LIMITS_ENABLED=false`` turns every
limit off.

The ``limits`` library (the core of Flask-Limiter) does the counting. Flask-Limiter itself is
not used: it keeps one ``Limiter`` per process with its limits attached to view functions, which
does not fit apps that a factory builds many times, each with its own settings.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import redis
from flask import Flask, Response, after_this_request, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from prometheus_client import Counter
from pydantic import AfterValidator
from redis.backoff import NoBackoff
from redis.retry import Retry

from flotilla.api import document_operation
from flotilla.config import ServiceSettings
from flotilla.errors import TooManyRequests
from flotilla.metrics import created_once, instruments
from flotilla.settings import current_settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

EXTENSION_KEY = "flotilla.limits"
REDIS_TIMEOUT = 0.5
"""Seconds a Redis connect or command may take: a dead Redis must not hold up requests."""
REDIS_RETRY_INTERVAL = 5.0
"""Seconds spent on in-process limits after a Redis error before Redis is tried again."""


def client_address() -> str | None:
    """The client's IP address: the default bucket key.

    ``ProxyFix`` (``PROXY_HOPS``) has already replaced the proxy's address by the client's,
    from the ``X-Forwarded-For`` entries of trusted proxies only, and only for a request whose
    peer is one of ``TRUSTED_PROXIES``, so a client cannot pick it.
    """
    return request.remote_addr


@functools.lru_cache(maxsize=256)
def parse_limits(text: str) -> tuple[RateLimitItem, ...]:
    """``"2/second;100 per day"`` as limit items, shortest window first.

    Shortest first, because counting stops at the first refusal: a burst refused by the
    per-second limit then does not use up the daily one.
    """
    try:
        items = parse_many(text)
    except ValueError as error:
        raise ValueError(f"invalid rate limit {text!r}: {error}") from error
    return tuple(sorted(items, key=RateLimitItem.get_expiry))


def _valid_limits(text: str) -> str:
    parse_limits(text)  # raises ValueError, which pydantic reports with the setting's name
    return text


RateLimitString = Annotated[str, AfterValidator(_valid_limits)]
"""Type of a setting holding limits, e.g. ``"5/minute;50/day"``: a typo stops start-up."""


@dataclass(frozen=True)
class Bucket:
    """What one request is counted against: limits, within a scope, for one key."""

    items: tuple[RateLimitItem, ...]
    scope: str
    key: str


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


class Limits:
    """Rate limit storage for an app; state in ``app.extensions["flotilla.limits"]``.

    The strategy is the moving window: "5 per minute" means at most 5 in any 60 seconds, and
    ``Retry-After`` is when the oldest counted request leaves the window. A fixed window would
    let 10 through around a window boundary, which matters for limits on password guessing.
    Its cost, one list of up to N timestamps per key, is small for such limits.
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
        self.redis_pool: redis.ConnectionPool | None = None
        self.failover = StorageFailover(None, MovingWindowRateLimiter(MemoryStorage()))
        if app is not None and settings is not None:
            self.init_app(app, settings)

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Count ``app``'s limits in ``REDIS_URL``'s Redis, or in memory when it is empty."""
        self.enabled = settings.RATE_LIMITS_ENABLED
        # Services sharing a Redis keep apart, and so does the same scope in two services.
        self.key_prefix = f"flotilla:{settings.SERVICE_NAME}:limits"
        remote = None
        if settings.REDIS_URL and self.enabled:
            self.redis_pool = redis_pool(settings.REDIS_URL)
            storage = RedisStorage(
                settings.REDIS_URL, connection_pool=self.redis_pool, key_prefix=self.key_prefix
            )
            remote = MovingWindowRateLimiter(storage)
        self.failover = StorageFailover(remote, self.failover.local, clock=self.clock)
        app.extensions[EXTENSION_KEY] = self

    def close(self) -> None:
        """Close the Redis connections (tests, shutdown); the next request reopens them."""
        if self.redis_pool is not None:
            self.redis_pool.disconnect()

    def hit(self, bucket: Bucket) -> None:
        """Count a request against each limit; raise :class:`TooManyRequests` at the first full."""
        for item in bucket.items:
            if not self._hit(item, bucket):
                self._refuse(item, bucket)

    def test(self, bucket: Bucket) -> None:
        """Raise :class:`TooManyRequests` if a limit is used up, without counting a request."""
        for item in bucket.items:
            if not self._test(item, bucket):
                self._refuse(item, bucket)

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

    def _refuse(self, item: RateLimitItem, bucket: Bucket) -> NoReturn:
        seconds = self.retry_after(item, bucket)
        refusals().labels(bucket.scope).inc()
        raise TooManyRequests(
            f"The limit of {item} was reached; retry in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


def redis_pool(url: str) -> redis.ConnectionPool:
    """Connections to ``url`` with short timeouts and no retries: the failover retries."""
    return redis.ConnectionPool.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


@created_once
def refusals() -> Counter:
    """``flotilla_rate_limited_total{scope}``, in the same storage as the request metrics."""
    instruments()  # selects file-backed values under Gunicorn before this metric exists
    return Counter("flotilla_rate_limited", "Requests refused by a rate limit.", ("scope",))


def current_limits() -> Limits:
    """The current app's :class:`Limits`; an app built without it cannot enforce limits."""
    limits: Limits | None = current_app.extensions.get(EXTENSION_KEY)
    if limits is None:
        raise RuntimeError("rate_limit needs the Limits extension: build the app with Limits")
    return limits


def rate_limit(
    limit: str,
    *,
    key: Callable[[], str | None] | None = None,
    scope: str | None = None,
    only_failures: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit how often a view runs per key; place it directly under the route decorator.

    There it refuses before flask-smorest parses the body, and ``functools.wraps`` carries the
    inner decorators' OpenAPI documentation up to the route.

    ``limit`` is a limits string (``"5/minute"``, ``"10 per hour;100 per day"``) or the name
    of a setting holding one, read at request time so each app follows its own settings.
    ``key`` returns the bucket key (default: :func:`client_address`); ``None`` skips the limit
    for that request. ``scope`` names the bucket (default: the endpoint). With
    ``only_failures``, a request is refused once the limit is used up, but only requests
    answered with a 4xx count. The check and the count are two steps, so concurrent failing
    requests can all pass the check: do not use it where the limit guards against guessing.
    """
    literal = None if limit.isidentifier() else parse_limits(limit)  # a typo fails at import
    key_of = key or client_address

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            limits = current_limits()
            bucket_key = key_of() if limits.enabled else None
            if bucket_key is not None:
                items = literal or _limits_of_setting(limit)
                bucket = Bucket(items, scope or request.endpoint or view.__name__, bucket_key)
                _enforce(limits, bucket, only_failures=only_failures)
            return view(*args, **kwargs)

        return document_operation(limited, problems={429: "Rate limit reached."})

    return decorator


def _limits_of_setting(name: str) -> tuple[RateLimitItem, ...]:
    settings = current_settings(ServiceSettings)
    text = getattr(settings, name, None)
    if not isinstance(text, str):
        raise TypeError(f"rate_limit({name!r}) names no setting holding a limits string")
    return parse_limits(text)


def _enforce(limits: Limits, bucket: Bucket, *, only_failures: bool) -> None:
    if not only_failures:
        limits.hit(bucket)
        return
    limits.test(bucket)

    @after_this_request
    def count_failure(response: Response) -> Response:
        if 400 <= response.status_code < 500:
            limits.count(bucket)
        return response
