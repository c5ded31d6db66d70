"""Helpers for testing Flotilla services against real parts.

* :func:`capture_logs` collects the JSON log records of a block, so tests assert on logs.
* :func:`postgres_database` creates a throw-away PostgreSQL database and drops it afterwards.
* :func:`wait_for_http` (from :mod:`flotilla.processes`) polls a URL until it answers.
* :class:`GunicornServer` starts a real Gunicorn with the chassis config on a free port,
  waits until ``/healthz/ready`` answers, and stops it by PID.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, MetaData, create_engine, make_url, text

from flotilla.logging import JsonFormatter
from flotilla.processes import ProcessExited, stop_process, wait_for_http

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_ENV = "FLOTILLA_TEST_POSTGRES_URL"


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(orjson.loads(self.format(record)))


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect every log record of the block as the dict the JSON formatter would write."""
    handler = _ListHandler()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, previous_level or level))
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def postgres_server_url() -> str:
    """The PostgreSQL server tests use: ``FLOTILLA_TEST_POSTGRES_URL`` or the local one."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


@contextmanager
def postgres_database(server_url: str | None = None) -> Iterator[str]:
    """Create an empty database on the server at ``server_url``; yield its URL; drop it."""
    server_url = server_url or postgres_server_url()
    name = f"flotilla_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_tables(engine: Engine, metadata: MetaData) -> None:
    """Delete every row of ``metadata``'s tables, children first; ids restart on PostgreSQL."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


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
        records = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return records
