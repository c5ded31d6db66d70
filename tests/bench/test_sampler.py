"""The sampler counts a process that starts and ends inside the window, once, on real processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components import Classifier
from procfs import read_argv
from sampler import CpuSampler

BURN_S = 0.3
CHILD = (
    "import time\n"
    "end = time.process_time() + float(__import__('sys').argv[1])\n"
    "while time.process_time() < end: pass\n"
)
PARENT = (
    "import subprocess, sys\n"
    "input()\n"
    f"subprocess.run([sys.executable, '-c', {CHILD!r}, '{BURN_S}'], check=True)\n"
    "print('done', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.mark.process
def test_a_child_that_burns_cpu_and_ends_inside_the_window_is_counted_once() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdin is not None
        assert parent.stdout is not None
        classifier = Classifier({parent.pid: "family"}, "no_database_", read_argv)
        with CpuSampler(classifier, interval_s=0.05) as sampler:
            parent.stdin.write("\n")
            parent.stdin.flush()
            assert parent.stdout.readline().strip() == "done"  # the child has been reaped
        counted = sampler.result().components["family"]
        parent.stdin.close()
        assert parent.wait(timeout=30) == 0
    # At least what the child burned; far less than twice that (counted once, not also
    # through its parent's children time).
    assert BURN_S <= counted < 2 * BURN_S
    assert any(not track.alive for track in sampler.tracks.values())
