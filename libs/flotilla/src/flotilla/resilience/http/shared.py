"""Open breakers shared through Redis, so every worker of a pod stops calling together.

Each process keeps its own :class:`~flotilla.resilience.http.breaker.CircuitBreaker`; what is shared
is the verdict. When one process opens its breaker it writes ``flotilla:breaker:<name>`` with
the cool-down as its time to live; the others read that key at most every
``sync_interval`` seconds and open theirs for what is left of it. Once the key expires, the
first process to ``SET NX`` a trial key makes the one trial call of the pod; the others keep
refusing, without changing state, until it closes the breaker (deleting the key) or opens
it again. After a close, each process still open makes one trial of its own.

Counting stays local, so no call pays a Redis round trip; only the periodic read does.
Redis is an optimisation here, never a dependency: when it fails, each process goes on
with its own breaker and one warning is logged per outage. The connections and the outage
guard are the process's (:mod:`flotilla.resilience.redis_client`), shared with the cache and the
rate limits: while one of them is skipping a failed Redis, so is the breaker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flotilla.resilience.http.breaker import BreakerOpen, BreakerState, CircuitBreaker, Transition
from flotilla.resilience.redis_client import RedisFallback, SharedRedis, shared_redis

log = logging.getLogger(__name__)

SHARED = "shared"
T = TypeVar("T")


class RedisBreakerState:
    """The shared verdicts in Redis: which breakers are open, and who makes the trial."""

    def __init__(self, shared: SharedRedis, prefix: str = "flotilla:breaker:") -> None:
        self.shared = shared
        self._redis = shared.client()
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> RedisBreakerState:
        """A store on the process's pool for the Redis at ``url``."""
        return cls(shared_redis(url))

    def open_for(self, name: str) -> float:
        """Seconds the breaker ``name`` stays open pod-wide; 0 when it is not open."""
        milliseconds: int = self._redis.pttl(self._prefix + name)  # type: ignore[assignment]
        return milliseconds / 1000 if milliseconds > 0 else 0.0

    def publish_open(self, name: str, seconds: float) -> None:
        """Tell the other processes that ``name`` is open for ``seconds``."""
        self._redis.set(self._prefix + name, "open", px=max(1, int(seconds * 1000)))

    def publish_closed(self, name: str) -> None:
        """Tell the other processes that ``name`` closed again."""
        self._redis.delete(self._prefix + name, self._prefix + name + ":trial")

    def claim_trial(self, name: str, seconds: float) -> bool:
        """``True`` for the one process that may make the trial call in the next ``seconds``."""
        claimed = self._redis.set(
            self._prefix + name + ":trial", "1", nx=True, px=max(1, int(seconds * 1000))
        )
        return bool(claimed)


class SharedBreaker:
    """A process's breaker that also honours, and publishes, the pod-wide verdict."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        store: RedisBreakerState,
        *,
        sync_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.breaker = breaker
        self._store = store
        self._sync_interval = sync_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next_sync = 0.0
        self._next_claim = 0.0
        self._fallback = RedisFallback(
            store.shared.guard(clock),
            log,
            unavailable="breaker state not shared: Redis failed",
            available="breaker state shared again",
            target=breaker.name,
        )
        breaker.add_listener(self._publish)

    @property
    def name(self) -> str:
        """The downstream service's name."""
        return self.breaker.name

    @property
    def state(self) -> BreakerState:
        """The local breaker's state."""
        return self.breaker.state

    def acquire(self) -> bool:
        """As :meth:`CircuitBreaker.acquire`, after adopting an open verdict from Redis.

        When a trial call is due, it is made only by the process that claims it in Redis;
        the others keep refusing, and ask again at most once per sync interval.
        """
        if self._sync_due():
            remaining = self._shared(lambda: self._store.open_for(self.name), fallback=0.0)
            if remaining:
                self.breaker.trip(remaining, SHARED)
        if self.breaker.trial_due() and not self._trial_claimed():
            raise BreakerOpen(self.name, self._sync_interval)
        return self.breaker.acquire()

    def record(self, *, success: bool, trial: bool = False) -> None:
        """As :meth:`CircuitBreaker.record`."""
        self.breaker.record(success=success, trial=trial)

    def discard(self, *, trial: bool = False) -> None:
        """As :meth:`CircuitBreaker.discard`."""
        self.breaker.discard(trial=trial)

    def _trial_claimed(self) -> bool:
        now = self._clock()
        with self._lock:
            if now < self._next_claim:
                return False
            self._next_claim = now + self._sync_interval
        return self._shared(
            lambda: self._store.claim_trial(self.name, self.breaker.policy.cooldown), fallback=True
        )

    def _sync_due(self) -> bool:
        now = self._clock()
        with self._lock:
            if now < self._next_sync:
                return False
            self._next_sync = now + self._sync_interval
            return True

    def _publish(self, transition: Transition) -> None:
        if transition.reason == SHARED:
            return
        if transition.after is BreakerState.OPEN:
            seconds = self.breaker.policy.cooldown
            self._shared(lambda: self._store.publish_open(self.name, seconds), fallback=None)
        elif transition.after is BreakerState.CLOSED:
            self._shared(lambda: self._store.publish_closed(self.name), fallback=None)

    def _shared(self, action: Callable[[], T], *, fallback: T) -> T:
        """Run a Redis ``action``; when Redis fails, ``fallback``: as if it had no verdict."""
        return self._fallback.run(action, lambda: fallback)
