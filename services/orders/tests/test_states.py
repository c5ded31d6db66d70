"""The order state machine, on its own: no database, no HTTP."""

from __future__ import annotations

import itertools

import pytest

from orders import states
from orders.states import (
    TRANSITIONS,
    VISIBLE_STATES,
    InvalidTransition,
    OrderEvent,
    OrderState,
    allows,
    move_of,
    next_state,
)


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (OrderState.PENDING, OrderEvent.PLACE, OrderState.PLACED),
        (OrderState.PENDING, OrderEvent.ABANDON, OrderState.ABANDONED),
        (OrderState.PLACED, OrderEvent.CANCEL, OrderState.CANCELLING),
        (OrderState.CANCELLING, OrderEvent.RELEASE, OrderState.CANCELLED),
    ],
)
def test_each_allowed_event_moves_to_its_state(
    state: OrderState, event: OrderEvent, expected: OrderState
) -> None:
    assert next_state(state, event) is expected
    assert allows(state, event)


REFUSED = [
    (state, event)
    for state, event in itertools.product(OrderState, OrderEvent)
    if (state, event) not in TRANSITIONS
]


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_every_other_event_is_refused_as_a_409_problem(
    state: OrderState, event: OrderEvent
) -> None:
    assert not allows(state, event)
    with pytest.raises(InvalidTransition) as raised:
        next_state(state, event)
    assert raised.value.status == 409
    assert str(state) in str(raised.value)


def test_the_refusals_include_the_dangerous_ones() -> None:
    # A pending order is never cancelled (it has no reservation to speak of yet), a placed
    # one is never abandoned (recovery must not release its stock) nor cancelled without
    # its stock being released first, a cancelling one never goes back to placed (its
    # stock may be on sale again), and the end states are final.
    assert {
        (OrderState.PENDING, OrderEvent.CANCEL),
        (OrderState.PLACED, OrderEvent.ABANDON),
        (OrderState.PLACED, OrderEvent.PLACE),
        (OrderState.PLACED, OrderEvent.RELEASE),
        (OrderState.CANCELLING, OrderEvent.PLACE),
        (OrderState.CANCELLING, OrderEvent.ABANDON),
        (OrderState.CANCELLED, OrderEvent.CANCEL),
        (OrderState.CANCELLED, OrderEvent.PLACE),
        (OrderState.ABANDONED, OrderEvent.PLACE),
    } <= set(REFUSED)


def test_end_states_have_no_way_out() -> None:
    for state in (OrderState.CANCELLED, OrderState.ABANDONED):
        assert not any(allows(state, event) for event in OrderEvent)


def test_only_placed_cancelling_and_cancelled_orders_are_shown() -> None:
    assert {OrderState.PLACED, OrderState.CANCELLING, OrderState.CANCELLED} == VISIBLE_STATES


def test_every_state_is_reachable_from_pending() -> None:
    reached = {OrderState.PENDING}
    frontier = [OrderState.PENDING]
    while frontier:
        state = frontier.pop()
        for (source, _event), target in TRANSITIONS.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(OrderState)


@pytest.mark.parametrize("event", list(OrderEvent))
def test_each_event_has_one_move_read_from_the_table(event: OrderEvent) -> None:
    move = move_of(event)
    assert move.sources == {state for state, on in TRANSITIONS if on is event}
    assert all(TRANSITIONS[state, event] is move.target for state in move.sources)


def test_a_table_one_compare_and_set_cannot_express_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two_targets = {
        **TRANSITIONS,
        (OrderState.PLACED, OrderEvent.ABANDON): OrderState.CANCELLED,
    }
    monkeypatch.setattr(states, "TRANSITIONS", two_targets)
    with pytest.raises(ValueError, match="exactly one state"):
        move_of(OrderEvent.ABANDON)
