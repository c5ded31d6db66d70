"""Body guards: refuse bodies that are too large (413) or not JSON (415) before any view runs.

A ``Content-Length`` over ``MAX_CONTENT_LENGTH`` is refused without reading the body. A
chunked body has no length up front, so it is read into memory up to the limit (which is
what any view would do next) and refused if more follows — Werkzeug would otherwise hand the
view a silently truncated body.

A request to an unknown route or with a wrong method keeps its 404 or 405: the guards only
judge bodies that some view would actually receive.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from flotilla.web.errors import PayloadTooLarge, UnsupportedMediaType

ViewT = TypeVar("ViewT")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def accepts_any_body(view: ViewT) -> ViewT:
    """Mark a view that takes bodies other than JSON, exempting it from the 415 guard."""
    view.flotilla_any_body = True  # type: ignore[attr-defined]
    return view


class BodyGuards:
    """Registers the 413 and 415 checks on an app."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Check every request's body before its view runs."""
        app.extensions["flotilla.guards"] = self
        app.before_request(_guard_body)


def _guard_body() -> None:
    environ = request.environ
    if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
        return  # no body: nothing to judge (most requests; checked without parsing anything)
    if request.routing_exception is not None:
        return
    limit: int | None = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None:
        _refuse_oversized(limit)
    if request.method not in _BODY_METHODS or not _has_body():
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if request.is_json or getattr(view, "flotilla_any_body", False):
        return
    raise UnsupportedMediaType("The request body must be application/json.")


def _refuse_oversized(limit: int) -> None:
    if request.content_length is not None:
        oversized = request.content_length > limit
    elif _is_chunked():
        oversized = _chunked_body_exceeds_limit()
    else:
        return
    if oversized:
        raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")


def _chunked_body_exceeds_limit() -> bool:
    try:
        request.get_data(cache=True)
        return bool(request.stream.read(1))
    except RequestEntityTooLarge:
        return True


def _is_chunked() -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _has_body() -> bool:
    return bool(request.content_length) or _is_chunked()
