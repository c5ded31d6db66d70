"""``scripts/run.py`` as a child of a test: the whole system on ports and a var directory apart.

Shared by the tests that start the system as a newcomer runs it (``test_run.py``) and those
that drive it from a browser (``console/``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from flotilla.testing import free_base_port as free_base_port_of
from flotilla.testing import wait_until
from system import BACKGROUND_PROGRAMS, DEFAULT_BASE_PORT, FRONT_DOOR_OFFSET, METRICS_OFFSET, SYSTEM

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


SERVICES = tuple(service.name.upper() for service in SYSTEM.services)
PORT_OFFSETS = (
    *(service.port - DEFAULT_BASE_PORT for service in SYSTEM.web if service.port is not None),
    *range(METRICS_OFFSET, METRICS_OFFSET + len(BACKGROUND_PROGRAMS)),
    FRONT_DOOR_OFFSET,
)
"""Every port the system takes, from the base port: web services, metrics, the front door."""


def free_base_port() -> int:
    """A base port whose every port of the system (:data:`PORT_OFFSETS`) is free."""
    return free_base_port_of(PORT_OFFSETS)


def embedded_environment() -> dict[str, str]:
    """The caller's environment without anything that would leave the embedded default."""
    cleared = {"DATABASE_URL", "REDIS_URL", "BROKER_URL", "SMTP_HOST", "VAR_DIR"}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in cleared and not name.startswith(tuple(f"{s}_" for s in SERVICES))
    }


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot); None if there is none or it
    is a zombie (it has ended and waits for its parent to read its exit code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else fields[19]


def still_running(processes: dict[int, str]) -> set[int]:
    """Which of ``processes`` (from :func:`descendants`) still run, the same process."""
    return {pid for pid, started in processes.items() if start_time(pid) == started}


def command_line(pid: int) -> bytes:
    """The command line of process ``pid``, its arguments separated by NUL bytes."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started directly."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(map(int, (task / "children").read_text().split()))
    return found


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its start time (to tell a reused PID apart)."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        for child in children_of(pending.pop()):
            started = start_time(child)
            if started is not None:
                found[child] = started
                pending.append(child)
    return found


class Runner:
    """``scripts/run.py`` as a child process, its output in a file."""

    def __init__(self, var_dir: Path, base_port: int) -> None:
        self.var_dir = var_dir
        self.base_port = base_port
        self.output = var_dir.parent / "run.out"
        command = [sys.executable, str(SCRIPTS / "run.py"), "--var-dir", str(var_dir)]
        with self.output.open("wb") as output:
            self.process = subprocess.Popen(
                [*command, "--base-port", str(base_port)],
                env=embedded_environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        """What the runner printed so far."""
        return self.output.read_text(errors="replace")

    def wait_for_banner(self) -> None:
        """Wait until the runner printed where the shop answers; fail if it exits first."""

        def printed() -> bool:
            assert self.process.poll() is None, f"the runner exited:\n{self.text()}"
            return "Stop:" in self.text()

        wait_until(printed, timeout=90, what="the runner's banner")

    def interrupt(self) -> int:
        """Ctrl-C; the runner's exit code once it is done."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)

    def kill(self) -> None:
        """Stop what a failed test left running: the runner (Ctrl-C), then anything below it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
