"""Start the system's processes, watch them, and stop them in tiers: ``make run``'s process care.

Each child runs in a session of its own, so Ctrl-C in a terminal reaches only the runner,
which decides the order things stop in. A signal only sets a flag (:meth:`request_stop`);
every loop here looks at it, so a start-up in progress ends at its next step rather than
leaving a half-started process behind. Children are waited for one by one, by PID; one that
outlives :data:`STOP_TIMEOUT` is killed, and so is anything left in its process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from system import ROOT, Program

STOP_TIMEOUT = 45.0
"""Seconds a process gets to stop: the web servers' graceful timeout (30 s) and some margin."""
POLL_INTERVAL = 0.1


class Stopped(Exception):
    """A stop was requested (Ctrl-C, SIGTERM) while the system was starting or running."""


class Failure(Exception):
    """A process failed to start, or ended on its own: the whole system stops."""

    def __init__(self, name: str, message: str, log: Path | None) -> None:
        super().__init__(f"{name} {message}")
        self.name = name
        self.log = log


@dataclass(frozen=True)
class Step:
    """A set-up command that runs to its end before the programs start."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class Running:
    """A started program and its process."""

    program: Program
    process: subprocess.Popen[bytes]
    log: Path


class Supervisor:
    """The system's child processes, with their logs under ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[Running] = []
        self.stop_requested = False

    def request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        """Signal handler: stop at the next step."""
        self.stop_requested = True

    def log_path(self, name: str) -> Path:
        """Where the output of process ``name`` goes."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"{name}.log"

    def run_all(self, steps: Sequence[Step]) -> None:
        """Run set-up commands (migrations) side by side to their end; a failure stops all."""
        self._check_stop()
        started = []
        for step in steps:
            log = self.log_path(step.name)
            with log.open("ab") as output:
                started.append((step.name, self._spawn(step.command, step.env, output), log))
        codes = [process.wait() for _name, process, _log in started]  # Ctrl-C lets them end
        for (name, _process, log), code in zip(started, codes, strict=True):
            if code != 0:
                raise Failure(name, f"failed with exit code {code}", log)

    def start(self, program: Program) -> Running:
        """Start ``program`` with its output appended to its log."""
        self._check_stop()
        log = self.log_path(program.name)
        with log.open("ab") as output:
            running = Running(program, self._spawn(program.command, program.env, output), log)
        self.running.append(running)
        return running

    def wait_ready(self, group: Sequence[Running], *, timeout: float = 60.0) -> None:
        """Wait until every process of ``group`` is up; a failure or a stop request raises."""
        deadline = time.monotonic() + timeout
        waiting = list(group)
        while waiting:
            self._check_stop()
            for running in self.running:  # any, not only those waited for, may die meanwhile
                self._check_alive(running)
            waiting = [running for running in waiting if not _is_ready(running)]
            if waiting and time.monotonic() > deadline:
                first = waiting[0]
                raise Failure(first.program.name, f"was not up within {timeout:.0f}s", first.log)
            time.sleep(POLL_INTERVAL)

    def watch(self) -> None:
        """Run until a stop request (:class:`Stopped`) or a child's end (:class:`Failure`)."""
        while True:
            self._check_stop()
            for running in self.running:
                self._check_alive(running)
            time.sleep(POLL_INTERVAL * 2)

    def stop(self) -> dict[str, int]:
        """Stop every process, highest tier first, each tier at once; their exit codes.

        A process ended by the very signal sent to stop it (it came before the process set
        up its handler, during start-up) stopped as asked: its code is 0.
        """
        codes: dict[str, int] = {}
        for tier in sorted({running.program.tier for running in self.running}, reverse=True):
            group = [running for running in self.running if running.program.tier == tier]
            for running in group:
                if running.process.poll() is None:
                    running.process.send_signal(running.program.stop_signal)
            for running in group:
                code = _wait(running.process)
                stopped_as_asked = code == -running.program.stop_signal  # before its handler
                codes[running.program.name] = 0 if stopped_as_asked else code
        return codes

    def pids(self) -> dict[str, int]:
        """Each running program's process id."""
        return {running.program.name: running.process.pid for running in self.running}

    def _spawn(
        self, command: Sequence[str], env: Mapping[str, str], output: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise Stopped

    def _check_alive(self, running: Running) -> None:
        code = running.process.poll()
        if code is not None:
            raise Failure(running.program.name, f"exited with code {code}", running.log)


def _is_ready(running: Running) -> bool:
    """Whether the program answers its readiness URL or has logged its start line."""
    program = running.program
    if program.ready_url:
        try:
            with urllib.request.urlopen(program.ready_url, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):  # refused while starting, or 503
            return False
    return any(message.endswith(program.ready_message) for message in _messages(running.log))


def _messages(log: Path) -> list[str]:
    """The ``message`` of every JSON line of ``log``."""
    messages = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                messages.append(str(record.get("message", "")))
    return messages


def _wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` by PID; kill it after :data:`STOP_TIMEOUT`, then its group."""
    try:
        code = process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # a pool child its parent left behind
    return code
