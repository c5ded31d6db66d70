"""The circuit breaker's states, thresholds and concurrency, on a clock moved by hand."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from flotilla.resilience.http import (
    BreakerOpen,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Transition,
)
from flotilla.testing import ManualClock

POLICY = BreakerPolicy(failures=3, failure_rate=0.5, min_calls=10, window=10.0, cooldown=5.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def transitions() -> list[Transition]:
    return []


@pytest.fixture
def breaker(clock: ManualClock, transitions: list[Transition]) -> CircuitBreaker:
    return CircuitBreaker("catalog", POLICY, clock=clock, listeners=[transitions.append])


def call(breaker: CircuitBreaker, *, success: bool) -> None:
    """One permitted call that went as ``success`` says."""
    trial = breaker.acquire()
    breaker.record(success=success, trial=trial)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(POLICY.failures):
        call(breaker, success=False)


def test_consecutive_failures_open_the_breaker(breaker: CircuitBreaker) -> None:
    states = []
    for _ in range(3):
        call(breaker, success=False)
        states.append(breaker.state)

    assert states == [BreakerState.CLOSED, BreakerState.CLOSED, BreakerState.OPEN]


def test_a_success_resets_the_run_of_failures(breaker: CircuitBreaker) -> None:
    for _ in range(4):
        call(breaker, success=False)
        call(breaker, success=True)

    assert breaker.state is BreakerState.CLOSED


def test_a_failure_rate_over_enough_calls_opens_the_breaker(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    for _ in range(5):  # alternating: never 3 in a row, but half of all calls fail
        call(breaker, success=True)
        clock.advance(0.1)
        call(breaker, success=False)
    assert breaker.state is BreakerState.OPEN


def test_the_failure_rate_forgets_calls_older_than_the_window(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    for _ in range(4):
        call(breaker, success=True)
        call(breaker, success=False)
    clock.advance(POLICY.window + 1)
    call(breaker, success=True)
    call(breaker, success=False)  # 1 of 2 in the window: below min_calls

    assert breaker.state is BreakerState.CLOSED


def test_an_open_breaker_refuses_calls_and_says_when_to_come_back(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    open_breaker(breaker)
    clock.advance(2.0)

    with pytest.raises(BreakerOpen) as refused:
        breaker.acquire()

    assert refused.value.retry_after == pytest.approx(3.0)


def test_after_the_cooldown_one_trial_goes_through_and_others_wait(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    open_breaker(breaker)
    clock.advance(POLICY.cooldown)

    assert breaker.acquire() is True
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(BreakerOpen):
        breaker.acquire()


def test_a_successful_trial_closes_the_breaker(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[Transition]
) -> None:
    open_breaker(breaker)
    clock.advance(POLICY.cooldown)

    call(breaker, success=True)

    assert breaker.state is BreakerState.CLOSED
    assert [(t.before, t.after) for t in transitions] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert breaker.acquire() is False  # closed: an ordinary call again


def test_a_failed_trial_opens_the_breaker_for_another_cooldown(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    open_breaker(breaker)
    clock.advance(POLICY.cooldown)

    call(breaker, success=False)

    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen) as refused:
        breaker.acquire()
    assert refused.value.retry_after == pytest.approx(POLICY.cooldown)


def test_a_trial_never_reported_expires_after_a_cooldown(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    open_breaker(breaker)
    clock.advance(POLICY.cooldown)
    assert breaker.acquire() is True  # the caller crashed and never reports

    clock.advance(POLICY.cooldown)

    assert breaker.acquire() is True


def test_late_results_of_calls_started_before_opening_change_nothing(
    breaker: CircuitBreaker,
) -> None:
    started = [breaker.acquire() for _ in range(2)]
    open_breaker(breaker)

    for trial in started:
        breaker.record(success=True, trial=trial)

    assert breaker.state is BreakerState.OPEN


def test_reopening_starts_a_fresh_count(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker)
    clock.advance(POLICY.cooldown)
    call(breaker, success=True)

    call(breaker, success=False)
    call(breaker, success=False)

    assert breaker.state is BreakerState.CLOSED


def test_trip_opens_for_the_given_time_without_counting(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[Transition]
) -> None:
    breaker.trip(2.0, "shared")

    assert breaker.state is BreakerState.OPEN
    assert transitions[-1].reason == "shared"
    clock.advance(2.0)
    assert breaker.acquire() is True


def test_calls_through_one_breaker_run_concurrently() -> None:
    """Eight calls meet inside the guarded section at once: the breaker holds no lock there.

    A breaker that locked for the whole call (as pybreaker does) would let one call in at a
    time, and the barrier below would break after its timeout instead of opening.
    """
    breaker = CircuitBreaker("catalog", POLICY)
    inside = threading.Barrier(8)

    def guarded_call() -> None:
        trial = breaker.acquire()
        inside.wait(timeout=10)
        breaker.record(success=True, trial=trial)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(guarded_call) for _ in range(8)]:
            future.result()

    assert not inside.broken
    assert breaker.state is BreakerState.CLOSED


def test_a_discarded_trial_lets_the_next_call_be_the_trial(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    open_breaker(breaker)
    clock.advance(POLICY.cooldown)
    assert breaker.acquire() is True

    breaker.discard(trial=True)  # cut short by the caller's deadline: no verdict

    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire() is True


def test_trial_due_reads_the_state_without_changing_it(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[Transition]
) -> None:
    assert breaker.trial_due() is False
    open_breaker(breaker)
    assert breaker.trial_due() is False
    clock.advance(POLICY.cooldown)

    assert breaker.trial_due() is True
    assert breaker.state is BreakerState.OPEN
    assert len(transitions) == 1
