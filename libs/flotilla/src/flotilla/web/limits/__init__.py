"""Rate limits for views: ``@rate_limit("5/minute")``, counted in Redis or in process memory.

A limit is declared on the view, directly under the route decorator, and may name a setting
so that operators tune it per environment without touching code::

    @blp.post("/tokens")
    @rate_limit("LOGIN_RATE_LIMIT_PER_ADDRESS")
    @rate_limit("LOGIN_RATE_LIMIT_PER_ACCOUNT", key=account_in_body)
    @blp.arguments(LoginRequest)
    def log_in(credentials): ...

A refused request is a 429 problem with ``Retry-After``. Counts live in Redis when
``REDIS_URL`` is set, shared by every worker and replica. Without it they live in each worker
process, so the effective limit is the limit times the number of workers: acceptable for the
embedded default on a laptop, not for production. ``RATE_LIMITS_ENABLED=false`` turns every
limit off.

The ``limits`` library (the core of Flask-Limiter) does the counting. Flask-Limiter itself is
not used: it keeps one ``Limiter`` per process with its limits attached to view functions, which
does not fit apps that a factory builds many times, each with its own settings.

* :func:`rate_limit` — the declaration on a view (:mod:`.decorator`).
* :class:`Limits` — the extension: an app's storage, counting and refusing (:mod:`.extension`).
* :func:`client_address` — the default bucket key (:mod:`.keys`).
* :func:`parse_limits`, :data:`RateLimitString`, :class:`Bucket` — limit strings and what a
  request is counted against (:mod:`.items`).
* :class:`~flotilla.web.limits.storage.StorageFailover` — Redis, or process memory while
  Redis fails (:mod:`.storage`), made by the first limited request.
* :func:`refusals` — the 429 and its counter (:mod:`.refusal`).

Choices: docs/adr/0011-rate-limits.md; the shared Redis pool and guard: ADR 0028.
"""

from flotilla.resilience.redis_client import RETRY_INTERVAL as REDIS_RETRY_INTERVAL
from flotilla.web.limits.decorator import rate_limit
from flotilla.web.limits.extension import EXTENSION_KEY, Limits, current_limits
from flotilla.web.limits.items import Bucket, RateLimitString, parse_limits
from flotilla.web.limits.keys import client_address
from flotilla.web.limits.refusal import refusals

__all__ = [
    "EXTENSION_KEY",
    "REDIS_RETRY_INTERVAL",
    "Bucket",
    "Limits",
    "RateLimitString",
    "client_address",
    "current_limits",
    "parse_limits",
    "rate_limit",
    "refusals",
]
