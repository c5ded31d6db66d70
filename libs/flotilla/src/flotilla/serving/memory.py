"""Memory around the fork: settle the app's objects, hand freed memory back to the system.

Before forking workers, the server calls :func:`prepare_to_fork` once the app is imported:

* ``gc.freeze()`` moves the ~115,000 objects the import made (modules, classes, functions)
  out of the collector's reach. A full collection of a service's process took 34 to 38 ms,
  long enough to show in every percentile above the median; with them frozen it takes
  microseconds, and a worker's collector no longer writes to pages it shares with its
  parent. (Instagram's reason for doing the same; CPython documents it for pre-fork servers.)
* the C heap's free pages go back to the system (below).

Importing a service (a thousand modules) leaves free holes in the C heap: memory that Python
gave back to ``malloc`` but that ``malloc`` keeps, resident, because it is not at the top of
the heap. A worker forked from that process starts with those pages resident too. glibc's
``malloc_trim(0)`` returns them (measured: about 4 MiB of a service's 97 MiB after import);
the servers call it once the app is imported, just before they fork their workers.

A serving worker makes such holes all the time, and bigger ones: a login's Argon2id hash
takes 19 MiB, which ``malloc`` keeps after the hash, in the heap of the thread that ran it.
glibc gives each thread that contends for ``malloc`` an arena of its own, and what is freed
at the top of a thread's arena goes back to the system only past a threshold that grows with
the largest block it has seen: four threads hashing kept 76 MiB for good, which even
``malloc_trim`` does not return. So the servers keep one arena (:func:`use_one_arena`, as
``MALLOC_ARENA_MAX=1`` would), where a freed hash is handed back at once (measured: a login
takes as long, the process keeps 13 MiB instead of 89 after four threads hashed), and each
worker trims every :data:`TRIM_INTERVAL` seconds from a thread of its own
(:func:`start_trimming`). In a Python process threads allocate under the GIL, mostly through
Python's own small-object allocator, so one arena costs them no measurable waiting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the number of arenas (malloc.h)."""


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    function: Callable[[int], int] = trim
    return function


def use_one_arena() -> bool:
    """Let every thread allocate from one glibc arena; call before any thread starts."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, 1))


def prepare_to_fork() -> None:
    """In a server's main process, the app imported: collect, freeze what is left, trim."""
    gc.collect()
    gc.freeze()
    release_free_memory()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the kernel; False where this C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


TRIM_INTERVAL = 10.0
"""Seconds between two trims in a serving worker: a trim takes about a millisecond."""


def start_trimming(interval: float = TRIM_INTERVAL) -> threading.Event:
    """In a worker: trim every ``interval`` seconds from a daemon thread; set the event to stop."""
    stop = threading.Event()
    if _malloc_trim() is None:
        return stop

    def run() -> None:
        while not stop.wait(interval):
            release_free_memory()

    threading.Thread(target=run, name="flotilla-memory-trim", daemon=True).start()
    return stop
