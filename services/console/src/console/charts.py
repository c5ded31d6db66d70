"""Request rate, errors and latency per web service over the last hour, for the charts.

Where Prometheus runs (``PROMETHEUS_URL``) the series come from it, one range query per
figure. Otherwise the console keeps its own: every time the status page refreshes, the
traffic counters of the ``/metrics`` it has just read are kept, at most once per
:data:`SAMPLE_INTERVAL`, in the ``samples`` table, and a rate is the difference between two
consecutive samples. That history covers the time someone had the console open, which is
what a machine without Prometheus can offer; samples older than an hour are deleted as new
ones are written.

Both sources give the same figures on the same grid of :data:`STEP`-second points ending
now: requests per second and 5xx answers per second (probes and scrapes left out), and the
mean latency in milliseconds.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import urllib3
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from console.models import Sample, db

log = logging.getLogger(__name__)

WINDOW = 3600
STEP = 30
SAMPLE_INTERVAL = timedelta(seconds=10)
FIGURES = ("requests", "errors", "latency_ms")
_NOT_TRAFFIC = ("/healthz", "/metrics")
_SELECTOR = 'component="web", endpoint!~"/healthz.*|/metrics"'
PROMETHEUS_QUERIES = {
    "requests": f"sum by (service) (rate(http_requests_total{{{_SELECTOR}}}[2m]))",
    "errors": f'sum by (service) (rate(http_requests_total{{{_SELECTOR}, status=~"5.."}}[2m]))',
    "latency_ms": (
        f"1000 * sum by (service) (rate(http_request_duration_seconds_sum{{{_SELECTOR}}}[2m]))"
        f" / sum by (service) (rate(http_request_duration_seconds_count{{{_SELECTOR}}}[2m]))"
    ),
}

_http = urllib3.PoolManager(maxsize=4, retries=False, timeout=urllib3.Timeout(0.5, 2.0))

Series = dict[str, dict[str, list[float | None]]]
"""figure -> service -> one value (or None) per point of the grid."""


def grid(now: float | None = None) -> list[int]:
    """The points of the last hour, every :data:`STEP` seconds, the last one now."""
    end = int(now if now is not None else time.time())
    return list(range(end - WINDOW + STEP, end + 1, STEP))


# The console's own samples


def record_samples(
    counters: Mapping[str, Mapping[str, float]], now: datetime | None = None
) -> None:
    """Keep each service's ``counters`` (from :func:`counters_of`) if its last sample is old
    enough; samples older than the window are deleted."""
    now = now or datetime.now(UTC)
    with db.autocommit() as connection:
        last = dict(
            connection.execute(
                select(Sample.service, func.max(Sample.taken_at)).group_by(Sample.service)
            ).all()
        )
        rows = [
            {"service": service, "taken_at": now, **figures}
            for service, figures in counters.items()
            if last.get(service) is None or now - last[service] >= SAMPLE_INTERVAL
        ]
        if rows:
            connection.execute(insert(Sample), rows)
            connection.execute(delete(Sample).where(Sample.taken_at < now - timedelta(hours=1)))


def record_samples_if_possible(counters: Mapping[str, Mapping[str, float]]) -> None:
    """:func:`record_samples`, unless the database fails: the status page shows anyway."""
    try:
        record_samples(counters)
    except SQLAlchemyError as error:
        log.warning("samples not recorded", extra={"error": repr(error)[:300]})


def sampled_series(points: list[int]) -> Series:
    """The figures from the console's own samples, on ``points``."""
    since = datetime.fromtimestamp(points[0] - STEP, UTC)
    with db.reading() as session:
        samples = session.scalars(
            select(Sample).where(Sample.taken_at >= since).order_by(Sample.service, Sample.taken_at)
        ).all()
    series: Series = {figure: {} for figure in FIGURES}
    by_service: dict[str, list[Sample]] = {}
    for sample in samples:
        by_service.setdefault(sample.service, []).append(sample)
    for service, taken in by_service.items():
        for figure in FIGURES:
            series[figure][service] = [None] * len(points)
        for before, after in itertools.pairwise(taken):
            _place(series, service, points, before, after)
    return series


def _place(series: Series, service: str, points: list[int], before: Sample, after: Sample) -> None:
    seconds = (after.taken_at - before.taken_at).total_seconds()
    index = (int(after.taken_at.timestamp()) - points[0]) // STEP
    if seconds <= 0 or not 0 <= index < len(points):
        return
    requests = _increase(before.requests, after.requests)
    timed = _increase(before.latency_count, after.latency_count)
    series["requests"][service][index] = round(requests / seconds, 3)
    series["errors"][service][index] = round(_increase(before.errors, after.errors) / seconds, 3)
    latency = _increase(before.latency_sum, after.latency_sum)
    series["latency_ms"][service][index] = round(1000 * latency / timed, 2) if timed else None


def _increase(before: float, after: float) -> float:
    """A counter's growth; after a restart (it went down) all of its new value."""
    return after - before if after >= before else after


def counters_of(text: str) -> dict[str, float]:
    """Requests, 5xx answers and latency sum and count, traffic only, from an exposition."""
    totals = dict.fromkeys(("requests", "errors", "latency_sum", "latency_count"), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("endpoint", "").startswith(_NOT_TRAFFIC):
                continue
            if sample.name == "http_requests_total":
                totals["requests"] += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    totals["errors"] += sample.value
            elif sample.name == "http_request_duration_seconds_sum":
                totals["latency_sum"] += sample.value
            elif sample.name == "http_request_duration_seconds_count":
                totals["latency_count"] += sample.value
    return totals


# Prometheus


def prometheus_series(prometheus_url: str, points: list[int]) -> Series:
    """The figures from Prometheus, on ``points``; a figure it cannot answer stays empty."""
    series: Series = {}
    for figure, query in PROMETHEUS_QUERIES.items():
        fields = {
            "query": query,
            "start": str(points[0]),
            "end": str(points[-1]),
            "step": str(STEP),
        }
        try:
            response = _http.request(
                "GET", f"{prometheus_url.rstrip('/')}/api/v1/query_range", fields=fields
            )
            results = orjson.loads(response.data)["data"]["result"]
        except (urllib3.exceptions.HTTPError, orjson.JSONDecodeError, KeyError, TypeError):
            results = []
        series[figure] = _on_grid(results, points)
    return series


def _on_grid(results: Iterable[Any], points: list[int]) -> dict[str, list[float | None]]:
    on_grid: dict[str, list[float | None]] = {}
    for result in results:
        service = str(result.get("metric", {}).get("service", "?"))
        values: list[float | None] = [None] * len(points)
        for stamp, value in result.get("values", []):
            index = (int(float(stamp)) - points[0]) // STEP
            number = float(value)
            if 0 <= index < len(points) and math.isfinite(number):
                values[index] = round(number, 3)
        on_grid[service] = values
    return on_grid
