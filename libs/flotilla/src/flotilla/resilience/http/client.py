"""``ServiceClient``: calls to one other service that fail fast, retry safely and tell the truth.

Every call gets a connect and a read timeout, both cut to what is left of the request's
deadline (:mod:`flotilla.resilience.http.deadline`), which is also sent along in ``X-Deadline-Ms``.
A failed attempt is sent again only when that cannot do harm: when no connection could be
opened (nothing was sent), or when the method is idempotent or the request carries an
``Idempotency-Key``; and only while the retry budget lasts, with exponential backoff and
full jitter in between. The circuit breaker sees every attempt and refuses calls while the
other service is known to be failing, so the caller answers 503 in microseconds instead of
waiting for a timeout.

With :class:`~flotilla.resilience.http.credentials.ClientCredentials` every attempt carries the
calling service's own token; a 401 answer, which means the callee did nothing, drops that
token and the call is sent once more with a fresh one (the issuer's key may have rotated).

An answer below 500 is returned as it is: a 404 or 409 from the other service is a fact the
caller maps to its own problem. Failures raise
:class:`~flotilla.resilience.http.errors.DownstreamError`.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from flotilla.config import ServiceSettings
from flotilla.observability import tracing
from flotilla.observability.propagation import outgoing_traceparent
from flotilla.resilience.http import deadline
from flotilla.resilience.http.breaker import Breaker, BreakerOpen, BreakerPolicy, CircuitBreaker
from flotilla.resilience.http.budget import RetryBudget
from flotilla.resilience.http.credentials import ClientCredentials
from flotilla.resilience.http.errors import (
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    error_for,
)
from flotilla.resilience.http.metrics import client_instruments, record_transition
from flotilla.resilience.http.retry import IDEMPOTENT_METHODS, Failure, RetryPolicy, may_retry
from flotilla.resilience.http.shared import RedisBreakerState, SharedBreaker
from flotilla.resilience.http.transitions import log_transition
from flotilla.web import context

log = logging.getLogger(__name__)

_DEADLINE_EXCEEDED = b"deadline-exceeded"
"""In the problem a callee answers when our deadline had passed on arrival: not its fault."""


@dataclass(frozen=True)
class ServiceResponse:
    """What the other service answered (any status below 500)."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.content)


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
        connection_max_requests: int = 20,
        user_agent: str = "flotilla",
        credentials: ClientCredentials | None = None,
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
        self.connection_max_requests = connection_max_requests
        self._attempts = itertools.count(1)
        self._user_agent = user_agent
        self.credentials = credentials
        self._sleep = sleep
        self._jitter = jitter
        self._metrics = client_instruments()
        # The target's breaker series exists from the start, closed (0), not only after its
        # first transition: dashboards and the breaker alert see every target.
        self._metrics.breaker_state.labels(name).set(0)

    @classmethod
    def from_settings(
        cls,
        name: str,
        base_url: str,
        settings: ServiceSettings,
        *,
        credentials: ClientCredentials | None = None,
    ) -> ServiceClient:
        """A client of ``name`` at ``base_url`` configured by the ``HTTP_*`` settings.

        ``credentials`` makes every call carry the calling service's own token.
        """
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
            connection_max_requests=settings.HTTP_CONNECTION_MAX_REQUESTS,
            user_agent=f"flotilla ({settings.SERVICE_NAME})",
            credentials=credentials,
        )

    def get(self, path: str, **options: Any) -> ServiceResponse:
        """``GET path``; retried on failure."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> ServiceResponse:
        """``POST path``; retried only with an ``idempotency_key``."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> ServiceResponse:
        """``PUT path``; retried on failure."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> ServiceResponse:
        """``PATCH path``; retried only with an ``idempotency_key``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> ServiceResponse:
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
    ) -> ServiceResponse:
        """Send ``method path`` and return the answer, or raise a ``DownstreamError``.

        ``json`` becomes the body; ``timeout`` replaces the read timeout for this call.
        """
        method = method.upper()
        url = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        body = None if json is None else orjson.dumps(json)
        fixed = self._fixed_headers(headers, idempotency_key, has_body=body is not None)
        safe_to_repeat = method in IDEMPOTENT_METHODS or idempotency_key is not None
        self.budget.record_call()
        sent = False
        attempt = 0
        renewed = False
        while True:
            headers = self._with_credentials(fixed)
            outcome = self._attempt(method, url, body, headers, timeout, sent=sent)
            if isinstance(outcome, ServiceResponse):
                if outcome.status != 401 or renewed or not self._refused_own_token(fixed, headers):
                    return outcome
                renewed = True  # once: a token just issued and refused will not improve
                continue
            sent = sent or outcome.sent
            if not may_retry(outcome, safe_to_repeat=safe_to_repeat) or not self._wait_to_retry(
                outcome, attempt
            ):
                raise error_for(self.name, outcome, sent=sent)
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
    ) -> ServiceResponse | Failure:
        if not tracing.is_active():
            return self._try(method, url, body, headers, read_timeout, sent=sent)
        with tracing.client_span(self.name, method, url) as span:
            try:
                outcome = self._try(method, url, body, headers, read_timeout, sent=sent)
            except DownstreamError as error:  # refused here: breaker open, or deadline passed
                refusal = "breaker_open" if isinstance(error, DownstreamUnavailable) else "deadline"
                tracing.record_failure(span, refusal)
                raise
            if isinstance(outcome, ServiceResponse):
                tracing.record_response(span, outcome.status)
            else:
                tracing.record_failure(span, outcome.reason, outcome.status)
            return outcome

    def _try(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        read_timeout: float | None,
        *,
        sent: bool,
    ) -> ServiceResponse | Failure:
        """One attempt: the breaker's leave, the request, what the breaker learns of it."""
        left = self._time_left(sent=sent)
        timeouts = self._timeouts(read_timeout, left)
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
        outcome = self._send(method, url, body, {**headers, **self._hop_headers(left)}, timeouts)
        status = str(outcome.status) if isinstance(outcome, ServiceResponse) else outcome.reason
        self._metrics.latency.labels(self.name, method, status).observe(
            time.perf_counter() - started
        )
        if isinstance(outcome, Failure) and outcome.deadline:
            self.breaker.discard(trial=trial)  # the caller's haste says nothing of the service
        else:
            self.breaker.record(success=isinstance(outcome, ServiceResponse), trial=trial)
        return outcome

    def _own_token(self, headers: Mapping[str, str]) -> bool:
        """True when calls with ``headers`` carry the service's token, not one the caller gave."""
        return self.credentials is not None and "Authorization" not in headers

    def _refused_own_token(self, given: Mapping[str, str], sent: Mapping[str, str]) -> bool:
        """After a 401: forget the service's token if it was sent; True when it was."""
        if self.credentials is None or not self._own_token(given):
            return False
        self.credentials.forget(sent["Authorization"])
        return True

    def _with_credentials(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with the service's own token, unless the caller set Authorization."""
        if self.credentials is None or not self._own_token(headers):
            return headers
        return {**headers, "Authorization": self.credentials.authorization()}

    def _time_left(self, *, sent: bool) -> float | None:
        """Seconds left of the request's deadline; refuses the call when none are."""
        left = deadline.remaining()
        if left is not None and left <= 0:
            self._metrics.refused.labels(self.name, "deadline").inc()
            raise DownstreamTimeout(
                f"The request's deadline passed before {self.name} answered.",
                target=self.name,
                maybe_processed=sent,
            )
        return left

    def _timeouts(self, read_timeout: float | None, left: float | None) -> _Timeouts:
        """Connect and read timeouts, cut to the deadline; whether the deadline cut them."""
        connect = self.connect_timeout
        read = self.read_timeout if read_timeout is None else read_timeout
        if left is None or left >= max(connect, read):
            return _Timeouts(urllib3.Timeout(connect=connect, read=read), cut=False)
        return _Timeouts(
            urllib3.Timeout(connect=min(connect, left), read=min(read, left)), cut=True
        )

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeouts: _Timeouts,
    ) -> ServiceResponse | Failure:
        try:
            raw = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                timeout=timeouts.timeout,
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except (NewConnectionError, ConnectTimeoutError):  # no connection: nothing was sent
            return Failure("connection_error", sent=False, deadline=timeouts.cut)
        except ReadTimeoutError:
            return Failure("timeout", sent=True, deadline=timeouts.cut)
        except HTTPError:  # reset or closed mid-exchange: the request may have arrived
            return Failure("connection_error", sent=True)
        if raw.status == 504 and _DEADLINE_EXCEEDED in raw.data:
            return Failure("deadline", sent=True, status=504, deadline=True)
        if raw.status >= 500:
            return Failure(f"status_{raw.status}", sent=True, status=raw.status)
        return ServiceResponse(raw.status, raw.headers, raw.data)

    def _wait_to_retry(self, failure: Failure, attempt: int) -> bool:
        """Sleep the backoff before retry ``attempt + 1``, if the deadline and budget allow."""
        if attempt >= self.retry.retries:
            return False
        delay = self.retry.delay(attempt, self._jitter)
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

    def _hop_headers(self, left: float | None) -> dict[str, str]:
        """Request id, a new trace span and the deadline left, computed per attempt.

        Every ``connection_max_requests``-th attempt also asks the callee to close the
        connection after answering. The callee's workers share one listening socket, and a
        kept connection stays with the worker that accepted it: measured, the pool's
        connections once sat 16 on one catalog worker and 8 on the other, and the work
        followed. A connection that ends after a bounded number of requests is opened anew,
        on whichever worker accepts first: with 20, about one connection a second at a few
        hundred calls a second, for a reconnection's cost (tens of microseconds) per 20
        calls. The close comes after a whole answer, so no request is ever lost with it.
        """
        request_context = context.current()
        headers = {
            context.REQUEST_ID_HEADER: (
                request_context.request_id if request_context else context.new_request_id()
            ),
            "traceparent": outgoing_traceparent(),
        }
        if left is not None:  # at least 1: 0 would make the callee refuse outright
            headers[deadline.DEADLINE_HEADER] = str(max(1, int(left * 1000)))
        if self.connection_max_requests and not next(self._attempts) % self.connection_max_requests:
            headers["Connection"] = "close"
        return headers


@dataclass(frozen=True)
class _Timeouts:
    timeout: urllib3.Timeout
    cut: bool
    """The deadline, not the settings, set them: a timeout is then the caller's haste."""
