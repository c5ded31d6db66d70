"""Freed heap memory goes back to the system before workers are forked."""

from __future__ import annotations

import gc
import sys
import time

import pytest

from flotilla.memory import prepare_to_fork, release_free_memory, start_trimming


def resident_kib() -> int:
    """This process's resident set, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_memory_is_handed_back() -> None:
    # Blocks under malloc's mmap threshold, every other one freed: the heap stays as long
    # as before, full of whole free pages between the blocks still in use.
    blocks = [bytearray(64 * 1024) for _ in range(600)]  # zero-filled, so resident
    del blocks[::2]
    holes = resident_kib()
    assert release_free_memory()
    assert resident_kib() < holes - 10_000  # most of the ~19 MiB freed came back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_a_worker_trims_on_its_own_every_interval() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(600)]
    del blocks[::2]
    holes = resident_kib()
    stop = start_trimming(interval=0.05)
    try:
        deadline = time.monotonic() + 5
        while resident_kib() > holes - 10_000 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert resident_kib() < holes - 10_000


def test_objects_made_before_the_fork_are_out_of_the_collectors_reach() -> None:
    made_at_import = [[index] for index in range(1000)]  # tracked, like modules and classes
    try:
        prepare_to_fork()
        assert gc.get_freeze_count() >= len(made_at_import)
    finally:
        gc.unfreeze()
