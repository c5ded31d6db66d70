"""A retry budget: retries are allowed as a share of recent calls, never a multiple of them.

Retries help when failures are rare and independent; during an outage every call fails and
each retry is one more request at a service that is already down. With three attempts per
call, a client triples its load exactly when the callee can least take it. The budget caps
retries at ``ratio`` per call over the window (0.2: at most 20 % extra load), plus a small
floor of retries per second so a service with little traffic can still retry its rare
failure. Finagle and gRPC use the same idea ("retry budgets", "retry throttling").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flotilla.resilience.http.window import RollingCounts


class RetryBudget:
    """Decides whether one more retry may be sent; thread-safe, one per downstream service."""

    def __init__(
        self,
        *,
        ratio: float,
        min_per_second: float,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._calls = RollingCounts(window)  # "failures" counts the retries spent
        self._window = self._calls.seconds

    def record_call(self) -> None:
        """Count a first attempt: each one earns ``ratio`` of a retry."""
        with self._lock:
            self._calls.add(self._clock())

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` when it is used up (do not retry)."""
        with self._lock:
            now = self._clock()
            calls, retries = self._calls.totals(now)
            allowed = self.min_per_second * self._window + self.ratio * calls
            if retries + 1 > allowed:
                return False
            self._calls.add(now, calls=0, failures=1)
            return True
