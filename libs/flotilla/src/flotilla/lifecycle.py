"""The life of one request: its id, its log context, its access log line, and body guards.

The request id comes from ``X-Request-ID`` when the caller sent a safe one, else it is
generated; it is echoed in the response and carried by every log line of the request. The
context object is also left in the WSGI environ so Gunicorn's access log, written after the
response, can print the same id and user.
"""

from __future__ import annotations

import logging
import time
from typing import TypeVar

from flask import Flask, Response, current_app, g, request

from flotilla import context
from flotilla.errors import PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger("flotilla.access")

ENVIRON_KEY = "flotilla.context"
ViewT = TypeVar("ViewT")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def accepts_any_body(view: ViewT) -> ViewT:
    """Mark a view that takes bodies other than JSON, exempting it from the 415 guard."""
    view.flotilla_any_body = True  # type: ignore[attr-defined]
    return view


class RequestLifecycle:
    """Request id, logging context, per-request log line, and 413/415 guards."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the hooks on ``app``; they run before and after every other hook."""
        app.extensions["flotilla.lifecycle"] = self
        app.before_request_funcs.setdefault(None, []).insert(0, _begin)
        app.before_request(_guard_body)
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


def _guard_body() -> None:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
    if request.method not in _BODY_METHODS or not _has_body():
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if request.is_json or getattr(view, "flotilla_any_body", False):
        return
    raise UnsupportedMediaType("The request body must be application/json.")


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


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
