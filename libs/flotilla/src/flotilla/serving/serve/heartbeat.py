"""Worker heartbeats under granian, and the watchdog that kills a worker whose heart stopped.

granian has no equivalent of Gunicorn's ``timeout``: a worker whose Python is stuck holding
the GIL (a runaway regular expression, a C extension in a loop) keeps its listening socket
and its Rust threads, accepts connections and never answers them. Each worker therefore runs
a thread that writes the time into its slot of a table shared with the main process; that
thread needs the GIL, so it stops exactly when the worker's Python does. The main process's
watchdog SIGKILLs a worker whose slot is older than ``GRANIAN_TIMEOUT`` seconds, as Gunicorn's
master does after ``timeout``, and granian replaces the dead worker.

The table is shared memory made before the workers are forked; ``time.monotonic`` is the
system's monotonic clock, the same in every process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("flotilla.serve")

BEAT_INTERVAL = 1.0
"""Seconds between two heartbeats of a worker."""


@dataclass(frozen=True)
class Beating:
    """A worker as the watchdog sees it: its slot, its pid, when the main process started it."""

    slot: int
    pid: int
    started: float


class Heartbeats:
    """One slot per worker index, holding the monotonic time of that worker's last beat."""

    def __init__(self, slots: int) -> None:
        self._table = multiprocessing.get_context("fork").RawArray("d", slots)

    def beat(self, slot: int) -> None:
        """Record that the worker in ``slot`` is alive now."""
        self._table[slot] = time.monotonic()

    def last(self, slot: int) -> float:
        """When the worker in ``slot`` last beat (0: never)."""
        return float(self._table[slot])

    def start_beating(self, slot: int) -> None:
        """In a worker: beat from a daemon thread for as long as the process runs Python.

        The same thread stops the worker gracefully (SIGTERM to itself) once its main process
        is gone, as a Gunicorn worker does: an orphan would go on accepting connections on
        the shared socket with nobody to replace or stop it.
        """
        parent = os.getppid()

        def run() -> None:
            while os.getppid() == parent:
                self.beat(slot)
                time.sleep(BEAT_INTERVAL)
            log.warning("main process gone, stopping", extra={"main_pid": parent})
            os.kill(os.getpid(), signal.SIGTERM)

        self.beat(slot)
        threading.Thread(target=run, name="flotilla-heartbeat", daemon=True).start()

    def stale(self, workers: Iterable[Beating], timeout: float, now: float) -> list[Beating]:
        """The ``workers`` silent for more than ``timeout`` seconds.

        A worker is judged from when it started, not from a beat an earlier worker left in
        its slot, and only after ``timeout`` seconds of its own life.
        """
        return [
            worker
            for worker in workers
            if now - max(self.last(worker.slot), worker.started) > timeout
        ]


class Watchdog:
    """A thread of the main process that SIGKILLs workers whose heartbeat stopped."""

    def __init__(
        self, heartbeats: Heartbeats, workers: Callable[[], list[Beating]], timeout: float
    ) -> None:
        self.heartbeats = heartbeats
        self.workers = workers
        self.timeout = timeout
        self._stop = threading.Event()
        self._killed: set[int] = set()

    def start(self) -> None:
        """Check every second until :meth:`stop`."""
        threading.Thread(target=self._run, name="flotilla-watchdog", daemon=True).start()

    def stop(self) -> None:
        """No more checks: the server is shutting down and stops its workers itself."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(BEAT_INTERVAL):
            for worker in self.heartbeats.stale(self.workers(), self.timeout, time.monotonic()):
                self._kill(worker)

    def _kill(self, worker: Beating) -> None:
        if worker.pid in self._killed:  # dead, not yet replaced
            return
        self._killed.add(worker.pid)
        # The same words as Gunicorn's master, so one alert rule matches both servers.
        log.critical(f"WORKER TIMEOUT (pid:{worker.pid})", extra={"worker_pid": worker.pid})
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
