"""Real server processes in tests: :class:`GunicornServer` or :class:`GranianServer` on a
:func:`free_port`, or either by name with :func:`web_server`."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from flotilla.config import WebServer
from flotilla.serving.processes import ProcessExited, child_pids, stop_process, wait_for_http
from flotilla.testing.logs import read_json_lines


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_base_port(offsets: Iterable[int]) -> int:
    """A base port B whose ports B + each of ``offsets`` are all free: a system's block.

    Chosen at random from 20,000 to 32,000 in steps of 100: below Linux's ephemeral range
    (32768 up), so no outgoing connection takes one meanwhile, and far from the default 8000
    a developer's ``make run`` may be using.
    """
    wanted = tuple(offsets)
    for _ in range(100):
        base = random.randrange(20_000, 32_000, 100)  # noqa: S311 - not a secret
        if all(is_free(base + offset) for offset in wanted):
            return base
    raise RuntimeError("no free block of ports")


class ServerProcess:
    """A real web server running ``app_uri`` with the chassis configuration.

    Use as a context manager; output goes to ``log_path`` so tests can read the JSON logs.
    Subclasses say how the server is started and which variables configure it.
    """

    name: ClassVar[WebServer]
    prefix: ClassVar[str]
    """Of the server's settings: ``GUNICORN_``, ``GRANIAN_``."""

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
        self.env = {**os.environ, **self.own_env(), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def own_env(self) -> dict[str, str]:
        """The variables that make this server listen on :attr:`port`."""
        return {self.setting("BIND"): f"127.0.0.1:{self.port}"}

    @classmethod
    def setting(cls, name: str) -> str:
        """The variable of this server's setting ``name``: ``WORKERS`` -> ``GRANIAN_WORKERS``."""
        return f"{cls.prefix}{name}"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The main process's id (Gunicorn's master, granian's main process)."""
        assert self.process is not None, "not started"
        return self.process.pid

    def workers(self) -> list[int]:
        """The worker processes running now."""
        return child_pids(self.pid)

    def start(self, *, ready_timeout: float = 60.0) -> None:
        """Start the server and wait until ``/healthz/ready`` answers 200."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed command line
                self.command(), env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )
        try:
            wait_for_http(f"{self.url}/healthz/ready", timeout=ready_timeout, process=self.process)
        except (TimeoutError, ProcessExited):
            self.stop()
            raise

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the main process."""
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the main process, wait for it, SIGKILL if it hangs; return its exit code."""
        if self.process is None:
            return 0
        return stop_process(self.process, timeout=timeout)

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines the server wrote so far (non-JSON lines are skipped)."""
        return read_json_lines(self.log_path)


class GunicornServer(ServerProcess):
    """A real Gunicorn running ``app_uri`` with ``-c python:flotilla.serving.gunicorn``."""

    name = "gunicorn"
    prefix = "GUNICORN_"

    def command(self) -> list[str]:
        """``gunicorn -c python:flotilla.serving.gunicorn APP`` with this interpreter."""
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:flotilla.serving.gunicorn",
            self.app_uri,
        ]


class GranianServer(ServerProcess):
    """A real granian running ``app_uri`` through ``flotilla serve`` (``WEB_SERVER=granian``)."""

    name = "granian"
    prefix = "GRANIAN_"

    def own_env(self) -> dict[str, str]:
        """Listen on :attr:`port`, under granian."""
        return {**super().own_env(), "WEB_SERVER": "granian"}

    def command(self) -> list[str]:
        """``flotilla serve APP`` with this interpreter."""
        return [sys.executable, "-m", "flotilla", "serve", self.app_uri]


SERVERS: dict[str, type[ServerProcess]] = {
    server.name: server for server in (GunicornServer, GranianServer)
}
"""Every web server the chassis runs, by its ``WEB_SERVER`` name."""


def web_server(name: str, app_uri: str, **kwargs: Any) -> ServerProcess:
    """A :class:`ServerProcess` of the server ``name`` (``gunicorn``, ``granian``)."""
    return SERVERS[name](app_uri, **kwargs)
