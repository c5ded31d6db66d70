"""A circuit breaker whose lock guards its counters, never the call it protects.

pybreaker, the best-known Python breaker, holds one lock for the whole guarded call, so
under Gunicorn's threaded workers every outbound call of a process waits for the previous
one (4 threads making 0.5 s calls took 2.0 s). Here a call asks for a permit (:meth:`acquire`),
makes the call with no lock held, and reports how it went (:meth:`record`); both take the
lock for a few counter updates. The breaker does no IO and reads time from an injected
clock, so its whole behaviour is tested without a network or a sleep.

States::

    closed ──(N failures in a row, or failure rate ≥ R over ≥ M calls in the window)──▶ open
    open ──(cool-down elapsed: the next call is a trial)──▶ half-open
    half-open ──(trial succeeds)──▶ closed          half-open ──(trial fails)──▶ open

While half-open, only the trial call goes through; other calls are refused as if open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from flotilla.resilience.http.window import RollingCounts


class BreakerState(StrEnum):
    """Where a breaker is; the gauge exports them as 0, 1, 2."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and for how long (settings ``HTTP_BREAKER_*``)."""

    failures: int = 5
    """Consecutive failures that open the breaker."""
    failure_rate: float = 0.5
    """Share of failed calls in the window that opens it too, once ``min_calls`` were made."""
    min_calls: int = 20
    window: float = 10.0
    cooldown: float = 5.0
    """Seconds the breaker stays open before it lets one trial call through."""


@dataclass(frozen=True)
class Transition:
    """A change of state, handed to listeners (logs, metrics, shared state)."""

    name: str
    before: BreakerState
    after: BreakerState
    reason: str


class BreakerOpen(Exception):
    """The breaker refuses the call; ``retry_after`` seconds until it may let one through."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open")
        self.name = name
        self.retry_after = max(retry_after, 0.0)


Listener = Callable[[Transition], None]


class Breaker(Protocol):
    """What a client needs of a breaker: :class:`CircuitBreaker` or a shared one."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> BreakerState: ...

    def acquire(self) -> bool: ...

    def record(self, *, success: bool, trial: bool = False) -> None: ...

    def discard(self, *, trial: bool = False) -> None: ...


class CircuitBreaker:
    """The breaker of one downstream service, shared by every thread of a process."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._listeners = list(listeners)
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._recent = RollingCounts(policy.window)
        self._open_until = 0.0
        self._trial_started: float | None = None

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down still reads open)."""
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every transition, outside the lock."""
        self._listeners.append(listener)

    def acquire(self) -> bool:
        """Permission for one call: ``True`` if it is the half-open trial.

        Raises :class:`BreakerOpen` when the call must not be made. Every permit must be
        followed by :meth:`record` with the same ``trial`` value.
        """
        with self._lock:
            now = self._clock()
            if self._state is BreakerState.CLOSED:
                return False
            if self._state is BreakerState.OPEN and now < self._open_until:
                raise BreakerOpen(self.name, self._open_until - now)
            if self._trial_started is not None and now - self._trial_started < self.policy.cooldown:
                # A trial is in flight; a lost one (never recorded) expires after a cool-down.
                raise BreakerOpen(self.name, self.policy.cooldown - (now - self._trial_started))
            self._trial_started = now
            transition = self._move(BreakerState.HALF_OPEN, "cool-down elapsed")
        self._notify(transition)
        return True

    def trial_due(self) -> bool:
        """Whether the next :meth:`acquire` would make a trial call; changes nothing."""
        with self._lock:
            now = self._clock()
            if self._state is BreakerState.CLOSED:
                return False
            if self._state is BreakerState.OPEN and now < self._open_until:
                return False
            started = self._trial_started
            return started is None or now - started >= self.policy.cooldown

    def record(self, *, success: bool, trial: bool = False) -> None:
        """Report how a permitted call went: it failed, or it succeeded (any 2xx-4xx answer)."""
        with self._lock:
            now = self._clock()
            transition = (
                self._record_trial(now, success=success) if trial else self._count(now, success)
            )
        self._notify(transition)

    def discard(self, *, trial: bool = False) -> None:
        """Forget a permitted call that proved nothing (the caller's deadline cut it short).

        A trial discarded lets the next call be the trial at once; counts do not change.
        """
        if trial:
            with self._lock:
                self._trial_started = None

    def trip(self, seconds: float, reason: str) -> None:
        """Open the breaker for ``seconds`` whatever its counts say (another process failed)."""
        with self._lock:
            self._open_until = max(self._open_until, self._clock() + seconds)
            self._trial_started = None
            transition = self._move(BreakerState.OPEN, reason)
        self._notify(transition)

    def _count(self, now: float, success: bool) -> Transition | None:
        if self._state is not BreakerState.CLOSED:
            return None  # a call that started before the breaker opened, finishing late
        self._recent.add(now, failures=0 if success else 1)
        self._consecutive_failures = 0 if success else self._consecutive_failures + 1
        if success:
            return None
        if self._consecutive_failures >= self.policy.failures:
            return self._open(now, f"{self._consecutive_failures} consecutive failures")
        calls, failures = self._recent.totals(now)
        if calls >= self.policy.min_calls and failures >= self.policy.failure_rate * calls:
            return self._open(now, f"{failures} of {calls} calls failed")
        return None

    def _record_trial(self, now: float, *, success: bool) -> Transition | None:
        self._trial_started = None
        if self._state is not BreakerState.HALF_OPEN:
            return None  # tripped by another process meanwhile
        if not success:
            return self._open(now, "trial call failed")
        self._recent.clear()
        self._consecutive_failures = 0
        return self._move(BreakerState.CLOSED, "trial call succeeded")

    def _open(self, now: float, reason: str) -> Transition | None:
        self._open_until = now + self.policy.cooldown
        return self._move(BreakerState.OPEN, reason)

    def _move(self, state: BreakerState, reason: str) -> Transition | None:
        before, self._state = self._state, state
        if before is state:
            return None
        if state is BreakerState.OPEN:
            self._recent.clear()
            self._consecutive_failures = 0
        return Transition(self.name, before, state, reason)

    def _notify(self, transition: Transition | None) -> None:
        if transition is not None:
            for listener in self._listeners:
                listener(transition)
