"""Cache-aside on both stores: hits, misses, TTL, LRU, deletes, leases, metrics and Redis outages.

The Redis tests use the real test Redis; each test's keys live under its own service name and
are deleted afterwards. Outages are a closed port (nothing listens) or a proxy that is cut.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from prometheus_client import REGISTRY

from flotilla import ServiceSettings
from flotilla.data.cache import LEASE_SECONDS, RETRY_INTERVAL, Cache, MemoryStore
from flotilla.testing import ManualClock, TcpProxy, capture_logs, free_port, service_redis

BACKENDS = ("memory", "redis")


class Source:
    """A data source that counts its loads and returns what it is told."""

    def __init__(self, value: Any = None) -> None:
        self.value = value if value is not None else {"name": "Mug", "price": 1250}
        self.loads = 0

    def __call__(self) -> Any:
        self.loads += 1
        return self.value


@pytest.fixture
def service_name() -> str:
    """A service name no other test uses, so Redis keys never meet."""
    return f"cache-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_url(service_name: str) -> Iterator[str]:
    """The test Redis; the service's keys are deleted afterwards."""
    with service_redis(service_name) as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    """The clock every cache of a test reads."""
    return ManualClock()


@pytest.fixture
def bind(
    tmp_path: Path, service_name: str, clock: ManualClock
) -> Iterator[Callable[..., tuple[Cache, Flask]]]:
    """Make a cache bound to a new app on ``redis_url`` (empty: memory); closed afterwards."""
    bound: list[tuple[Cache, Flask]] = []

    def make(
        redis_url: str = "", *, max_entries: int = 100, cache: Cache | None = None
    ) -> tuple[Cache, Flask]:
        namespace = f"things{uuid.uuid4().hex[:8]}"
        cache = cache or Cache(namespace, max_entries=max_entries, clock=clock)
        app = Flask(__name__)
        settings = ServiceSettings(SERVICE_NAME=service_name, VAR_DIR=tmp_path, REDIS_URL=redis_url)
        cache.init_app(app, settings)
        bound.append((cache, app))
        return cache, app

    yield make
    for cache, app in bound:
        with app.app_context():
            cache.close()


@pytest.fixture(params=BACKENDS)
def cache(
    request: pytest.FixtureRequest, bind: Callable[..., tuple[Cache, Flask]]
) -> Iterator[Cache]:
    """A cache on each store, inside its app's context."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    cache, app = bind(url)
    with app.app_context():
        yield cache


def lookups(cache: Cache, result: str) -> float:
    """How many lookups of ``cache`` had ``result``."""
    labels = {"cache": cache.namespace, "result": result}
    return REGISTRY.get_sample_value("flotilla_cache_requests_total", labels) or 0.0


def test_a_miss_loads_and_stores_then_hits_do_not_load(cache: Cache) -> None:
    source = Source()
    first = cache.get_or_load("mug", source, ttl=60)
    second = cache.get_or_load("mug", source, ttl=60)
    assert first == second == source.value
    assert source.loads == 1
    assert lookups(cache, "miss") == 1
    assert lookups(cache, "hit") == 1
    assert lookups(cache, "error") == 0


def test_keys_are_separate(cache: Cache) -> None:
    mug, tea = Source({"name": "Mug"}), Source({"name": "Tea"})
    assert cache.get_or_load("mug", mug, ttl=60) == {"name": "Mug"}
    assert cache.get_or_load("tea", tea, ttl=60) == {"name": "Tea"}
    assert cache.get_or_load("mug", mug, ttl=60) == {"name": "Mug"}
    assert (mug.loads, tea.loads) == (1, 1)


def test_a_hit_and_a_miss_give_the_same_json_form(cache: Cache) -> None:
    source = Source({"sizes": (1, 2), "price": 1250})
    assert cache.get_or_load("mug", source, ttl=60) == {"sizes": [1, 2], "price": 1250}
    assert cache.get_or_load("mug", source, ttl=60) == {"sizes": [1, 2], "price": 1250}


def test_delete_makes_the_next_read_load_again(cache: Cache) -> None:
    source = Source()
    cache.get_or_load("mug", source, ttl=60)
    cache.delete("mug", "never-stored")
    source.value = {"name": "Mug", "price": 999}
    assert cache.get_or_load("mug", source, ttl=60) == {"name": "Mug", "price": 999}
    assert source.loads == 2


def test_none_is_not_stored(cache: Cache) -> None:
    calls = []

    def absent() -> None:
        calls.append(1)

    assert cache.get_or_load("ghost", absent, ttl=60) is None
    assert cache.get_or_load("ghost", absent, ttl=60) is None
    assert len(calls) == 2
    assert lookups(cache, "miss") == 2


def test_a_value_loaded_before_a_delete_is_not_stored_after_it(cache: Cache) -> None:
    old = {"price": 100}

    def load_while_a_write_commits() -> dict[str, int]:
        cache.delete("mug")  # the write's delete lands between our load and our store
        return old

    assert cache.get_or_load("mug", load_while_a_write_commits, ttl=60) == old
    fresh = Source({"price": 200})
    assert cache.get_or_load("mug", fresh, ttl=60) == {"price": 200}
    assert fresh.loads == 1
    assert cache.get_or_load("mug", fresh, ttl=60) == {"price": 200}
    assert fresh.loads == 1  # the fresh value was stored


def test_a_miss_while_another_loads_the_key_loads_without_storing(cache: Cache) -> None:
    inner = Source({"price": 1})
    outer_result: list[Any] = []

    def outer() -> dict[str, int]:
        outer_result.append(cache.get_or_load("mug", inner, ttl=60))  # the lease is taken
        return {"price": 2}

    assert cache.get_or_load("mug", outer, ttl=60) == {"price": 2}
    assert outer_result == [{"price": 1}]
    assert cache.get_or_load("mug", inner, ttl=60) == {"price": 2}  # the lease holder stored
    assert inner.loads == 1


def test_a_failed_load_gives_its_lease_back(cache: Cache) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        cache.get_or_load("mug", broken, ttl=60)
    source = Source()
    cache.get_or_load("mug", source, ttl=60)
    cache.get_or_load("mug", source, ttl=60)
    assert source.loads == 1  # stored at once: no lease was left behind


def test_a_value_that_is_not_json_raises_and_stores_nothing(cache: Cache) -> None:
    with pytest.raises(TypeError):
        cache.get_or_load("mug", lambda: {"when": object()}, ttl=60)
    source = Source()
    cache.get_or_load("mug", source, ttl=60)
    assert cache.get_or_load("mug", source, ttl=60) == source.value
    assert source.loads == 1


def test_clear_forgets_every_entry(cache: Cache) -> None:
    source = Source()
    for key in ("a", "b"):
        cache.get_or_load(key, source, ttl=60)
    cache.clear()
    for key in ("a", "b"):
        cache.get_or_load(key, source, ttl=60)
    assert source.loads == 4


def test_a_ttl_must_be_positive(cache: Cache) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        cache.get_or_load("mug", Source(), ttl=0)


def test_namespaces_are_plain_names() -> None:
    for name in ("", "a:b"):
        with pytest.raises(ValueError, match="namespace"):
            Cache(name)


def test_an_unbound_cache_says_so(app: Flask) -> None:
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        Cache("unbound").get_or_load("mug", Source(), ttl=60)


def test_memory_entries_expire_after_their_ttl(
    bind: Callable[..., tuple[Cache, Flask]], clock: ManualClock
) -> None:
    cache, app = bind()
    source = Source()
    with app.app_context():
        cache.get_or_load("mug", source, ttl=30)
        clock.advance(29.9)
        cache.get_or_load("mug", source, ttl=30)
        assert source.loads == 1
        clock.advance(0.1)
        cache.get_or_load("mug", source, ttl=30)
        assert source.loads == 2


def test_memory_keeps_the_most_recently_used_within_its_bound(
    bind: Callable[..., tuple[Cache, Flask]],
) -> None:
    cache, app = bind(max_entries=2)
    sources = {key: Source({"key": key}) for key in "abc"}
    with app.app_context():
        for key in ("a", "b", "a", "c"):  # "a" was used after "b": "b" goes for "c"
            cache.get_or_load(key, sources[key], ttl=60)
        for key in "acb":
            cache.get_or_load(key, sources[key], ttl=60)
        store = cache.store
        assert isinstance(store, MemoryStore)
        assert len(store) == 2
    assert {key: source.loads for key, source in sources.items()} == {"a": 1, "b": 2, "c": 1}


def test_memory_with_no_room_stores_nothing() -> None:
    store = MemoryStore(0)
    _, lease = store.fetch("mug")
    assert lease is not None
    store.store("mug", lease, b"{}", 60)
    assert len(store) == 0
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(-1)


def test_a_lease_left_by_a_dead_loader_expires(clock: ManualClock) -> None:
    store = MemoryStore(10, clock)
    _, abandoned = store.fetch("mug")
    assert abandoned is not None
    assert store.fetch("mug") == (None, None)  # taken: others load without storing
    clock.advance(LEASE_SECONDS)
    _, lease = store.fetch("mug")
    assert lease is not None
    store.store("mug", abandoned, b"1", 60)  # the old holder comes back too late
    store.store("mug", lease, b"2", 60)
    assert store.fetch("mug") == (b"2", None)


def test_redis_keeps_entries_under_the_service_with_their_ttl(
    bind: Callable[..., tuple[Cache, Flask]], redis_url: str, service_name: str
) -> None:
    cache, app = bind(redis_url)
    with app.app_context():
        cache.get_or_load("mug", Source({"price": 1250}), ttl=30)
    key = f"flotilla:{service_name}:cache:{cache.namespace}:mug"
    with redis.Redis.from_url(redis_url) as connection:
        assert connection.get(key) == b'{"price":1250}'
        assert 0 < connection.pttl(key) <= 30_000
        assert connection.keys(f"flotilla:{service_name}:cache-lease:*") == []


def test_redis_entries_are_shared_and_deleted_for_every_app(
    bind: Callable[..., tuple[Cache, Flask]], redis_url: str
) -> None:
    cache, first = bind(redis_url)
    _, second = bind(redis_url, cache=cache)  # another worker of the same service
    source = Source()
    with first.app_context():
        cache.get_or_load("mug", source, ttl=60)
    with second.app_context():
        cache.get_or_load("mug", source, ttl=60)
        assert source.loads == 1  # the other worker's entry
        cache.delete("mug")
    with first.app_context():
        cache.get_or_load("mug", source, ttl=60)
    assert source.loads == 2  # the delete reached every worker


def test_an_unreachable_redis_loads_from_the_source_and_warns_once(
    bind: Callable[..., tuple[Cache, Flask]], clock: ManualClock
) -> None:
    cache, app = bind(f"redis://127.0.0.1:{free_port()}/0")
    source = Source()
    with app.app_context(), capture_logs() as logs:
        for _ in range(3):
            assert cache.get_or_load("mug", source, ttl=60) == source.value
        clock.advance(RETRY_INTERVAL)  # tried again, failing again: the same outage
        assert cache.get_or_load("mug", source, ttl=60) == source.value
        cache.delete("mug")
    assert source.loads == 4
    assert lookups(cache, "error") == 4
    assert lookups(cache, "hit") + lookups(cache, "miss") == 0
    warnings = [record for record in logs if record["logger"] == "flotilla.cache"]
    assert [record["level"] for record in warnings] == ["WARNING"]
    assert warnings[0]["cache"] == cache.namespace
    assert "ConnectionError" in warnings[0]["error"]


def test_the_cache_is_used_again_once_redis_answers(
    bind: Callable[..., tuple[Cache, Flask]], redis_url: str, clock: ManualClock
) -> None:
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    proxy = TcpProxy((host, int(port)))
    cache, app = bind(f"redis://127.0.0.1:{proxy.port}/0")
    source = Source()
    try:
        with app.app_context(), capture_logs() as logs:
            cache.get_or_load("mug", source, ttl=60)
            proxy.cut()
            cache.get_or_load("mug", source, ttl=60)  # the pooled connection is dropped
            cache.get_or_load("mug", source, ttl=60)  # skipped: no wait for a timeout
            proxy.restore()
            cache.get_or_load("mug", source, ttl=60)  # still within the retry interval
            clock.advance(RETRY_INTERVAL)
            cache.get_or_load("mug", source, ttl=60)  # a hit on the entry stored before
    finally:
        proxy.close()
    assert source.loads == 4
    assert (lookups(cache, "miss"), lookups(cache, "error"), lookups(cache, "hit")) == (1, 3, 1)
    messages = [record["message"] for record in logs if record["logger"] == "flotilla.cache"]
    assert messages == ["cache unavailable, loading from the source", "cache available again"]


def test_a_redis_that_never_answers_times_out_into_a_load(
    bind: Callable[..., tuple[Cache, Flask]],
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        cache, app = bind(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        source = Source()
        with app.app_context(), capture_logs() as logs:
            assert cache.get_or_load("mug", source, ttl=60) == source.value
            assert cache.get_or_load("mug", source, ttl=60) == source.value
    assert source.loads == 2
    assert lookups(cache, "error") == 2
    warnings = [record for record in logs if record["logger"] == "flotilla.cache"]
    assert len(warnings) == 1
    assert "Timeout" in warnings[0]["error"]
