"""What a failed call to another service becomes: a problem the caller can answer with.

Each is a :class:`~flotilla.web.errors.Problem`, so a view that does not catch it answers 502,
503 or 504 as problem+json. ``maybe_processed`` tells code that must undo work
(compensation) whether the other service may have acted on the request: ``False`` only
when the request certainly never reached it (the breaker refused it, or no connection
could be opened).
"""

from __future__ import annotations

import math
from typing import Any

from flotilla.resilience.http.retry import Failure
from flotilla.web.errors import GatewayTimeout, Problem, ServiceUnavailable


class DownstreamError(Problem):
    """A call to another service failed."""

    def __init__(
        self, detail: str, *, target: str, maybe_processed: bool, **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)
        self.target = target
        self.maybe_processed = maybe_processed


class DownstreamUnavailable(DownstreamError, ServiceUnavailable):
    """The other service is down or its breaker is open (503, with ``Retry-After``)."""

    code, title = "dependency-unavailable", "Dependency Unavailable"

    def __init__(
        self, detail: str, *, target: str, maybe_processed: bool, retry_after: float
    ) -> None:
        super().__init__(detail, target=target, maybe_processed=maybe_processed)
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))


class DownstreamTimeout(DownstreamError, GatewayTimeout):
    """The other service did not answer in time, or the request's deadline ran out (504)."""

    code, title = "dependency-timeout", "Dependency Timeout"


class BadGateway(DownstreamError):
    """The other service failed (5xx) or answered something unreadable (502)."""

    status, code, title = 502, "bad-gateway", "Bad Gateway"


def error_for(target: str, failure: Failure, *, sent: bool) -> DownstreamError:
    """The problem the last failed attempt of a call to ``target`` becomes.

    ``sent`` is whether any attempt of the call may have reached the service.
    """
    if failure.reason in {"timeout", "deadline"}:
        return DownstreamTimeout(
            f"{target} did not answer in time.", target=target, maybe_processed=True
        )
    if failure.reason == "connection_error" and not sent:
        if failure.deadline:
            return DownstreamTimeout(
                f"{target} could not be reached in time.", target=target, maybe_processed=False
            )
        return DownstreamUnavailable(
            f"{target} cannot be reached.", target=target, maybe_processed=False, retry_after=1.0
        )
    what = f"answered {failure.status}" if failure.status else "dropped the connection"
    return BadGateway(f"{target} {what}.", target=target, maybe_processed=sent)
