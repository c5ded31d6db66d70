"""A refused request: a 429 problem with ``Retry-After``, counted by scope."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from prometheus_client import Counter

from flotilla.observability.metrics import created_once, instruments
from flotilla.web.errors import TooManyRequests
from flotilla.web.limits.items import Bucket

if TYPE_CHECKING:
    from limits import RateLimitItem


def refuse(item: RateLimitItem, bucket: Bucket, retry_after: int) -> NoReturn:
    """Count the refusal and raise :class:`TooManyRequests` naming the limit reached."""
    refusals().labels(bucket.scope).inc()
    raise TooManyRequests(
        f"The limit of {item} was reached; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


@created_once
def refusals() -> Counter:
    """``flotilla_rate_limited_total{scope}``, in the same storage as the request metrics."""
    instruments()  # selects file-backed values under Gunicorn before this metric exists
    return Counter("flotilla_rate_limited", "Requests refused by a rate limit.", ("scope",))
