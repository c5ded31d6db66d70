"""Real server processes in tests: :class:`GunicornServer` on a :func:`free_port`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flotilla.processes import ProcessExited, stop_process, wait_for_http
from flotilla.testing.logs import read_json_lines


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class GunicornServer:
    """A real Gunicorn running ``app_uri`` with ``-c python:flotilla.gunicorn``.

    Use as a context manager; output goes to ``log_path`` so tests can read the JSON logs.
    """

    def __init__(
        self,
        app_uri: str,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path,
        port: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.app_uri = app_uri
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.cwd = cwd
        self.env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{self.port}", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GunicornServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The master's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, *, ready_timeout: float = 60.0) -> None:
        """Start the master and wait until ``/healthz/ready`` answers 200."""
        command = [sys.executable, "-m", "gunicorn", "-c", "python:flotilla.gunicorn"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed command line
                [*command, self.app_uri], env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )
        try:
            wait_for_http(f"{self.url}/healthz/ready", timeout=ready_timeout, process=self.process)
        except (TimeoutError, ProcessExited):
            self.stop()
            raise

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the master."""
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the master, wait for it, SIGKILL if it hangs; return its exit code."""
        if self.process is None:
            return 0
        return stop_process(self.process, timeout=timeout)

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines the server wrote so far (non-JSON lines are skipped)."""
        return read_json_lines(self.log_path)
