"""Metrics of what the orders service undoes: compensations of failed placings, recovery.

``orders_compensations_total{outcome="left_for_recovery"}`` counts orders whose stock could not be
released at once; ``orders_recovery_releases_total{outcome="failed"}`` rising means recovery
cannot reach catalog either, and reserved stock is waiting. Created once per process, after
:func:`flotilla.observability.metrics.instruments` let prometheus_client choose file-backed values
under Gunicorn.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from flotilla import created_once, instruments


@dataclass(frozen=True)
class OrderInstruments:
    """The orders service's own metrics."""

    compensations: Counter
    recovery_releases: Counter


@created_once
def order_instruments() -> OrderInstruments:
    """Create the orders metrics, once per process."""
    instruments()
    return OrderInstruments(
        compensations=Counter(
            "orders_compensations",
            "Failed placings undone, by outcome: discarded (nothing reached catalog), released, "
            "left_for_recovery (the release failed too, or the order's state is unknown; recovery "
            "finishes it), placed (the confirming commit raised but had succeeded).",
            ("outcome",),
        ),
        recovery_releases=Counter(
            "orders_recovery_releases",
            "Stuck orders (left pending, abandoned or cancelling) recovery tried to release, "
            "by outcome: released or failed.",
            ("outcome",),
        ),
    )
