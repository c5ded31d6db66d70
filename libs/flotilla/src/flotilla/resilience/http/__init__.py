"""Calls to other services that fail fast instead of hanging: ``flotilla.resilience.http``.

* :class:`ServiceClient` — one per downstream service: timeouts cut to the request's
  deadline, retries of safe requests with backoff and a budget, a circuit breaker, request id
  and trace context sent along, metrics of every attempt (:mod:`.client`).
* :class:`CircuitBreaker` — pure and thread-safe; its lock never spans a call
  (:mod:`.breaker`); :class:`SharedBreaker` shares open verdicts through Redis (:mod:`.shared`).
* :class:`ClientCredentials` — the calling service's own token, fetched with its client
  secret and renewed before it expires (:mod:`.credentials`).
* :class:`RetryBudget` — retries as a share of calls (:mod:`.budget`).
* :class:`Deadlines` — every request's deadline, adopted from ``X-Deadline-Ms``
  (:mod:`.deadline`); :func:`remaining` tells what is left.
* Failures are problems: :class:`DownstreamUnavailable` (503), :class:`DownstreamTimeout`
  (504), :class:`BadGateway` (502) (:mod:`.errors`).

Choices and numbers: docs/resilience.md.
"""

from flotilla.resilience.http.breaker import (
    Breaker,
    BreakerOpen,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Transition,
)
from flotilla.resilience.http.budget import RetryBudget
from flotilla.resilience.http.client import ServiceClient, ServiceResponse
from flotilla.resilience.http.credentials import (
    ClientCredentials,
    TokenFetchFailed,
    fetch_client_token,
)
from flotilla.resilience.http.deadline import (
    DEADLINE_HEADER,
    DeadlineExceeded,
    Deadlines,
    caller_budget,
    grace,
    remaining,
)
from flotilla.resilience.http.errors import (
    BadGateway,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
)
from flotilla.resilience.http.retry import IDEMPOTENT_METHODS, RetryPolicy
from flotilla.resilience.http.shared import RedisBreakerState, SharedBreaker

__all__ = [
    "DEADLINE_HEADER",
    "IDEMPOTENT_METHODS",
    "BadGateway",
    "Breaker",
    "BreakerOpen",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "ClientCredentials",
    "DeadlineExceeded",
    "Deadlines",
    "DownstreamError",
    "DownstreamTimeout",
    "DownstreamUnavailable",
    "RedisBreakerState",
    "RetryBudget",
    "RetryPolicy",
    "ServiceClient",
    "ServiceResponse",
    "SharedBreaker",
    "TokenFetchFailed",
    "Transition",
    "caller_budget",
    "fetch_client_token",
    "grace",
    "remaining",
]
