"""The life of one request: its id, its log context and its access log line.

The request id comes from ``X-Request-ID`` when the caller sent a safe one, else it is
generated; it is echoed in the response and carried by every log line of the request. The
context object is also left in the WSGI environ so Gunicorn's access log, written after the
response, can print the same id and user.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from flotilla import context

log = logging.getLogger("flotilla.access")

ENVIRON_KEY = "flotilla.context"


class RequestLifecycle:
    """Request id, logging context and the per-request log line."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the hooks on ``app``; they run before and after every other hook."""
        app.extensions["flotilla.lifecycle"] = self
        app.before_request_funcs.setdefault(None, []).insert(0, _begin)
        app.after_request(_finish)
        app.teardown_request(_end)


def _begin() -> None:
    request_context = context.RequestContext(
        request_id=context.accept_request_id(request.headers.get(context.REQUEST_ID_HEADER)),
        method=request.method,
        path=request.path,
    )
    request.environ[ENVIRON_KEY] = request_context
    g.flotilla_context_token = context.begin(request_context)
    g.flotilla_started = time.perf_counter()


def _finish(response: Response) -> Response:
    request_context = context.current()
    if request_context is None:
        return response
    response.headers[context.REQUEST_ID_HEADER] = request_context.request_id
    if not _served_by_gunicorn():
        duration_ms = (time.perf_counter() - g.flotilla_started) * 1000
        log.info(
            "request finished",
            extra={"status": response.status_code, "duration_ms": round(duration_ms, 2)},
        )
    return response


def _served_by_gunicorn() -> bool:
    # Gunicorn writes the access line itself, after the body is sent; see flotilla.gunicorn.
    return str(request.environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn")


def _end(_error: BaseException | None) -> None:
    token = g.pop("flotilla_context_token", None)
    if token is not None:
        context.end(token)
