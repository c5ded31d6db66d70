"""The system's state as an operator sees it: each process's readiness and its own figures.

Web services answer ``/healthz/ready`` (every dependency check) and ``/metrics``; background
processes (relays, recovery, workers) answer only ``/metrics`` (``STATUS_PROGRAMS``). From
the metrics come the breaker states a service holds for its peers, the outbox's pending
count and oldest age, and the task queues' depth with their dead letters. Every process is
asked at once, each with a short timeout and no retry: a process that does not answer is
shown as unreachable within a second, and the page never waits on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from console.charts import counters_of

PROBE_TIMEOUT = urllib3.Timeout(connect=0.5, read=1.0)
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}

_http = urllib3.PoolManager(maxsize=4, retries=False, timeout=PROBE_TIMEOUT)
_probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="console-status")


@dataclass(frozen=True)
class Check:
    """One dependency check of a service's readiness."""

    name: str
    ok: bool
    critical: bool
    error: str | None


@dataclass(frozen=True)
class Queue:
    """A task queue's depth, and the dead letters beside it."""

    name: str
    waiting: int
    dead_letters: int


@dataclass(frozen=True)
class ProcessStatus:
    """What one process of the system says about itself."""

    name: str
    kind: str
    """``web`` or ``background``."""
    state: str
    """``ready``, ``degraded``, ``not ready`` or ``unreachable``."""
    checks: list[Check] = field(default_factory=list)
    breakers: dict[str, str] = field(default_factory=dict)
    outbox_pending: int | None = None
    outbox_oldest_seconds: float | None = None
    queues: list[Queue] = field(default_factory=list)
    counters: dict[str, float] | None = None
    """A web service's traffic counters (:func:`console.charts.counters_of`), for the charts."""

    @property
    def healthy(self) -> bool:
        """Ready, or degraded: still serving."""
        return self.state in ("ready", "degraded")


def system_status(services: Mapping[str, str], programs: Mapping[str, str]) -> list[ProcessStatus]:
    """Every web service (name: base URL) and background process (name: metrics URL), asked."""
    web = {name: _probes.submit(_web_status, name, url) for name, url in services.items()}
    background = {
        name: _probes.submit(_background_status, name, url) for name, url in programs.items()
    }
    return [future.result() for future in (*web.values(), *background.values())]


def _web_status(name: str, base_url: str) -> ProcessStatus:
    ready = _get(f"{base_url}/healthz/ready")
    if ready is None:
        return ProcessStatus(name, "web", "unreachable")
    status, body = ready
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = {}
    checks = [
        Check(check, value.get("status") == "ok", value.get("critical", True), value.get("error"))
        for check, value in (document.get("checks") or {}).items()
        if isinstance(value, dict)
    ]
    if status == 200:
        state = "degraded" if document.get("status") == "degraded" else "ready"
    else:
        state = "not ready"
    metrics = _get(f"{base_url}/metrics")
    if metrics is None or metrics[0] != 200:
        return ProcessStatus(name, "web", state, checks, **_figures(""))
    text = metrics[1].decode()
    return ProcessStatus(name, "web", state, checks, **_figures(text), counters=counters_of(text))


def _background_status(name: str, metrics_url: str) -> ProcessStatus:
    metrics = _get(metrics_url)
    if metrics is None or metrics[0] != 200:
        return ProcessStatus(name, "background", "unreachable")
    return ProcessStatus(name, "background", "ready", **_figures(metrics[1].decode()))


def traffic_counters(services: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Each answering web service's traffic counters (name: base URL), all read at once."""
    scrapes = {name: _probes.submit(_get, f"{url}/metrics") for name, url in services.items()}
    return {
        name: counters_of(answer[1].decode())
        for name, scrape in scrapes.items()
        if (answer := scrape.result()) is not None and answer[0] == 200
    }


def _get(url: str) -> tuple[int, bytes] | None:
    try:
        response = _http.request("GET", url)
    except urllib3.exceptions.HTTPError:
        return None
    return response.status, response.data


def _figures(text: str) -> dict[str, Any]:
    """Breakers, outbox and queue figures out of a Prometheus text exposition."""
    breakers: dict[str, str] = {}
    outbox: dict[str, float] = {}
    queues: dict[str, dict[str, int]] = {}
    for sample in _samples(text):
        name, labels, value = sample
        if name == "flotilla_http_client_breaker_state":
            breakers[labels.get("target", "?")] = BREAKER_STATES.get(int(value), "unknown")
        elif name in (
            "flotilla_outbox_pending_events",
            "flotilla_outbox_oldest_pending_age_seconds",
        ):
            outbox[name] = value
        elif name == "flotilla_task_queue_messages":
            queue = labels.get("queue", "?").removesuffix(".dead")
            queues.setdefault(queue, {})[labels.get("kind", "work")] = int(value)
    pending = outbox.get("flotilla_outbox_pending_events")
    return {
        "breakers": dict(sorted(breakers.items())),
        "outbox_pending": int(pending) if pending is not None else None,
        "outbox_oldest_seconds": outbox.get("flotilla_outbox_oldest_pending_age_seconds"),
        "queues": [
            Queue(name, kinds.get("work", 0), kinds.get("dead_letter", 0))
            for name, kinds in sorted(queues.items())
        ],
    }


def _samples(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                yield sample.name, dict(sample.labels), float(sample.value)
    except ValueError:  # a malformed exposition: show what was read before it
        return
