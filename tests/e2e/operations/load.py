"""Load for the operations tests: wrk for steady reads, small Python loops where wrk cannot.

* :class:`WrkLoad` runs wrk in the background for a few seconds while the test signals a
  process, then parses what ``statuses.lua`` printed: answers by status and socket errors.
* :class:`OrderLoad` places orders from a few threads, each request with an Idempotency-Key
  of its own, and records which key got which answer. wrk cannot do this: its Lua
  ``response()`` is not told which request an answer belongs to, and the keys of the failed
  requests are exactly what the client must retry.
* :class:`SlowClients` trickles POST bodies over raw sockets, a few bytes every 100 ms; wrk
  only sends whole requests at once.
* :func:`probe` times ordinary requests on fresh connections, each on its own thread, so a
  request stuck behind slow clients does not delay the start of the next one.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

WRK_SCRIPT = Path(__file__).with_name("statuses.lua")
WRK_TIMEOUT = 5
"""Seconds after which wrk counts a request as failed (a timeout error)."""
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run saw: answers by status, socket errors, latency percentiles."""

    requests: int
    seconds: float
    statuses: Mapping[int, int]
    socket_errors: Mapping[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def non_2xx(self) -> int:
        """Answers outside 200-299."""
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def failed(self) -> int:
        """Requests that did not succeed: non-2xx answers plus socket errors."""
        return self.non_2xx + sum(self.socket_errors.values())

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def parse_result(output: str) -> LoadResult:
    """The ``LOAD_RESULT {...}`` line ``statuses.lua`` printed, as a :class:`LoadResult`."""
    match = re.search(r"^LOAD_RESULT (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no LOAD_RESULT line:\n{output}")
    data = json.loads(match.group(1))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        statuses={int(status): count for status, count in data["statuses"].items()},
        socket_errors={name: data[name] for name in SOCKET_ERRORS},
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def wrk_path() -> str:
    """Where wrk is; ``.ci/run`` installs it (Debian's ``wrk`` package)."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (.ci/run does)")
    return found


class WrkLoad:
    """wrk loading ``url`` for ``seconds`` in the background; the result once the block ends.

    ``with WrkLoad(url) as load: ...signal a process...`` then ``load.result``.
    """

    def __init__(
        self, url: str, *, seconds: int = 5, connections: int = 8, threads: int = 2
    ) -> None:
        self.command = [
            wrk_path(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={WRK_TIMEOUT}s",
            f"--script={WRK_SCRIPT}",
            url,
        ]
        self.seconds = seconds
        self._process: subprocess.Popen[str] | None = None
        self._result: LoadResult | None = None

    def __enter__(self) -> WrkLoad:
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._process is not None
        if error is not None:
            self._process.kill()
            self._process.wait()
            return
        output, _ = self._process.communicate(timeout=self.seconds + 30)
        self._result = parse_result(output)

    @property
    def result(self) -> LoadResult:
        """What wrk saw; available after the ``with`` block."""
        assert self._result is not None, "wrk has not finished"
        return self._result


@dataclass(frozen=True)
class Attempt:
    """One request to place an order: its key, the status (None: no answer), the order id."""

    key: str
    status: int | None
    order_id: int | None = None


def order_body(product_id: int) -> bytes:
    """One unit of ``product_id``, the same body for every attempt with a key."""
    return json.dumps({"lines": [{"product_id": product_id, "quantity": 1}]}).encode()


def send_order(
    connection: http.client.HTTPConnection,
    *,
    token: str,
    product_id: int,
    key: str,
    keep_alive: bool = True,
) -> Attempt:
    """POST /api/v1/orders on ``connection`` with ``key``; the attempt, or raise on no answer.

    Without ``keep_alive`` the request asks for the connection to be closed after the answer
    (http.client opens a new one for the next request).
    """
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    if not keep_alive:
        headers["Connection"] = "close"
    connection.request("POST", "/api/v1/orders", order_body(product_id), headers)
    response = connection.getresponse()
    body = response.read()
    order_id = json.loads(body)["id"] if response.status == 201 else None
    return Attempt(key, response.status, order_id)


def place_order(url: str, *, token: str, product_id: int, key: str) -> Attempt:
    """One attempt on a new connection; a status of None when no answer came."""
    connection = _connection(url)
    try:
        return send_order(connection, token=token, product_id=product_id, key=key)
    except (OSError, http.client.HTTPException):
        return Attempt(key, None)
    finally:
        connection.close()


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)


class OrderLoad:
    """``clients`` threads placing orders at ``url`` for ``seconds``, each with a new key.

    Connections are kept alive unless ``keep_alive`` is false. A request that gets no answer
    is recorded with status None and its client reconnects.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str,
        product_id: int,
        clients: int = 4,
        seconds: float = 4.0,
        keep_alive: bool = True,
    ) -> None:
        self.url, self.token, self.product_id = url, token, product_id
        self.clients, self.seconds, self.keep_alive = clients, seconds, keep_alive
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> OrderLoad:
        deadline = time.monotonic() + self.seconds
        self._threads = [
            threading.Thread(target=self._client, args=(deadline,)) for _ in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        for thread in self._threads:
            thread.join(timeout=self.seconds + 30)

    def _client(self, deadline: float) -> None:
        connection = _connection(self.url)
        while time.monotonic() < deadline:
            key = uuid.uuid4().hex
            try:
                attempt = send_order(
                    connection,
                    token=self.token,
                    product_id=self.product_id,
                    key=key,
                    keep_alive=self.keep_alive,
                )
            except (OSError, http.client.HTTPException):
                attempt = Attempt(key, None)
                connection.close()
                connection = _connection(self.url)
            with self._lock:
                self.attempts.append(attempt)
        connection.close()


CHUNK = b"   "
"""What a slow client sends every :data:`CHUNK_INTERVAL`: three bytes of JSON whitespace."""
CHUNK_INTERVAL = 0.1


@dataclass
class SlowClients:
    """``count`` clients POSTing ``path`` at ``address``, each body trickled over ``seconds``.

    The body is whitespace and then ``{}``: valid JSON that fails validation, so a client
    that got its whole body through gets 422 and nothing is written. ``statuses`` holds each
    client's answer (None: none came) once the block ends.
    """

    address: tuple[str, int]
    path: str
    count: int
    seconds: float
    statuses: list[int | None] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> SlowClients:
        self._threads = [threading.Thread(target=self._send) for _ in range(self.count)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        for thread in self._threads:
            thread.join(timeout=self.seconds + 30)

    def _send(self) -> None:
        chunks = round(self.seconds / CHUNK_INTERVAL)
        body = CHUNK * chunks + b"{}"
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        status: int | None = None
        try:
            with socket.create_connection(self.address, timeout=self.seconds + 30) as client:
                client.sendall(head.encode())
                for start in range(0, len(body) - 2, len(CHUNK)):
                    client.sendall(body[start : start + len(CHUNK)])
                    time.sleep(CHUNK_INTERVAL)
                client.sendall(b"{}")
                status = int(client.recv(4096).split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):
            status = None
        self.statuses.append(status)


def probe(
    url: str, *, count: int, interval: float, headers: Mapping[str, str] | None = None
) -> list[float]:
    """Seconds each of ``count`` GETs of ``url`` took, started ``interval`` apart.

    Each runs on a fresh connection and thread; every answer must be 200.
    """
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = []
        for _ in range(count):
            futures.append(pool.submit(_timed_get, url, dict(headers or {})))
            time.sleep(interval)
        return [future.result() for future in futures]


def _timed_get(url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started
