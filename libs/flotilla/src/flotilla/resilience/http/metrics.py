"""Metrics of outbound calls: latency by target and status, breaker state, retries.

Created once per process, after :func:`flotilla.observability.metrics.instruments` let
prometheus_client choose file-backed values under Gunicorn. The breaker gauge keeps the highest
state among live processes (``livemax``): one worker with an open breaker shows as open.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from flotilla.observability.metrics import created_once, instruments
from flotilla.resilience.http.breaker import STATE_VALUES, Transition


@dataclass(frozen=True)
class ClientInstruments:
    """The metrics every :class:`~flotilla.resilience.http.ServiceClient` of a process shares."""

    latency: Histogram
    breaker_state: Gauge
    transitions: Counter
    retries: Counter
    refused: Counter


@created_once
def client_instruments() -> ClientInstruments:
    """Create the outbound-call metrics, once per process."""
    instruments()
    return ClientInstruments(
        latency=Histogram(
            "flotilla_http_client_request_duration_seconds",
            "Time of each attempt of a call to another service, by target, method and status "
            "(an HTTP status, or timeout / connection_error).",
            ("target", "method", "status"),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        ),
        breaker_state=Gauge(
            "flotilla_http_client_breaker_state",
            "Circuit breaker of each target: 0 closed, 1 half-open, 2 open.",
            ("target",),
            multiprocess_mode="livemax",
        ),
        transitions=Counter(
            "flotilla_http_client_breaker_transitions",
            "Circuit breaker state changes, by target and the state entered.",
            ("target", "state"),
        ),
        retries=Counter(
            "flotilla_http_client_retries",
            "Attempts sent again, by target and the failure that caused them.",
            ("target", "reason"),
        ),
        refused=Counter(
            "flotilla_http_client_refused",
            "Calls not sent, by target and why: breaker_open, retry_budget, deadline.",
            ("target", "reason"),
        ),
    )


def record_transition(transition: Transition) -> None:
    """Update the breaker gauge and count the transition (a breaker listener)."""
    metrics = client_instruments()
    metrics.breaker_state.labels(transition.name).set(STATE_VALUES[transition.after])
    metrics.transitions.labels(transition.name, transition.after.value).inc()
