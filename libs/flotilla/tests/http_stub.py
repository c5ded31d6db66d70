"""A real HTTP server on 127.0.0.1 that answers as a test scripts it, and remembers every call."""

from __future__ import annotations

import http.server
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status and JSON body, after ``delay`` seconds."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    delay: float = 0.0
    drop: bool = False
    """Close the connection without answering."""


@dataclass(frozen=True)
class Received:
    """A request as the stub received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0
    """The caller's port: requests with the same one came over the same connection."""


class StubServer(http.server.ThreadingHTTPServer):
    """Answers with the queued replies in order, then with ``default``; records requests.

    ``barrier``, when set, makes every handler wait until that many requests are in flight
    at once, so a test proves concurrency without measuring time.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.received: list[Received] = []
        self.barrier: threading.Barrier | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self.replies.extend(replies)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that gave up (a timeout under test) is expected here."""

    def next_reply(self, received: Received) -> Reply:
        """Record ``received`` and choose its answer."""
        with self._lock:
            self.received.append(received)
            return self.replies.popleft() if self.replies else self.default


class _StubHandler(http.server.BaseHTTPRequestHandler):
    server: StubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service would

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = Received(
            self.command,
            self.path,
            dict(self.headers.items()),
            self.rfile.read(length),
            self.client_address[1],
        )
        reply = self.server.next_reply(received)
        if self.server.barrier is not None:
            self.server.barrier.wait(timeout=10)
        time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        body = orjson.dumps(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # http.server dispatches on these names.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``received`` instead."""


@contextmanager
def serving() -> Iterator[StubServer]:
    """A running :class:`StubServer`, shut down afterwards."""
    server = StubServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
