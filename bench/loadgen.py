"""Running a load generator (wrk, k6) and measuring the CPU it used, exactly.

The load generator shares the machine's cores with the system it loads, so its CPU is part
of what a request costs on this machine and is reported as a component of its own. It is the
benchmark's child, so ``wait4`` returns its resource usage (every thread, and any child it
reaped) the moment it ends: no sampling needed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Finished:
    """A load generator's output and the CPU it used."""

    stdout: str
    stderr: str
    cpu_s: float


def run_measured(command: Sequence[str], env: Mapping[str, str] | None = None) -> Finished:
    """Run ``command`` to its end (from the repository root, ``env`` joined to this process's
    environment); its output and CPU. A non-zero exit raises with what it printed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            list(command), stdout=out, stderr=err, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: the load must not outlive the benchmark
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{stderr}{stdout}")
    return Finished(stdout, stderr, usage.ru_utime + usage.ru_stime)
