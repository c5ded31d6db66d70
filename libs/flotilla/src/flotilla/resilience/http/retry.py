"""Which failed attempts are sent again, and after how long: pure rules, no IO.

A failed attempt is sent again only when that cannot do harm: when no connection was made
(nothing was sent), or when the request may safely arrive twice — an idempotent method, or
a request carrying an ``Idempotency-Key`` — and the failure says "not now" rather than
"never" (a timeout, a dropped connection, 502/503/504). A 500 is a bug that a second try does
not fix; an answer below 500 is an answer. A failure caused by the caller's own deadline is
never retried: there is no time left for it.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass

from flotilla.resilience.backoff import backoff_delay

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
"""Answers that say "not now" rather than "never": a gateway's or an overloaded server's."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a failed attempt is sent again."""

    retries: int = 2
    backoff: float = 0.05
    backoff_max: float = 1.0

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        """Seconds to wait before sending attempt ``attempt + 1`` again (full jitter)."""
        return backoff_delay(attempt, base=self.backoff, cap=self.backoff_max, random=random)


@dataclass(frozen=True)
class Failure:
    """One failed attempt: why, and whether the request may have reached the service."""

    reason: str
    """``connection_error``, ``timeout``, ``deadline`` or ``status_<code>``: a metric label."""
    sent: bool
    status: int | None = None
    deadline: bool = False
    """The caller's deadline, not the service, cut the attempt short: no verdict on it."""


def may_retry(failure: Failure, *, safe_to_repeat: bool) -> bool:
    """Whether ``failure``'s request may be sent again, by the rules above."""
    if failure.deadline:
        return False
    if not failure.sent:
        return True
    if not safe_to_repeat:
        return False
    return failure.status is None or failure.status in RETRYABLE_STATUSES
