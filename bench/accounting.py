"""CPU per component over a window, and how the work spread over each server's workers.

Pure arithmetic over what ``sampler`` recorded, so it is tested with made-up processes.

A window's CPU is counted exactly, even for processes that start or end inside it:

* a process of a *family* (``Component.counts_children``) counts its own CPU and that of the
  children it reaped. Alive at the end: its total then minus its total at the start (zero if
  it started inside the window). Ended inside the window while its parent, counted the same
  way, lives on: minus its total at the start, because the parent reaped it and now carries
  its whole life in its own children's time. So a Gunicorn worker recycled mid-window is
  counted to its last tick. Ended with no such parent (a baseline's worker outliving its
  master): its total when last seen minus its total at the start.
* any other process (PostgreSQL's, whose parent reaps every database's backends) counts its
  own CPU between the first and the last time it was seen: a backend that ends inside the
  window loses at most one sampling interval.

How work spreads over workers is read from the same samples, per worker process (by pid, so
replaced workers show as the new pids they are): its share of its server's worker CPU against
its *fair share*, its part of the time workers were alive; and, per second, the busiest
worker's share of that second, which shows a funnel (one worker doing everything while the
other idles) even when recycling swaps the roles every few seconds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from components import Membership
from procfs import ProcessKey, ProcessStat

IMBALANCE = 1.5
"""A worker above this multiple of its fair share is flagged (the issue's bar)."""
BUCKET_S = 1.0
"""Seconds per slice in which the busiest worker's share is read."""
IDLE_BUCKET_S = 0.05
"""A slice in which all workers together used less CPU than this says nothing of balance."""


@dataclass
class Track:
    """One process seen during a window: its first and last samples."""

    membership: Membership
    first_seen: ProcessStat
    first_seen_at: float
    born_inside: bool
    """Started after the window began."""
    last: ProcessStat
    last_seen_at: float
    parent: ProcessKey | None = None
    """The parent it had when first seen, which reaps it when it ends."""
    alive: bool = True
    history: list[tuple[float, float]] = field(default_factory=list)
    """(seconds into the window, own CPU seconds) at every sample, for workers."""

    def cpu_s(self, reaped_by_family: bool) -> float:
        """What this process adds to its component's CPU over the window (see module doc).

        ``reaped_by_family``: it ended inside the window and its parent, which carries it in
        its children's time, is counted with that time.
        """
        if self.membership.component.counts_children:
            start = 0.0 if self.born_inside else self.first_seen.total_s
            end = 0.0 if reaped_by_family else self.last.total_s
            return end - start
        start = 0.0 if self.born_inside else self.first_seen.own_s
        return self.last.own_s - start

    def own_cpu_s(self) -> float:
        """Its own CPU between its first and last samples (from zero if born inside)."""
        return self.last.own_s - (0.0 if self.born_inside else self.first_seen.own_s)


@dataclass(frozen=True)
class WorkerShare:
    """One worker process over a window."""

    pid: int
    cpu_s: float
    alive_s: float


@dataclass(frozen=True)
class Spread:
    """How one server's work spread over its worker processes."""

    workers: tuple[WorkerShare, ...]
    busiest: tuple[tuple[float, int], ...]
    """Per busy second: the busiest worker's share of the workers' CPU, and workers alive."""

    @property
    def cpu_s(self) -> float:
        """All workers' CPU."""
        return sum(worker.cpu_s for worker in self.workers)

    def share(self, worker: WorkerShare) -> float:
        """``worker``'s part of the workers' CPU."""
        return worker.cpu_s / self.cpu_s if self.cpu_s > 0 else 0.0

    def fair_share(self, worker: WorkerShare) -> float:
        """``worker``'s part of the time workers were alive: its share if all were equal."""
        alive = sum(other.alive_s for other in self.workers)
        return worker.alive_s / alive if alive > 0 else 0.0

    def flagged(self) -> list[WorkerShare]:
        """Workers above :data:`IMBALANCE` times their fair share."""
        return [w for w in self.workers if self.share(w) > IMBALANCE * self.fair_share(w)]

    @property
    def busiest_median(self) -> float:
        """The busiest worker's share in the median busy second (0 when none was busy)."""
        return statistics.median(share for share, _ in self.busiest) if self.busiest else 0.0

    @property
    def busiest_fair(self) -> float:
        """A worker's fair share of a second, with as many workers as were usually alive."""
        return 1 / statistics.median(alive for _, alive in self.busiest) if self.busiest else 0.0

    @property
    def funnel(self) -> bool:
        """The busiest worker's median share is above :data:`IMBALANCE` times fair."""
        return bool(self.busiest) and self.busiest_median > IMBALANCE * self.busiest_fair


def component_cpu(tracks: Mapping[ProcessKey, Track]) -> dict[str, float]:
    """CPU seconds per component over the window."""
    totals: dict[str, float] = defaultdict(float)
    for track in tracks.values():
        totals[track.membership.component.name] += track.cpu_s(_reaped_by_family(track, tracks))
    return dict(totals)


def _reaped_by_family(track: Track, tracks: Mapping[ProcessKey, Track]) -> bool:
    """``track`` ended, and its parent is alive and counted with its children's time."""
    parent = tracks.get(track.parent) if track.parent is not None else None
    return (
        not track.alive
        and parent is not None
        and parent.alive
        and parent.membership.component.counts_children
    )


def spreads(tracks: Sequence[Track], window_s: float) -> dict[str, Spread]:
    """Per component that has worker processes below a top process: how work spread."""
    workers: dict[str, list[Track]] = defaultdict(list)
    for track in tracks:
        membership = track.membership
        if membership.worker and membership.top != track.last.pid:
            workers[membership.component.name].append(track)
    return {name: spread_of(group, window_s) for name, group in workers.items()}


def spread_of(workers: Sequence[Track], window_s: float) -> Spread:
    """One server's workers: each one's CPU and time alive, and the busiest per second."""
    shares = tuple(
        WorkerShare(
            pid=track.last.pid,
            cpu_s=track.own_cpu_s(),
            alive_s=min(track.last_seen_at, window_s) - max(track.first_seen_at, 0.0),
        )
        for track in workers
    )
    return Spread(shares, tuple(busiest_per_bucket(workers)))


def busiest_per_bucket(workers: Sequence[Track]) -> list[tuple[float, int]]:
    """Per :data:`BUCKET_S` slice with work: the busiest worker's share, and workers alive."""
    used: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for index, track in enumerate(workers):
        previous = 0.0 if track.born_inside else None
        for at, own in track.history:
            if previous is not None:
                used[int(at // BUCKET_S)][index] += own - previous
            previous = own
    return [
        (max(by_worker.values()) / sum(by_worker.values()), len(by_worker))
        for _, by_worker in sorted(used.items())
        if sum(by_worker.values()) >= IDLE_BUCKET_S
    ]


def sum_components(windows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per component, the CPU of several windows added up."""
    totals: dict[str, float] = defaultdict(float)
    for window in windows:
        for name, seconds in window.items():
            totals[name] += seconds
    return dict(totals)
