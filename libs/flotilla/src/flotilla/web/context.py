"""Per-request context kept in ``contextvars`` so logs find it without passing it by hand.

Each Gunicorn thread serves one request at a time and runs in its own context, so values set
here never leak between concurrent requests.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:@=+/-]{1,128}")


@dataclass
class RequestContext:
    """What the logs need to know about the request being served."""

    request_id: str
    method: str = ""
    path: str = ""
    user_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[RequestContext | None] = ContextVar("flotilla_request", default=None)


def current() -> RequestContext | None:
    """The context of the request being served, if any."""
    return _current.get()


def begin(context: RequestContext) -> Token[RequestContext | None]:
    """Make ``context`` current; pass the token to :func:`end` when the request is done."""
    return _current.set(context)


def end(token: Token[RequestContext | None]) -> None:
    """Restore the context that was current before :func:`begin`."""
    _current.reset(token)


def set_user_id(user_id: str | int | None) -> None:
    """Record the authenticated user so every later log line of the request carries it."""
    context = _current.get()
    if context is not None:
        context.user_id = None if user_id is None else str(user_id)


def accept_request_id(candidate: str | None) -> str:
    """Return the caller's request id when it is safe to log and echo, else a new one.

    A request id travels through logs and headers of every service, so only short values of a
    conservative character set are accepted; anything else is replaced rather than rejected,
    because a bad id must never fail the request it labels.
    """
    if candidate and _REQUEST_ID_PATTERN.fullmatch(candidate):
        return candidate
    return new_request_id()


def new_request_id() -> str:
    """A fresh random request id (32 hex characters)."""
    return uuid.uuid4().hex
