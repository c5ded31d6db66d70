"""The server ``bench/http_client.py`` calls: a bare WSGI function, so the figures are the client's.

``cd bench && gunicorn -c python:flotilla.serving.gunicorn http_target_app:app`` (the benchmark
starts it with :class:`flotilla.testing.GunicornServer`). No Flask and no chassis: whatever the
server spends per request is the same for every client measured, and the less it spends, the more of
each call's time is the client's own.

``/slow`` answers after :data:`SLOW_SECONDS`, a downstream that takes its time, for the
concurrency figures; every other path, ``/healthz/ready`` included, answers :data:`BODY` at
once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

BODY = b'{"id":7,"status":"ok"}'
SLOW_PATH = "/slow"
SLOW_SECONDS = 0.2
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Answer :data:`BODY`, after :data:`SLOW_SECONDS` on :data:`SLOW_PATH`."""
    if environ.get("PATH_INFO") == SLOW_PATH:
        time.sleep(SLOW_SECONDS)
    start_response("200 OK", _HEADERS)
    return [BODY]
