"""``@rate_limit``: the declaration on a view, enforced before the view runs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Response, after_this_request, request

from flotilla.web.api import document_operation
from flotilla.web.limits.extension import Limits, current_limits
from flotilla.web.limits.items import Bucket, limits_of_setting, parse_limits
from flotilla.web.limits.keys import client_address

P = ParamSpec("P")
R = TypeVar("R")


def rate_limit(
    limit: str,
    *,
    key: Callable[[], str | None] | None = None,
    scope: str | None = None,
    only_failures: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit how often a view runs per key; place it directly under the route decorator.

    There it refuses before flask-smorest parses the body, and ``functools.wraps`` carries the
    inner decorators' OpenAPI documentation up to the route.

    ``limit`` is a limits string (``"5/minute"``, ``"10 per hour;100 per day"``) or the name
    of a setting holding one, read at request time so each app follows its own settings.
    ``key`` returns the bucket key (default: :func:`client_address`); ``None`` skips the limit
    for that request. ``scope`` names the bucket (default: the endpoint). With
    ``only_failures``, a request is refused once the limit is used up, but only requests
    answered with a 4xx count. The check and the count are two steps, so concurrent failing
    requests can all pass the check: do not use it where the limit guards against guessing.
    """
    literal = None if limit.isidentifier() else parse_limits(limit)  # a typo fails at import
    key_of = key or client_address

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            limits = current_limits()
            bucket_key = key_of() if limits.enabled else None
            if bucket_key is not None:
                items = literal or limits_of_setting(limit)
                bucket = Bucket(items, scope or request.endpoint or view.__name__, bucket_key)
                _enforce(limits, bucket, only_failures=only_failures)
            return view(*args, **kwargs)

        return document_operation(limited, problems={429: "Rate limit reached."})

    return decorator


def _enforce(limits: Limits, bucket: Bucket, *, only_failures: bool) -> None:
    if not only_failures:
        limits.hit(bucket)
        return
    limits.test(bucket)

    @after_this_request
    def count_failure(response: Response) -> Response:
        if 400 <= response.status_code < 500:
            limits.count(bucket)
        return response
