"""Freed heap memory goes back to the system before workers are forked."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flotilla.serving.memory import prepare_to_fork, release_free_memory, start_trimming


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


OPT_IN_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "sentry_sdk", "celery")
"""What a web worker with tracing and error reports off must not carry (several MiB each)."""


def _loaded_after_building_a_service(
    modules: tuple[str, ...] = OPT_IN_MODULES, **environment: str
) -> set[str]:
    """The ``modules`` a fresh interpreter holds after building ``server_app``."""
    probe = f"import sys, server_app; print(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent), **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def test_a_service_with_tracing_and_reports_off_loads_neither_sdk() -> None:
    assert _loaded_after_building_a_service() == set()


def test_turning_tracing_and_reports_on_loads_their_sdks() -> None:
    loaded = _loaded_after_building_a_service(
        OTEL_TRACES_EXPORTER="console", SENTRY_DSN="https://key@sentry.invalid/1"
    )
    # The tracing SDK itself starts with a worker's first request; its instrumentations
    # (which import Celery) and sentry-sdk are loaded as the app is built.
    assert loaded == {"sentry_sdk", "celery"}


def test_a_service_that_declares_no_rate_limit_does_not_load_the_limits_library() -> None:
    # server_app's views declare no limit; users' do, and load it with their settings.
    assert _loaded_after_building_a_service(("limits", "limits.storage")) == set()
