"""Breakers of several processes sharing their verdict through the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from flotilla.resilience.http import (
    BreakerOpen,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    RedisBreakerState,
    SharedBreaker,
    Transition,
)
from flotilla.testing import ManualClock, capture_logs, free_port, service_redis, wait_until

COOLDOWN = 0.3  # Redis expires the shared verdict in real time
POLICY = BreakerPolicy(failures=2, failure_rate=1.0, min_calls=100, window=10.0, cooldown=COOLDOWN)
SYNC = 0.5


@pytest.fixture
def name() -> Iterator[str]:
    unique = f"test-{uuid.uuid4().hex[:8]}"
    with service_redis(f"breaker:{unique}"):
        yield unique


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def process(
    name: str,
    clock: ManualClock,
    redis_url: str | None = None,
    transitions: list[Transition] | None = None,
) -> SharedBreaker:
    """One process's breaker of ``name``, on the test Redis unless another URL is given."""
    store = RedisBreakerState.from_url(redis_url or "redis://127.0.0.1:6379/0")
    listeners = [] if transitions is None else [transitions.append]
    breaker = CircuitBreaker(name, POLICY, clock=clock, listeners=listeners)
    return SharedBreaker(breaker, store, sync_interval=SYNC, clock=clock)


def fail(breaker: SharedBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record(success=False, trial=breaker.acquire())


def test_a_breaker_opened_in_one_process_opens_in_the_others(name: str, clock: ManualClock) -> None:
    first, second = process(name, clock), process(name, clock)

    fail(first, POLICY.failures)

    with pytest.raises(BreakerOpen):
        second.acquire()
    assert second.state is BreakerState.OPEN


def test_only_one_process_makes_the_trial_call(name: str, clock: ManualClock) -> None:
    store = RedisBreakerState.from_url("redis://127.0.0.1:6379/0")
    seen_by_second: list[Transition] = []
    first, second = process(name, clock), process(name, clock, transitions=seen_by_second)
    fail(first, POLICY.failures)
    with pytest.raises(BreakerOpen):
        second.acquire()
    wait_until(lambda: store.open_for(name) == 0, timeout=5)
    clock.advance(SYNC)

    assert first.acquire() is True  # the trial
    for _ in range(3):  # waiting for the other's trial: refused, and no state flapping
        with pytest.raises(BreakerOpen):
            second.acquire()
        clock.advance(SYNC / 2)
    assert [t.after for t in seen_by_second] == [BreakerState.OPEN]

    first.record(success=True, trial=True)
    assert first.state is BreakerState.CLOSED
    assert store.open_for(name) == 0
    clock.advance(SYNC)
    assert second.acquire() is True  # its own trial, now that the pod's succeeded


def test_a_failed_trial_opens_the_breaker_pod_wide_again(name: str, clock: ManualClock) -> None:
    store = RedisBreakerState.from_url("redis://127.0.0.1:6379/0")
    first = process(name, clock)
    fail(first, POLICY.failures)
    wait_until(lambda: store.open_for(name) == 0, timeout=5)
    clock.advance(COOLDOWN)

    fail(first, 1)

    assert first.state is BreakerState.OPEN
    assert 0 < store.open_for(name) <= COOLDOWN


def test_without_redis_each_process_keeps_its_own_breaker_and_warns_once(
    name: str, clock: ManualClock
) -> None:
    alone = process(name, clock, redis_url=f"redis://127.0.0.1:{free_port()}/0")

    with capture_logs() as records:
        for _ in range(3):
            clock.advance(SYNC)
            assert alone.acquire() is False
            alone.record(success=True)
        fail(alone, POLICY.failures)

    assert alone.state is BreakerState.OPEN
    warnings = [r for r in records if r["message"] == "breaker state not shared: Redis failed"]
    assert len(warnings) == 1
