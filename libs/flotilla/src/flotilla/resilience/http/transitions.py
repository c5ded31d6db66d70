"""Breaker transitions in the log: opening is a warning, recovering is news."""

from __future__ import annotations

import logging

from flotilla.resilience.http.breaker import BreakerState, Transition

log = logging.getLogger("flotilla.http.breaker")


def log_transition(transition: Transition) -> None:
    """Log one state change with the target, both states and the reason (a breaker listener)."""
    level = logging.WARNING if transition.after is BreakerState.OPEN else logging.INFO
    log.log(
        level,
        "circuit breaker %s",
        transition.after.value.replace("_", "-"),
        extra={
            "target": transition.name,
            "from_state": transition.before.value,
            "to_state": transition.after.value,
            "reason": transition.reason,
        },
    )
