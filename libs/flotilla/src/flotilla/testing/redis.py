"""The test Redis, shared by test runs: each service cleans up its own keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@contextmanager
def service_redis(service_name: str) -> Iterator[str]:
    """Yield the test Redis's URL (``REDIS_URL`` or the local one); clean up afterwards.

    Every key of a service whose name starts with ``service_name`` is deleted, so tests that
    give their services unique names never see each other's counters on the shared server.
    """
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    yield url
    with redis.Redis.from_url(url) as connection:
        for key in connection.scan_iter(match=f"flotilla:{service_name}*"):
            connection.delete(key)
