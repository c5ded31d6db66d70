"""Cache-aside for reads: ``Cache("products").get_or_load(key, load, ttl=60)``.

A read asks the cache first; on a miss it calls ``load`` (the database), stores the result for
``ttl`` seconds and returns it. Writers call :meth:`Cache.delete` after their commit, so the
next read loads the new state. Values are JSON (orjson): what comes back is the JSON form of
what ``load`` returned, the same on a hit and on a miss. :meth:`Cache.get_or_load_bytes` keeps
bytes as they are: a service that caches the rendered answer (the JSON document a read
returns) serves a hit without parsing or rendering anything.

Where entries live:

* **Redis**, when ``REDIS_URL`` is set: shared by every worker and replica, so a delete is
  seen by all of them. Keys are ``flotilla:<SERVICE_NAME>:cache:<namespace>:<key>``: services
  (and test apps) sharing a Redis keep apart, as their rate limits do. Redis decides what to
  evict when its memory is full (``maxmemory-policy``); ``max_entries`` does not apply. The
  scripts below touch an entry and its lease together: one Redis server, not Redis Cluster.
* **Process memory** otherwise: a TTL + LRU mapping of at most ``max_entries`` per worker
  process. A delete reaches only the process that made it, so another worker may serve the
  old value until its TTL ends: acceptable for the embedded default, where TTL bounds
  staleness; production sets ``REDIS_URL``.

A cache must never turn a Redis outage into errors. When Redis fails (connection refused,
0.25 s connect or read timeout) the request loads from the source, and Redis is left alone
for ``RETRY_INTERVAL`` seconds so no later request waits for a timeout; the outage is logged
once when it starts and once when it ends. The pool and that outage guard are the process's
(:mod:`flotilla.resilience.redis_client`): an outage the rate limits meet is skipped by the cache
too, and the other way round. Deletes are always attempted, since a lost delete
leaves a stale entry: a write pays at most one timeout while Redis is down. Entries written
before an outage may be stale when Redis comes back, for at most their TTL.

``None`` from ``load`` (nothing found) is never stored: caching absence would need every
create to invalidate it, and a miss costs no more than the lookup it would save.

Why leases: cache-aside has a well-known race. A read misses and loads the old row, a write
commits and deletes the key, then the read stores the old row, which stays for a whole TTL.
Here a miss takes a short lease on its key before it loads; a delete removes the lease along
with the entry, and a store succeeds only while its own lease still stands. So a value loaded
before a delete is never stored after it. While one caller holds the lease, other misses on
the same key load from the source without storing.

Every lookup is counted in ``flotilla_cache_requests_total{cache, result}``, ``result`` being
``hit``, ``miss`` or ``error`` (the cache could not be asked).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import TypeVar

import orjson
from flask import Flask, current_app
from prometheus_client import Counter

from flotilla.config import ServiceSettings
from flotilla.data.cache.redis_store import RedisStore, cache_fallback
from flotilla.data.cache.stores import LEASE_SECONDS, CacheUnavailable, MemoryStore, Store
from flotilla.observability.metrics import created_once, instruments
from flotilla.resilience.redis_client import RETRY_INTERVAL, shared_redis

__all__ = [
    "LEASE_SECONDS",
    "RETRY_INTERVAL",
    "Cache",
    "CacheUnavailable",
    "MemoryStore",
    "RedisStore",
    "Store",
    "lookups",
]

T = TypeVar("T")


class Cache:
    """A cache namespace of an app; state in ``app.extensions["flotilla.cache.<namespace>"]``.

    Declare it at module level and bind it with :meth:`init_app`; ``clock`` is for tests
    (entries' TTLs, and the Redis outage guard of the users reading it).
    """

    def __init__(
        self,
        namespace: str,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not namespace or ":" in namespace:
            raise ValueError(f"namespace must be a non-empty name without ':', not {namespace!r}")
        self.namespace = namespace
        self.max_entries = max_entries
        self.clock = clock

    @property
    def extension_key(self) -> str:
        """Where the app keeps this namespace's store."""
        return f"flotilla.cache.{self.namespace}"

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Keep ``app``'s entries in ``REDIS_URL``'s Redis, or in process memory if it is empty."""
        store: Store
        if settings.REDIS_URL:
            shared = shared_redis(settings.REDIS_URL)
            fallback = cache_fallback(shared.guard(self.clock), self.namespace)
            prefix = f"flotilla:{settings.SERVICE_NAME}:cache:{self.namespace}"
            store = RedisStore(shared.pool, prefix, fallback)
        else:
            store = MemoryStore(self.max_entries, self.clock)
        app.extensions[self.extension_key] = store

    @property
    def store(self) -> Store:
        """The current app's store."""
        store: Store | None = current_app.extensions.get(self.extension_key)
        if store is None:
            raise RuntimeError(f"cache {self.namespace!r} is not bound: call init_app(app)")
        return store

    def get_or_load(self, key: str, load: Callable[[], T | None], *, ttl: float) -> T | None:
        """The value under ``key``, else ``load()``'s, stored for ``ttl`` seconds unless None.

        ``load`` must return JSON-serialisable data (or None); the caller gets its JSON form.
        Failures of the cache are never raised: the value is loaded instead.
        """
        data = self.get_or_load_bytes(key, lambda: _to_json(load()), ttl=ttl)
        if data is None:
            return None
        loaded: T = orjson.loads(data)
        return loaded

    def get_or_load_bytes(
        self, key: str, load: Callable[[], bytes | None], *, ttl: float
    ) -> bytes | None:
        """The bytes under ``key``, else ``load()``'s, stored for ``ttl`` seconds unless None.

        Failures of the cache are never raised: the value is loaded instead.
        """
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        store = self.store
        try:
            data, lease = store.fetch(key)
        except CacheUnavailable:
            _count(self.namespace, "error")
            return load()
        if data is not None:
            _count(self.namespace, "hit")
            return data
        _count(self.namespace, "miss")
        if lease is None:  # another caller is loading this key and will store it
            return load()
        return _load_and_store(store, key, lease, load, ttl)

    def delete(self, *keys: str) -> None:
        """Forget ``keys``; call after the commit that changed what they hold. Never raises."""
        with contextlib.suppress(CacheUnavailable):  # logged once per outage; TTL bounds it
            self.store.delete(keys)

    def clear(self) -> None:
        """Forget every entry of this namespace (tests, bulk changes). Never raises."""
        with contextlib.suppress(CacheUnavailable):
            self.store.clear()

    def close(self) -> None:
        """Close the process's Redis connections (tests, shutdown); the next call reopens."""
        self.store.close()


def _load_and_store(
    store: Store, key: str, lease: str, load: Callable[[], bytes | None], ttl: float
) -> bytes | None:
    try:
        data = load()
    except BaseException:
        _release_quietly(store, key, lease)  # the next miss may store at once
        raise
    if data is None:
        _release_quietly(store, key, lease)
        return None
    with contextlib.suppress(CacheUnavailable):  # the value is good; only keeping it failed
        store.store(key, lease, data, ttl)
    return data


def _release_quietly(store: Store, key: str, lease: str) -> None:
    with contextlib.suppress(CacheUnavailable):  # the lease expires on its own
        store.release(key, lease)


def _to_json(value: object) -> bytes | None:
    """What is stored for ``value``: its JSON, or None (never stored) for None."""
    return None if value is None else orjson.dumps(value)


def _count(namespace: str, result: str) -> None:
    _lookup_series(namespace, result).inc()


@functools.cache
def _lookup_series(namespace: str, result: str) -> Counter:
    """The labelled counter of one namespace and result, looked up once (namespaces are code)."""
    return lookups().labels(namespace, result)


@created_once
def lookups() -> Counter:
    """``flotilla_cache_requests_total{cache, result}``, in the request metrics' storage."""
    instruments()  # selects file-backed values under Gunicorn before this metric exists
    return Counter(
        "flotilla_cache_requests",
        "Cache lookups by namespace and result: hit, miss or error (cache not asked).",
        ("cache", "result"),
    )
