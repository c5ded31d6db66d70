"""Counts over the last few seconds, in one-second buckets: the memory of breaker and budget.

A sliding window of exact timestamps would grow with the traffic; buckets keep a fixed,
small amount of state (one pair of counters per second of the window) and make every
operation O(window seconds) at worst, O(1) in the common case.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass
class _Bucket:
    second: int
    calls: int = 0
    failures: int = 0


class RollingCounts:
    """Calls and failures seen in the last ``window`` seconds (whole buckets of one second).

    Not thread-safe on its own: its owner holds a lock around it. Times are whatever clock the
    owner uses (``time.monotonic`` in production, a manual clock in tests).
    """

    def __init__(self, window: float) -> None:
        self.seconds = max(1, math.ceil(window))
        self._buckets: deque[_Bucket] = deque()

    def add(self, now: float, *, calls: int = 1, failures: int = 0) -> None:
        """Count ``calls`` calls, of which ``failures`` failed, at time ``now``."""
        second = math.floor(now)
        self._expire(second)
        if not self._buckets or self._buckets[-1].second != second:
            self._buckets.append(_Bucket(second))
        bucket = self._buckets[-1]
        bucket.calls += calls
        bucket.failures += failures

    def totals(self, now: float) -> tuple[int, int]:
        """``(calls, failures)`` over the window ending at ``now``."""
        self._expire(math.floor(now))
        return (
            sum(bucket.calls for bucket in self._buckets),
            sum(bucket.failures for bucket in self._buckets),
        )

    def clear(self) -> None:
        """Forget everything counted."""
        self._buckets.clear()

    def _expire(self, second: int) -> None:
        oldest = second - self.seconds + 1
        while self._buckets and self._buckets[0].second < oldest:
            self._buckets.popleft()
