"""The request deadline: how long the work of a request may still take, across services.

A caller that waits two seconds gains nothing from a callee that works for ten: the answer
arrives after the caller gave up, and the work (a reservation, a query) only adds load. So
each request gets a deadline when it arrives — ``REQUEST_DEADLINE`` seconds, or less when the
caller says so — and every call to another service sends what is left of it in
``X-Deadline-Ms``; the callee adopts it as its own deadline and passes on what remains.

The header carries a duration, not a time of day, so the services' clocks need not agree;
the time a request spends on the wire is not subtracted, which errs on the generous side by
one network hop. A request that arrives with no time left is refused at once with 504.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g, has_request_context, request

from flotilla.config import ServiceSettings
from flotilla.web.errors import GatewayTimeout

DEADLINE_HEADER = "X-Deadline-Ms"
_DEADLINE_ENVIRON = "HTTP_X_DEADLINE_MS"
_MILLISECONDS = re.compile(r"[0-9]{1,9}")  # ASCII digits only; 9 digits is ~11 days


class DeadlineExceeded(GatewayTimeout):
    """The request's deadline passed before its work could be done (504)."""

    code, title = "deadline-exceeded", "Deadline Exceeded"


class Deadlines:
    """Gives every request a deadline, from ``REQUEST_DEADLINE`` and the caller's header."""

    default: float
    """``REQUEST_DEADLINE``, set by :meth:`init_app`, before which no request is served."""

    def __init__(self, app: Flask | None = None, settings: ServiceSettings | None = None) -> None:
        if app is not None and settings is not None:
            self.init_app(app, settings)

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Start each request's clock in a ``before_request`` hook."""
        self.default = settings.REQUEST_DEADLINE
        app.extensions["flotilla.deadlines"] = self
        app.before_request(self._start)

    def _start(self) -> None:
        budget = self.default
        asked = caller_budget(request.environ.get(_DEADLINE_ENVIRON))
        if asked is not None:
            if asked <= 0:
                raise DeadlineExceeded("The caller's deadline had passed when the request arrived.")
            budget = min(budget, asked)
        g.flotilla_deadline = time.monotonic() + budget


def caller_budget(value: str | None) -> float | None:
    """Seconds a caller grants in ``X-Deadline-Ms``; ``None`` when absent or not a number."""
    if value is None or not _MILLISECONDS.fullmatch(value):
        return None
    return int(value) / 1000


@contextmanager
def grace(seconds: float) -> Iterator[None]:
    """A fresh deadline of ``seconds`` for work that must be done although the caller gave up.

    Compensation is such work: releasing a reservation after the request's own deadline ran
    out must still be tried, briefly, rather than refused for lack of time. The request's
    deadline applies again after the block.
    """
    if not has_request_context():
        yield
        return
    previous = g.get("flotilla_deadline")
    g.flotilla_deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        g.flotilla_deadline = previous


def remaining() -> float | None:
    """Seconds left of the current request's deadline; ``None`` outside a request."""
    if not has_request_context():
        return None
    deadline: float | None = g.get("flotilla_deadline")
    return None if deadline is None else deadline - time.monotonic()
