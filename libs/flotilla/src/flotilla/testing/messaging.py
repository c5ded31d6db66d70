"""Test helpers for messaging against a real RabbitMQ: a cuttable proxy, queues, workers.

* :class:`~flotilla.testing.proxy.TcpProxy` (re-exported here) stands between a client and
  RabbitMQ; ``cut()`` makes the broker unreachable and ``restore()`` brings it back, without
  stopping the RabbitMQ server other test runs share.
* :class:`Rabbit` declares throw-away queues, reads them and deletes what a test declared.
* :class:`WorkerProcess` runs ``flask tasks worker`` as a child process and stops it by PID;
  :class:`RelayProcess` does the same for ``flask outbox relay``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from flotilla.serving.processes import stop_process
from flotilla.testing.logs import read_json_lines
from flotilla.testing.waiting import wait_until

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
AMQP_URL_ENV = "FLOTILLA_TEST_AMQP_URL"


def amqp_server_url() -> str:
    """The RabbitMQ tests use: ``FLOTILLA_TEST_AMQP_URL`` or the local one."""
    return os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL


class Rabbit:
    """Declare, read and delete queues and exchanges on the test RabbitMQ."""

    def __init__(self, url: str | None = None) -> None:
        self.connection = Connection(url or amqp_server_url(), connect_timeout=5)
        self.channel = self.connection.channel()
        self._queues: set[str] = set()
        self._exchanges: set[str] = set()

    def forget_later(
        self, *, queues: tuple[str, ...] = (), exchanges: tuple[str, ...] = ()
    ) -> None:
        """Delete these (declared by someone else) when the test ends."""
        self._queues.update(queues)
        self._exchanges.update(exchanges)

    def bind_queue(
        self,
        name: str,
        exchange: str,
        routing_key: str = "#",
        arguments: Mapping[str, Any] | None = None,
    ) -> Queue:
        """Declare queue ``name`` bound to the topic exchange ``exchange``."""
        topic = Exchange(exchange, "topic", durable=True)
        queue = Queue(
            name,
            topic,
            routing_key=routing_key,
            durable=True,
            queue_arguments=dict(arguments or {}),
        )
        queue(self.channel).declare()
        self.forget_later(queues=(name,), exchanges=(exchange,))
        return queue

    def take_all(self, name: str) -> list[Any]:
        """Every message now in queue ``name``, acknowledged, in queue order."""
        queue = Queue(name, durable=True)(self.channel)
        messages = []
        while (message := queue.get(no_ack=False)) is not None:
            message.ack()
            messages.append(message)
        return messages

    def count(self, name: str) -> int:
        """Messages ready in the durable queue ``name``, which is declared if missing."""
        self.forget_later(queues=(name,))
        _name, count, _consumers = self.channel.queue_declare(name, durable=True, auto_delete=False)
        return int(count)

    def close(self) -> None:
        """Delete what was declared or handed over, then disconnect."""
        for name in self._queues:
            self.channel.queue_delete(name)
        for name in self._exchanges:
            self.channel.exchange_delete(name)
        self.connection.release()


def event_bodies(messages: list[Any]) -> list[dict[str, Any]]:
    """The event envelopes carried by ``flotilla.event`` task messages."""
    return [orjson.loads(message.body)[0][0] for message in messages]


class WorkerProcess:
    """``flask --app <app> tasks worker`` in its own process group, output to ``log_path``."""

    def __init__(self, app_uri: str, *, env: Mapping[str, str], log_path: Path, cwd: Path) -> None:
        self.command = [sys.executable, "-m", "flask", "--app", app_uri, "tasks", "worker"]
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WorkerProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the worker and wait until it consumes (its ``ready`` log line)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed command line
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            wait_until(self._ready, timeout=30, what=f"worker ready, see {self.log_path}")
        except BaseException:  # a worker that never got ready must not outlive the test
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.process.returncode}")
        return any(" ready" in str(line.get("message", "")) for line in self.log_records())

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as an OOM kill would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL whatever of the group is left."""
        if self.process is None:
            return
        stop_process(self.process, timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines the worker wrote so far (non-JSON lines are skipped)."""
        return read_json_lines(self.log_path)


class RelayProcess(WorkerProcess):
    """``flask --app <app> outbox relay`` in its own process group, output to ``log_path``."""

    def __init__(self, app_uri: str, *, env: Mapping[str, str], log_path: Path, cwd: Path) -> None:
        super().__init__(app_uri, env=env, log_path=log_path, cwd=cwd)
        self.command = [sys.executable, "-m", "flask", "--app", app_uri, "outbox", "relay"]

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the relay exited with {self.process.returncode}")
        return any(line.get("message") == "outbox relay started" for line in self.log_records())
