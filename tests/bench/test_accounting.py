"""CPU over a window when processes start and end inside it, and how work spread."""

from __future__ import annotations

import pytest

from accounting import Spread, Track, WorkerShare, busiest_per_bucket, component_cpu
from components import Component, Membership
from procfs import ProcessKey, ProcessStat

FAMILY = Component("orders (web)", counts_children=True)
BACKENDS = Component("PostgreSQL", counts_children=False)


def stat(pid: int, own: float, children: float = 0.0) -> ProcessStat:
    return ProcessStat(pid, 1, "python", "S", own_s=own, children_s=children, started=pid)


def track(
    first: ProcessStat,
    last: ProcessStat,
    *,
    component: Component = FAMILY,
    alive: bool = True,
    born_inside: bool = False,
    parent: ProcessKey | None = None,
    worker: bool = False,
) -> Track:
    membership = Membership(component, top=10, worker=worker)
    return Track(membership, first, 0.0, born_inside, last, 8.0, parent, alive)


def test_a_worker_replaced_inside_the_window_is_counted_to_its_end_through_its_master() -> None:
    # The master (10) had 5 s of reaped children before; the old worker (11) had used 3 s at
    # the start and 4.5 s when it ended; the master reaped it (children 5 -> 9.5). The new
    # worker (12) was born inside and used 2 s. The window's CPU: 1.5 + 2 + master's 0.5.
    master = track(stat(10, 1.0, 5.0), stat(10, 1.5, 9.5))
    old = track(stat(11, 3.0), stat(11, 4.2), alive=False, parent=master.last.key)
    new = track(stat(12, 0.1), stat(12, 2.0), born_inside=True, parent=master.last.key)
    tracks = {t.first_seen.key: t for t in (master, old, new)}
    assert component_cpu(tracks)[FAMILY.name] == pytest.approx(0.5 + 1.5 + 2.0)


def test_a_process_whose_parent_is_gone_counts_what_was_last_seen() -> None:
    orphan = track(stat(21, 3.0), stat(21, 3.8), alive=False, parent=(20, 20))
    assert component_cpu({orphan.first_seen.key: orphan})[FAMILY.name] == pytest.approx(0.8)


def test_a_backend_counts_its_own_time_between_first_and_last_sample() -> None:
    ended = track(stat(31, 2.0), stat(31, 2.6), component=BACKENDS, alive=False)
    born = track(stat(32, 0.2), stat(32, 0.7), component=BACKENDS, born_inside=True)
    tracks = {t.first_seen.key: t for t in (ended, born)}
    assert component_cpu(tracks)[BACKENDS.name] == pytest.approx(0.6 + 0.7)


def test_a_worker_above_one_and_a_half_times_its_fair_share_is_flagged() -> None:
    spread = Spread((WorkerShare(1, 8.0, 8.0), WorkerShare(2, 2.0, 8.0)), ())
    assert [worker.pid for worker in spread.flagged()] == [1]
    balanced = Spread((WorkerShare(1, 5.5, 8.0), WorkerShare(2, 4.5, 8.0)), ())
    assert balanced.flagged() == []


def test_a_replaced_worker_is_judged_against_the_time_it_lived() -> None:
    # Three pids over one slot pair: the one that lived half the window did half as much.
    workers = (WorkerShare(1, 4.0, 8.0), WorkerShare(2, 2.0, 4.0), WorkerShare(3, 2.0, 4.0))
    spread = Spread(workers, ())
    assert spread.fair_share(workers[1]) == pytest.approx(0.25)
    assert spread.flagged() == []


def test_the_busiest_worker_per_second_shows_a_funnel_that_swaps_roles() -> None:
    # Second 0: worker a does everything; second 1: worker b. Over the window they are even,
    # but in every second one worker did all the work.
    a = track(stat(1, 0.0), stat(1, 0.9), worker=True)
    a.history = [(0.0, 0.0), (0.9, 0.9), (1.9, 0.9)]
    b = track(stat(2, 0.0), stat(2, 0.9), worker=True)
    b.history = [(0.0, 0.0), (0.9, 0.0), (1.9, 0.9)]
    busiest = busiest_per_bucket([a, b])
    assert busiest == [(1.0, 2), (1.0, 2)]
    assert Spread((WorkerShare(1, 0.9, 2), WorkerShare(2, 0.9, 2)), tuple(busiest)).funnel
