"""Errors as pages: whatever goes wrong behind a console page, the browser gets HTML.

The chassis answers problems as JSON (``application/problem+json``), which a browser shows
as raw text. Under ``/console/`` the same problems become a page with the status, a plain
explanation and the request id to quote. An expired sign-in goes back to the sign-in page;
a refusal by a service (no such order) says what the service said. Elsewhere (the probes,
``/metrics``) the chassis' JSON stays.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from console import sessions, signin
from console.backends import Refused, SessionRejected
from flotilla import DownstreamError, Problem, problem_from_http_exception, problem_response

log = logging.getLogger(__name__)

UNAVAILABLE = "A service this page needs is unavailable right now. Try again in a moment."


def init_errors(app: Flask) -> None:
    """Render the console's errors as pages."""
    app.register_error_handler(Problem, _problem)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Refused, _refused)
    app.register_error_handler(SessionRejected, _session_rejected)
    app.register_error_handler(redis.RedisError, _sessions_unavailable)  # mid-request


def _is_page() -> bool:
    return request.path.startswith(("/console/", "/static/")) or request.path == "/console"


def _page(status: int, title: str, detail: str) -> Response:
    body = render_template("error.html", status=status, title=title, detail=detail)
    return Response(body, status, mimetype="text/html")


def _problem(problem: Problem) -> Response:
    if not _is_page():
        return problem_response(problem)
    if isinstance(problem, DownstreamError):
        return _page(problem.status, "Service unavailable", UNAVAILABLE)
    shown = problem.status < 500 or problem.status == 503  # 503s say what is unavailable
    detail = problem.detail if shown and problem.detail else problem.title
    return _page(problem.status, problem.title, detail)


def _http_exception(error: HTTPException) -> Response:
    if not _is_page():
        return problem_response(problem_from_http_exception(error))
    if isinstance(error, CSRFError):
        return _page(
            error.code or 400,
            "Form not accepted",
            f"{error.description} Nothing was changed. Go back, reload the page and try again.",
        )
    status = error.code or 500
    detail = error.description if status < 500 else "Something went wrong on our side."
    return _page(status, error.name, detail or "")


def _refused(refusal: Refused) -> Response:
    return _page(refusal.status, "Not done", refusal.detail)


def _sessions_unavailable(error: redis.RedisError) -> Response:
    log.warning("session store unavailable", extra={"error": repr(error)[:300]})
    return _page(503, "Sessions unavailable", UNAVAILABLE)


def _session_rejected(_error: SessionRejected) -> Response:
    sessions.end()
    return signin.to_sign_in()
