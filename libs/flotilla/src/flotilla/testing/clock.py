"""A clock tests move by hand, for code that takes a ``clock`` callable."""

from __future__ import annotations


class ManualClock:
    """A monotonic clock tests move by hand, for code that takes a ``clock`` callable.

    It reads ``start`` (arbitrary, but not 0) until a test calls :meth:`advance` or sets
    :attr:`now`, so the time a cache or a limiter sees is exact and no test sleeps. Started at
    ``time.time()`` it stands in for POSIX time as well.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds
