"""A Flask app served over real HTTP inside the test process: :func:`serve_app`.

A service that calls others is tested against the real apps of those services, reached over
real sockets, so timeouts, connection errors and headers behave as in production. Starting
them with Gunicorn would cost a process and a second per app; a threaded Werkzeug server in
a daemon thread starts in milliseconds, serves concurrent requests, and shares the test's
process, so the test can still look into the app's database or stop the server to see how
its callers cope with a peer that went away.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def serve_app(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port; yield its base URL; stop it on exit.

    The port is chosen by the kernel when the socket is bound (port 0), so two servers
    started at once never race for the same one. Werkzeug closes the connection after each
    response, so no client's pool keeps reaching the app once the block has ended: from
    then on the port refuses connections.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name=f"serve-{app.name}-{server.port}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
