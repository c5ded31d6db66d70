"""A real issuer's JWKS endpoint on 127.0.0.1, for tests that fetch keys over a socket."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from flotilla.auth import SigningKey, jwks_document


class JwksServer(http.server.ThreadingHTTPServer):
    """Serves ``document`` at any path, or answers ``status``, or never answers, as tests set.

    ``requests`` counts the GETs received, so a test can tell a cached key from a refetch.
    """

    daemon_threads = True

    def __init__(self, document: Mapping[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _JwksHandler)
        self.document = document
        self.status = 200
        self.hang = False
        self.requests = 0
        self.release = threading.Event()  # lets hanging handlers finish at teardown

    @property
    def url(self) -> str:
        """Where the key set is served."""
        return f"http://127.0.0.1:{self.server_address[1]}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey) -> None:
        """Serve these keys from now on."""
        self.document = jwks_document(key.public_key for key in keys)


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        self.server.requests += 1
        if self.server.hang:
            self.server.release.wait(timeout=60)
            return
        body = orjson.dumps(self.server.document)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the server's counters, not its log."""


@contextmanager
def serving(document: Mapping[str, Any]) -> Iterator[JwksServer]:
    """A :class:`JwksServer` serving ``document`` from a thread, stopped on exit."""
    server = JwksServer(document)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
