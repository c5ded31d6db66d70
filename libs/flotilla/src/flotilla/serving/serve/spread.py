"""How a server's load spreads over its workers: CPU time and requests per worker, measured.

A pre-fork server can look healthy from outside while one worker does all the work: the
connections of a client that keeps them alive (nginx's upstream pool) stay on whichever
worker accepted them. This module measures the spread from the outside, for any server whose
workers are the direct children of one main process (Gunicorn, granian):

* CPU time of each worker over a window, sampled every ``interval`` seconds from ``/proc``,
  so a worker replaced meanwhile still counts for the time it ran;
* requests each worker served, from the Prometheus multiprocess files every worker writes
  (``counter_<pid>.db`` in ``PROMETHEUS_MULTIPROC_DIR``), when the directory is given.

``python -m flotilla.serving.serve.spread --pid PID --seconds 8 [--metrics-dir DIR]`` prints the
result as JSON; the benchmark imports :class:`SpreadSampler`. ``imbalance`` is the busiest
worker's share times the number of workers: 1.0 is an even spread, 2.0 with two workers is
one worker doing everything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from prometheus_client.multiprocess import MultiProcessCollector

from flotilla.serving.processes import child_pids, cpu_seconds

REQUESTS_SAMPLE = "http_requests_total"


def shares(amounts: Mapping[int, float]) -> dict[int, float]:
    """Each worker's fraction of the total (empty when nothing was done)."""
    total = sum(amounts.values())
    return {pid: amount / total for pid, amount in amounts.items()} if total > 0 else {}


def imbalance(amounts: Mapping[int, float], workers: int) -> float:
    """The busiest worker's share times ``workers``: 1.0 is even, ``workers`` is one alone."""
    found = shares(amounts)
    return max(found.values()) * workers if found else 0.0


def requests_by_worker(metrics_dir: Path) -> dict[int, float]:
    """Requests each worker pid has counted so far, from its multiprocess counter file."""
    counted: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        families = MultiProcessCollector.merge([str(path)], accumulate=False)  # type: ignore[no-untyped-call]
        counted[pid] = sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == REQUESTS_SAMPLE
        )
    return counted


@dataclass(frozen=True)
class Spread:
    """What a :class:`SpreadSampler` saw over its window."""

    workers: int
    """Workers the server runs at once (the count, not the pids seen: some may be new)."""
    cpu: dict[int, float]
    """CPU seconds each worker pid used in the window."""
    requests: dict[int, float]
    """Requests each worker pid served in the window (empty without a metrics directory)."""
    intervals: list[dict[int, float]] = field(repr=False)
    """CPU seconds per worker pid in each sampling interval."""

    @property
    def cpu_imbalance(self) -> float:
        """:func:`imbalance` of CPU time over the whole window."""
        return imbalance(self.cpu, self.workers)

    @property
    def request_imbalance(self) -> float:
        """:func:`imbalance` of requests over the whole window (0 when not counted)."""
        return imbalance(self.requests, self.workers)

    @property
    def interval_imbalance(self) -> float:
        """Median over the sampling intervals of each interval's CPU :func:`imbalance`.

        Catches a load that swaps between workers (one busy, then the other) which the
        whole window's totals would show as even.
        """
        busy = [imbalance(interval, self.workers) for interval in self.intervals if interval]
        return statistics.median(busy) if busy else 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: per-worker figures and the three imbalances."""
        return {
            "workers": self.workers,
            "cpu_seconds": {str(pid): round(value, 3) for pid, value in self.cpu.items()},
            "requests": {str(pid): value for pid, value in self.requests.items()},
            "cpu_imbalance": round(self.cpu_imbalance, 3),
            "request_imbalance": round(self.request_imbalance, 3),
            "interval_imbalance": round(self.interval_imbalance, 3),
        }


class SpreadSampler:
    """Samples the workers of ``main_pid`` while the ``with`` block runs; then :attr:`result`."""

    def __init__(
        self,
        main_pid: int,
        *,
        workers: int | None = None,
        metrics_dir: Path | None = None,
        interval: float = 0.5,
    ) -> None:
        self.main_pid = main_pid
        self.workers = workers or len(child_pids(main_pid))
        self.metrics_dir = metrics_dir
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spread-sampler", daemon=True)
        self._intervals: list[dict[int, float]] = []
        self._requests_before: dict[int, float] = {}
        self._result: Spread | None = None

    def __enter__(self) -> SpreadSampler:
        if self.metrics_dir is not None:
            self._requests_before = requests_by_worker(self.metrics_dir)
        self._thread.start()
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        cpu: dict[int, float] = {}
        for interval in self._intervals:
            for pid, used in interval.items():
                cpu[pid] = cpu.get(pid, 0.0) + used
        self._result = Spread(self.workers, cpu, self._requests(), self._intervals)

    @property
    def result(self) -> Spread:
        """The spread seen; available once the ``with`` block has ended."""
        assert self._result is not None, "the sampler is still running"
        return self._result

    def _requests(self) -> dict[int, float]:
        if self.metrics_dir is None:
            return {}
        after = requests_by_worker(self.metrics_dir)
        served = {pid: count - self._requests_before.get(pid, 0.0) for pid, count in after.items()}
        return {pid: count for pid, count in served.items() if count > 0}

    def _run(self) -> None:
        previous = self._sample()
        while not self._stop.wait(self.interval):
            current = self._sample()
            self._intervals.append(
                {pid: used - previous[pid] for pid, used in current.items() if pid in previous}
            )
            previous = current
        current = self._sample()
        self._intervals.append(
            {pid: used - previous[pid] for pid, used in current.items() if pid in previous}
        )

    def _sample(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in child_pids(self.main_pid)}


def main(argv: Sequence[str] | None = None) -> int:
    """Sample a running server for a while and print the spread as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pid", type=int, required=True, help="the server's main process")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to sample")
    parser.add_argument("--workers", type=int, help="workers at once; default: those running")
    parser.add_argument("--metrics-dir", type=Path, help="its PROMETHEUS_MULTIPROC_DIR")
    arguments = parser.parse_args(argv)
    with SpreadSampler(
        arguments.pid, workers=arguments.workers, metrics_dir=arguments.metrics_dir
    ) as sampler:
        time.sleep(arguments.seconds)
    print(json.dumps(sampler.result.as_dict()))  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
