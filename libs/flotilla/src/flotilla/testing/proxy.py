"""A TCP forwarder tests put between a client and a real server, to cut or slow the link.

``cut()`` makes the server unreachable (open connections drop, new ones are reset) and
``restore()`` brings it back; ``delay`` holds every chunk the server sends for that many
seconds, a slow network or a slow service as the client sees it. The server itself keeps
running untouched, so other tests sharing it are not disturbed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable


class TcpProxy:
    """A TCP forwarder on a free local port to ``target``, which tests can cut, restore, slow."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self.delay = 0.0
        """Seconds each chunk from the server waits before it is passed on to the client."""
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, user: str = "guest", password: str = "guest") -> str:  # noqa: S107 - test default
        """An AMQP URL that goes through the proxy."""
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}//"

    @property
    def http_url(self) -> str:
        """An HTTP base URL that goes through the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        self._cut.set()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._cut.clear()

    def close(self) -> None:
        """Stop listening and drop everything."""
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return  # closed
            if self._cut.is_set():
                _close(client)  # a reset: the client sees "connection refused/reset"
                continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update((client, upstream))
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._pump_slowly, args=(upstream, client), daemon=True).start()

    def _pump_slowly(self, source: socket.socket, sink: socket.socket) -> None:
        _pump(source, sink, lambda: self.delay)


def _pump(
    source: socket.socket, sink: socket.socket, delay: Callable[[], float] = lambda: 0.0
) -> None:
    try:
        while data := source.recv(65536):
            if (seconds := delay()) > 0:
                time.sleep(seconds)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
