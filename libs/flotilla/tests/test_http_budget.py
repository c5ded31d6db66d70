"""The retry budget: retries as a share of calls, over a window, on a clock moved by hand."""

from __future__ import annotations

from flotilla.resilience.http import RetryBudget
from flotilla.testing import ManualClock


def spend_all(budget: RetryBudget) -> int:
    """Retries the budget grants right now."""
    granted = 0
    while budget.try_spend():
        granted += 1
    return granted


def test_the_floor_allows_a_few_retries_with_no_calls_at_all() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=1.0, window=10.0, clock=ManualClock())

    assert spend_all(budget) == 10  # 1 per second over 10 seconds


def test_each_call_earns_a_share_of_a_retry() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, window=10.0, clock=ManualClock())
    for _ in range(100):
        budget.record_call()

    assert spend_all(budget) == 20


def test_during_an_outage_retries_stay_a_fraction_of_the_load() -> None:
    """Every call fails and wants two retries; the budget grants at most 20 % extra."""
    clock = ManualClock()
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, window=10.0, clock=clock)
    calls = retries = 0
    for _ in range(1000):
        budget.record_call()
        calls += 1
        retries += sum(budget.try_spend() for _ in range(2))
        clock.advance(0.01)

    assert retries <= 0.2 * calls
    assert retries >= 0.19 * calls  # and the budget is used, not wasted


def test_spent_retries_are_forgotten_after_the_window() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.0, min_per_second=1.0, window=5.0, clock=clock)
    assert spend_all(budget) == 5

    clock.advance(5.0)

    assert spend_all(budget) == 5


def test_a_zero_budget_never_retries() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, window=10.0, clock=ManualClock())
    budget.record_call()

    assert budget.try_spend() is False
