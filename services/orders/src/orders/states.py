"""The life of an order as data: its states, the events that move it, and nothing else.

::

    pending ──place──▶ placed ──cancel──▶ cancelling ──release──▶ cancelled
       │
       └──abandon──▶ abandoned  (then released at catalog and deleted)

An order is ``pending`` from the moment its id exists until its lines are written; only
``placed``, ``cancelling`` and ``cancelled`` orders are ever shown. ``abandoned`` is an
order that will never be placed, whose stock is being given back; ``cancelling`` a cancel
recorded before catalog was asked for the stock, which never goes back to ``placed``. Why
the saga needs these two states is explained once, in ``docs/resilience.md``
("Compensation").

:data:`TRANSITIONS` is the only statement of these rules: :mod:`orders.lifecycle` derives
from it, with :func:`move_of`, the compare-and-set that makes each event happen.

Pure: no database, no clock, so the rules are tested on their own (``test_states.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flotilla import Conflict


class OrderState(StrEnum):
    """Where an order is in its life."""

    PENDING = "pending"
    PLACED = "placed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


class OrderEvent(StrEnum):
    """What can happen to an order."""

    PLACE = "place"
    CANCEL = "cancel"
    RELEASE = "release"
    ABANDON = "abandon"


TRANSITIONS: Mapping[tuple[OrderState, OrderEvent], OrderState] = {
    (OrderState.PENDING, OrderEvent.PLACE): OrderState.PLACED,
    (OrderState.PENDING, OrderEvent.ABANDON): OrderState.ABANDONED,
    (OrderState.PLACED, OrderEvent.CANCEL): OrderState.CANCELLING,
    (OrderState.CANCELLING, OrderEvent.RELEASE): OrderState.CANCELLED,
}
"""Every allowed move: (state, event) -> the next state. Anything absent is refused."""

VISIBLE_STATES = frozenset({OrderState.PLACED, OrderState.CANCELLING, OrderState.CANCELLED})
"""States in which an order exists for its customer: reads and lists show only these."""


class InvalidTransition(Conflict):
    """The order's state does not allow this event (409)."""

    code, title = "invalid-order-transition", "Invalid Order Transition"


def next_state(state: OrderState, event: OrderEvent) -> OrderState:
    """The state ``event`` moves an order in ``state`` to; raises :class:`InvalidTransition`."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise InvalidTransition(f"A {state} order cannot {event}.") from None


def allows(state: OrderState, event: OrderEvent) -> bool:
    """True when ``event`` may happen to an order in ``state``."""
    return (state, event) in TRANSITIONS


@dataclass(frozen=True)
class Move:
    """What an event does to any order: the states it moves one from, and the state it leaves."""

    sources: frozenset[OrderState]
    target: OrderState


def move_of(event: OrderEvent) -> Move:
    """The move ``event`` makes, read from :data:`TRANSITIONS`.

    Raises ``ValueError`` when the table lets ``event`` happen nowhere, or leads it to two
    states: one compare-and-set per event could not express either.
    """
    moves = {source: target for (source, on), target in TRANSITIONS.items() if on is event}
    targets = set(moves.values())
    if len(targets) != 1:
        raise ValueError(f"{event} must lead to exactly one state, not {sorted(targets)}")
    return Move(frozenset(moves), targets.pop())
