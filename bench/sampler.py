"""CPU per component during a load: ``/proc`` sampled on a thread while the load runs.

``with CpuSampler(classifier) as sampler: run the load`` then ``sampler.result()``. The
first sample is taken when the block starts and the last when it ends, both on the caller's
thread, so the window is exactly the block; in between a thread samples every
:data:`INTERVAL_S` to see processes that start and end inside it (recycled workers,
short-lived backends) and to follow each worker's CPU second by second. What the numbers mean
is in ``accounting``.

Sampling costs this process some CPU (reading a few hundred small files per sample); it is
reported beside the figures, and not counted in them.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from accounting import Spread, Track, component_cpu, spreads
from components import Classifier, Membership
from procfs import ProcessKey, ProcessStat, machine_busy_s, read_stats, uptime_ticks

INTERVAL_S = 0.2


@dataclass(frozen=True)
class CpuWindow:
    """What one window of load cost, per component, and how each server's workers shared it."""

    seconds: float
    components: Mapping[str, float]
    """CPU seconds by component name."""
    shared: frozenset[str]
    """Components that are servers other work on the machine uses too."""
    spreads: Mapping[str, Spread]
    machine_busy_s: float
    """CPU every core spent busy in the window, whoever spent it."""
    sampler_s: float
    """This process's own CPU in the window: the cost of measuring."""

    def with_component(self, name: str, seconds: float) -> CpuWindow:
        """A copy with ``name`` (a load generator, measured apart) added."""
        components = {**self.components, name: self.components.get(name, 0.0) + seconds}
        return CpuWindow(
            self.seconds,
            components,
            self.shared,
            self.spreads,
            self.machine_busy_s,
            self.sampler_s,
        )

    @property
    def total_s(self) -> float:
        """CPU of every component counted."""
        return sum(self.components.values())


class CpuSampler:
    """Samples ``/proc`` from entering the block to leaving it; see the module doc."""

    def __init__(self, classifier: Classifier, interval_s: float = INTERVAL_S) -> None:
        self.classifier = classifier
        self.interval_s = interval_s
        self.tracks: dict[ProcessKey, Track] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._lock = threading.Lock()
        self._started_at = 0.0
        self._ended_at = 0.0
        self._start_ticks = 0
        self._busy = (0.0, 0.0)
        self._own = (0.0, 0.0)
        self._failure: BaseException | None = None

    def __enter__(self) -> CpuSampler:
        self._start_ticks = uptime_ticks()
        self._started_at = time.monotonic()
        self._busy = (machine_busy_s(), 0.0)
        self._own = (_own_cpu_s(), 0.0)
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._failure is not None:
            raise RuntimeError("sampling /proc failed; the window's figures are void") from (
                self._failure
            )
        self.sample()
        self._ended_at = time.monotonic()
        self._busy = (self._busy[0], machine_busy_s())
        self._own = (self._own[0], _own_cpu_s())

    def result(self) -> CpuWindow:
        """The window's figures (after the block has ended)."""
        seconds = self._ended_at - self._started_at
        tracks = list(self.tracks.values())
        return CpuWindow(
            seconds=seconds,
            components=component_cpu(self.tracks),
            shared=frozenset(t.membership.component.name for t in tracks if _shared(t)),
            spreads=spreads(tracks, seconds),
            machine_busy_s=self._busy[1] - self._busy[0],
            sampler_s=self._own[1] - self._own[0],
        )

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self.sample()
        except Exception as error:  # reported by __exit__, on the caller's thread
            self._failure = error

    def sample(self) -> None:
        """Read every process once; start, update or close the tracks of the run's ones."""
        stats = read_stats()
        now = time.monotonic() - self._started_at
        with self._lock:
            seen = set()
            for stat in stats.values():
                membership = self.classifier.classify(stat, stats)
                if membership is not None:
                    seen.add(stat.key)
                    parent = stats.get(stat.ppid)
                    self._update(stat, membership, now, parent.key if parent else None)
            for key, track in self.tracks.items():
                if key not in seen:
                    track.alive = False

    def _update(
        self, stat: ProcessStat, membership: Membership, now: float, parent: ProcessKey | None
    ) -> None:
        track = self.tracks.get(stat.key)
        if track is None:
            track = self.tracks[stat.key] = Track(
                membership=membership,
                first_seen=stat,
                first_seen_at=now,
                born_inside=stat.started >= self._start_ticks,
                last=stat,
                last_seen_at=now,
                parent=parent,
            )
        track.last, track.last_seen_at, track.alive = stat, now, True
        if membership.worker:
            track.history.append((now, stat.own_s))


def _shared(track: Track) -> bool:
    return track.membership.component.shared


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
