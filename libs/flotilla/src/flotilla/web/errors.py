"""Errors as classes, rendered once as RFC 9457 ``application/problem+json``.

Raise a :class:`Problem` subclass anywhere in a request; :func:`problem_response` turns it
(and every Werkzeug ``HTTPException``) into the same JSON shape::

    {"type": "urn:flotilla:problem:not-found", "title": "Not Found", "status": 404,
     "detail": "user 7 does not exist", "instance": "/api/v1/users/7", "request_id": "..."}

An unexpected exception is logged once, with its traceback and the request id, and becomes a
500 whose body says nothing about the internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from flask import Response, has_request_context, request
from werkzeug.exceptions import HTTPException

from flotilla.web import context

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:flotilla:problem:"


class Problem(Exception):
    """Base of every error a service raises on purpose; subclasses set status, code and title."""

    status: int = 500
    code: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    def to_dict(self) -> dict[str, Any]:
        """The RFC 9457 members of this problem, without request-specific ones."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.code,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extensions)
        return body


class BadRequest(Problem):
    """The request cannot be understood (400)."""

    status, code, title = 400, "bad-request", "Bad Request"


class MalformedJson(BadRequest, ValueError):
    """The body claims to be JSON but does not parse, or is not valid UTF-8 (400).

    Also a ``ValueError``, the type Werkzeug's ``get_json(silent=True)`` swallows: a caller
    that asked for silence gets ``None``, every other caller a problem.
    """

    code, title = "malformed-json", "Malformed JSON"


class JsonTooDeep(MalformedJson):
    """The JSON body nests arrays and objects deeper than the chassis accepts (400)."""

    code, title = "json-too-deep", "JSON Nested Too Deeply"


class Unauthorized(Problem):
    """No valid credentials were presented (401)."""

    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(Problem):
    """The caller is known but not allowed (403)."""

    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    """The resource does not exist (404)."""

    status, code, title = 404, "not-found", "Not Found"


class MethodNotAllowed(Problem):
    """The route exists but not for this method; ``Allow`` lists the methods (405)."""

    status, code, title = 405, "method-not-allowed", "Method Not Allowed"


class Conflict(Problem):
    """The request conflicts with the current state, e.g. a taken name (409)."""

    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    """The body is larger than ``MAX_CONTENT_LENGTH`` (413)."""

    status, code, title = 413, "payload-too-large", "Payload Too Large"


class UnsupportedMediaType(Problem):
    """The body is not of a type the endpoint accepts (415)."""

    status, code, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationFailed(Problem):
    """The body or query is well-formed but invalid; ``errors`` lists each field (422)."""

    status, code, title = 422, "validation-error", "Validation Failed"


class TooManyRequests(Problem):
    """A rate limit was exceeded (429)."""

    status, code, title = 429, "too-many-requests", "Too Many Requests"


class ServiceUnavailable(Problem):
    """A dependency is unavailable; retrying later may succeed (503)."""

    status, code, title = 503, "service-unavailable", "Service Unavailable"


class GatewayTimeout(Problem):
    """A dependency did not answer in time (504)."""

    status, code, title = 504, "gateway-timeout", "Gateway Timeout"


_CODES_BY_STATUS = {
    problem.status: problem.code
    for problem in (
        Problem,
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        TooManyRequests,
        ServiceUnavailable,
        GatewayTimeout,
    )
}


def problem_response(problem: Problem) -> Response:
    """Render ``problem`` as ``application/problem+json`` with the request id and path."""
    body = problem.to_dict()
    request_context = context.current()
    if request_context is not None:
        body["request_id"] = request_context.request_id
    if has_request_context():
        body.setdefault("instance", request.path)
    response = Response(orjson.dumps(body), problem.status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(problem.headers)
    return response


def problem_from_http_exception(error: HTTPException) -> Problem:
    """Translate a Werkzeug exception, including webargs' parse errors, into a problem."""
    status = error.code or 500
    data: Mapping[str, Any] = getattr(error, "data", None) or {}
    if status == 400 and isinstance(getattr(error, "exc", None), ValueError):
        return MalformedJson("The request body is not valid JSON.")
    if status == 422 and "messages" in data:
        errors = list(_flatten_messages(data["messages"]))
        return ValidationFailed("The request has invalid fields.", errors=errors)
    problem = Problem(_detail_of(error, data), headers=_headers_of(error))
    problem.status = status
    problem.code = _CODES_BY_STATUS.get(status, f"http-{status}")
    problem.title = error.name
    return problem


def _detail_of(error: HTTPException, data: Mapping[str, Any]) -> str | None:
    if "message" in data:
        return str(data["message"])
    if (error.code or 500) >= 500:
        return None  # never describe internals
    return error.description


def _headers_of(error: HTTPException) -> dict[str, str]:
    headers = {name: value for name, value in error.get_headers() if name != "Content-Type"}
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    return headers


def _flatten_messages(messages: Any, location: str = "", path: str = "") -> Any:
    """Turn webargs' nested ``{location: {field: [messages]}}`` into a flat list."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if not location:
                yield from _flatten_messages(value, str(key), "")
            else:
                yield from _flatten_messages(value, location, f"{path}.{key}" if path else str(key))
    elif isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        for message in messages:
            yield {"location": location, "field": path or None, "message": message}
    elif isinstance(messages, list):
        for index, item in enumerate(messages):
            yield from _flatten_messages(item, location, f"{path}.{index}" if path else str(index))
    else:
        yield {"location": location, "field": path or None, "message": str(messages)}
