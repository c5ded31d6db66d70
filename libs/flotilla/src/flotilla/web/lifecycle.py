"""The life of one request: its id, its log context and its access log line.

The request id comes from ``X-Request-ID`` when the caller sent a safe one, else it is
generated; it is echoed in the response and carried by every log line of the request. The
context object is also left in the WSGI environ so Gunicorn's access log, written after the
response, can print the same id and user.

These hooks run on every request, so they read the WSGI environ directly (one lookup each)
rather than Flask's ``request.headers`` and ``g``, whose proxies and misses cost several
microseconds apiece; the request's state travels in the environ too.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token

from flask import Flask, Response, request

from flotilla.observability import tracing
from flotilla.observability.logging import info_fast
from flotilla.web import context

log = logging.getLogger("flotilla.access")

ContextToken = Token[context.RequestContext | None]

ENVIRON_KEY = "flotilla.context"
_CONTEXT_TOKEN_KEY = "flotilla.context_token"  # noqa: S105 - a contextvars token, no secret
_STARTED_KEY = "flotilla.started"
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"


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
    environ = request.environ
    request_context = context.RequestContext(
        request_id=context.accept_request_id(environ.get(_REQUEST_ID_ENVIRON)),
        method=environ["REQUEST_METHOD"],
        path=request.path,
    )
    environ[ENVIRON_KEY] = request_context
    environ[_CONTEXT_TOKEN_KEY] = context.begin(request_context)
    environ[_STARTED_KEY] = time.perf_counter()


def _finish(response: Response) -> Response:
    environ = request.environ
    request_context: context.RequestContext | None = environ.get(ENVIRON_KEY)
    if request_context is None:
        return response
    response.headers[context.REQUEST_ID_HEADER] = request_context.request_id
    if _served_by_gunicorn(environ):
        _keep_trace_ids(request_context)
    elif log.isEnabledFor(logging.INFO):
        duration_ms = (time.perf_counter() - environ[_STARTED_KEY]) * 1000
        fields = {"status": response.status_code, "duration_ms": round(duration_ms, 2)}
        info_fast(log, "request finished", fields)
    return response


def _keep_trace_ids(request_context: context.RequestContext) -> None:
    """Gunicorn's access line is written after the request's span ended: it reads them here."""
    ids = tracing.current_ids()
    if ids is not None:
        request_context.extra["trace_id"], request_context.extra["span_id"] = ids


def _served_by_gunicorn(environ: dict[str, object]) -> bool:
    # Gunicorn writes the access line itself, after the body is sent; see flotilla.serving.gunicorn.
    return str(environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn")


def _end(_error: BaseException | None) -> None:
    token: Token[context.RequestContext | None] | None = request.environ.pop(
        _CONTEXT_TOKEN_KEY, None
    )
    if token is not None:
        context.end(token)
