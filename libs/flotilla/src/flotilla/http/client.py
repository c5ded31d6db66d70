"""``ServiceClient``: calls to one other service that fail fast, retry safely and tell the truth.

Every call gets a connect and a read timeout, both cut to what is left of the request's
deadline (:mod:`flotilla.http.deadline`), which is also sent along in ``X-Deadline-Ms``.
A failed attempt is sent again only when that cannot do harm: when no connection could be
opened (nothing was sent), or when the method is idempotent or the request carries an
``Idempotency-Key``; and only while the retry budget lasts, with exponential backoff and
full jitter in between. The circuit breaker sees every attempt and refuses calls while the
other service is known to be failing, so the caller answers 503 in microseconds instead of
waiting for a timeout.

An answer below 500 is returned as it is: a 404 or 409 from the other service is a fact the
caller maps to its own problem. Failures raise :class:`~flotilla.http.errors.DownstreamError`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import orjson
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from flotilla import context
from flotilla.backoff import backoff_delay
from flotilla.config import ServiceSettings
from flotilla.http import deadline
from flotilla.http.breaker import BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker
from flotilla.http.budget import RetryBudget
from flotilla.http.errors import (
    BadGateway,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
)
from flotilla.http.metrics import client_instruments, record_transition
from flotilla.http.shared import RedisBreakerState, SharedBreaker
from flotilla.http.transitions import log_transition
from flotilla.propagation import child_traceparent, current_traceparent

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
"""Answers that say "not now" rather than "never": a gateway's or an overloaded server's."""


@dataclass(frozen=True)
class Response:
    """What the other service answered (any status below 500)."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.content)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a failed attempt is sent again."""

    retries: int = 2
    backoff: float = 0.05
    backoff_max: float = 1.0


class Breaker(Protocol):
    """What the client needs of a breaker: a local or a shared one."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> BreakerState: ...

    def acquire(self) -> bool: ...

    def record(self, *, success: bool, trial: bool = False) -> None: ...


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: why, and whether the request may have reached the service."""

    reason: str
    sent: bool
    status: int | None = None


class ServiceClient:
    """Calls to one other service: a connection pool, a breaker, a retry budget."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        breaker: Breaker,
        budget: RetryBudget,
        retry: RetryPolicy,
        connect_timeout: float = 0.5,
        read_timeout: float = 2.0,
        pool_size: int = 10,
        user_agent: str = "flotilla",
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.breaker = breaker
        self.budget = budget
        self.retry = retry
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._prefix = urlsplit(base_url).path.rstrip("/")
        self._pool = urllib3.connection_from_url(
            base_url, maxsize=pool_size, block=False, retries=False
        )
        self._user_agent = user_agent
        self._sleep = sleep
        self._jitter = jitter
        self._metrics = client_instruments()

    @classmethod
    def from_settings(cls, name: str, base_url: str, settings: ServiceSettings) -> ServiceClient:
        """A client of ``name`` at ``base_url`` configured by the ``HTTP_*`` settings."""
        policy = BreakerPolicy(
            failures=settings.HTTP_BREAKER_FAILURES,
            failure_rate=settings.HTTP_BREAKER_FAILURE_RATE,
            min_calls=settings.HTTP_BREAKER_MIN_CALLS,
            window=settings.HTTP_BREAKER_WINDOW,
            cooldown=settings.HTTP_BREAKER_COOLDOWN,
        )
        local = CircuitBreaker(name, policy, listeners=[log_transition, record_transition])
        breaker: Breaker = local
        if settings.HTTP_BREAKER_SHARED and settings.REDIS_URL:
            breaker = SharedBreaker(local, RedisBreakerState.from_url(settings.REDIS_URL))
        return cls(
            name,
            base_url,
            breaker=breaker,
            budget=RetryBudget(
                ratio=settings.HTTP_RETRY_BUDGET_RATIO,
                min_per_second=settings.HTTP_RETRY_BUDGET_MIN_PER_SECOND,
                window=settings.HTTP_BREAKER_WINDOW,
            ),
            retry=RetryPolicy(
                retries=settings.HTTP_RETRIES,
                backoff=settings.HTTP_RETRY_BACKOFF,
                backoff_max=settings.HTTP_RETRY_BACKOFF_MAX,
            ),
            connect_timeout=settings.HTTP_CONNECT_TIMEOUT,
            read_timeout=settings.HTTP_READ_TIMEOUT,
            pool_size=settings.HTTP_POOL_SIZE,
            user_agent=f"flotilla ({settings.SERVICE_NAME})",
        )

    def get(self, path: str, **options: Any) -> Response:
        """``GET path``; retried on failure."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Response:
        """``POST path``; retried only with an ``idempotency_key``."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> Response:
        """``PUT path``; retried on failure."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Response:
        """``PATCH path``; retried only with an ``idempotency_key``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Response:
        """``DELETE path``; retried on failure."""
        return self.request("DELETE", path, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send ``method path`` and return the answer, or raise a ``DownstreamError``.

        ``json`` becomes the body; ``timeout`` replaces the read timeout for this call.
        """
        method = method.upper()
        url = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        body = None if json is None else orjson.dumps(json)
        fixed = self._fixed_headers(headers, idempotency_key, has_body=body is not None)
        retryable = method in IDEMPOTENT_METHODS or idempotency_key is not None
        self.budget.record_call()
        sent = False
        attempt = 0
        while True:
            outcome = self._attempt(method, url, body, fixed, timeout, sent=sent)
            if isinstance(outcome, Response):
                return outcome
            sent = sent or outcome.sent
            if not self._retry_allowed(outcome, attempt, retryable=retryable or not outcome.sent):
                raise self._error(outcome, sent)
            attempt += 1

    def _attempt(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        read_timeout: float | None,
        *,
        sent: bool,
    ) -> Response | _Failure:
        timeouts = self._timeouts(read_timeout, sent=sent)
        try:
            trial = self.breaker.acquire()
        except BreakerOpen as error:
            self._metrics.refused.labels(self.name, "breaker_open").inc()
            raise DownstreamUnavailable(
                f"{self.name} is unavailable: its circuit breaker is open.",
                target=self.name,
                maybe_processed=sent,
                retry_after=error.retry_after,
            ) from None
        started = time.perf_counter()
        outcome = self._send(method, url, body, {**headers, **self._hop_headers()}, timeouts)
        status = str(outcome.status) if isinstance(outcome, Response) else outcome.reason
        self._metrics.latency.labels(self.name, method, status).observe(
            time.perf_counter() - started
        )
        self.breaker.record(success=isinstance(outcome, Response), trial=trial)
        return outcome

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeouts: urllib3.Timeout,
    ) -> Response | _Failure:
        try:
            raw = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                timeout=timeouts,
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except (NewConnectionError, ConnectTimeoutError):  # no connection: nothing was sent
            return _Failure("connection_error", sent=False)
        except ReadTimeoutError:
            return _Failure("timeout", sent=True)
        except HTTPError:  # reset or closed mid-exchange: the request may have arrived
            return _Failure("connection_error", sent=True)
        if raw.status >= 500:
            return _Failure(f"status_{raw.status}", sent=True, status=raw.status)
        return Response(raw.status, raw.headers, raw.data)

    def _timeouts(self, read_timeout: float | None, *, sent: bool) -> urllib3.Timeout:
        connect, read = self.connect_timeout, read_timeout or self.read_timeout
        left = deadline.remaining()
        if left is not None:
            if left <= 0:
                self._metrics.refused.labels(self.name, "deadline").inc()
                raise DownstreamTimeout(
                    f"The request's deadline passed before {self.name} answered.",
                    target=self.name,
                    maybe_processed=sent,
                )
            connect, read = min(connect, left), min(read, left)
        return urllib3.Timeout(connect=connect, read=read)

    def _retry_allowed(self, failure: _Failure, attempt: int, *, retryable: bool) -> bool:
        """Whether to send ``failure``'s request again, after sleeping the backoff."""
        if attempt >= self.retry.retries or not retryable:
            return False
        if failure.status is not None and failure.status not in RETRYABLE_STATUSES:
            return False
        delay = backoff_delay(
            attempt, base=self.retry.backoff, cap=self.retry.backoff_max, random=self._jitter
        )
        left = deadline.remaining()
        if left is not None and delay >= left:
            return False
        if not self.budget.try_spend():
            self._metrics.refused.labels(self.name, "retry_budget").inc()
            return False
        self._metrics.retries.labels(self.name, failure.reason).inc()
        log.info(
            "retrying call",
            extra={"target": self.name, "reason": failure.reason, "delay_ms": delay * 1000},
        )
        self._sleep(delay)
        return True

    def _error(self, failure: _Failure, sent: bool) -> DownstreamError:
        if failure.reason == "timeout":
            return DownstreamTimeout(
                f"{self.name} did not answer in time.", target=self.name, maybe_processed=True
            )
        if failure.reason == "connection_error" and not sent:
            return DownstreamUnavailable(
                f"{self.name} cannot be reached.",
                target=self.name,
                maybe_processed=False,
                retry_after=1.0,
            )
        what = f"answered {failure.status}" if failure.status else "dropped the connection"
        return BadGateway(f"{self.name} {what}.", target=self.name, maybe_processed=sent)

    def _fixed_headers(
        self, extra: Mapping[str, str] | None, idempotency_key: str | None, *, has_body: bool
    ) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if has_body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        headers.update(extra or {})
        return headers

    def _hop_headers(self) -> dict[str, str]:
        """Request id, a new trace span and the deadline left, computed per attempt."""
        request_context = context.current()
        headers = {
            context.REQUEST_ID_HEADER: (
                request_context.request_id if request_context else context.new_request_id()
            ),
            "traceparent": child_traceparent(current_traceparent()),
        }
        left = deadline.remaining()
        if left is not None:
            headers[deadline.DEADLINE_HEADER] = str(max(0, int(left * 1000)))
        return headers
