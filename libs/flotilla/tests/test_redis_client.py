"""The process's Redis: one pool for every user, fresh after a fork, one outage guard.

Tests on the real test Redis keep their keys under a service name of their own, deleted
afterwards; an outage is a proxy that is cut.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from flask import Flask

from flotilla import Cache, Limits, ServiceSettings, create_service, rate_limit
from flotilla.data.cache import RedisStore
from flotilla.resilience.http import RedisBreakerState
from flotilla.resilience.redis_client import RETRY_INTERVAL, RedisFallback, RedisGuard, shared_redis
from flotilla.testing import ManualClock, TcpProxy, capture_logs, service_redis

log = logging.getLogger("tests.redis_client")


@pytest.fixture
def service_name() -> str:
    """A name no other test or run uses, so Redis keys never meet."""
    return f"redis-client-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(service_name: str) -> Iterator[str]:
    """The test Redis; the service's keys are deleted afterwards."""
    with service_redis(service_name) as url:
        yield url


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    """A proxy to the test Redis that a test can cut."""
    host, _, port = redis_url.split("//", 1)[1].split("/", 1)[0].rpartition(":")
    proxy = TcpProxy((host, int(port)))
    yield proxy
    proxy.close()


def limited_app(tmp_path: Path, service_name: str, redis_url: str) -> Flask:
    """A service with one limited route and a cache, both on ``redis_url``."""
    app = create_service(
        "redis_client_sample",
        ServiceSettings(SERVICE_NAME=service_name, VAR_DIR=tmp_path, REDIS_URL=redis_url),
    )

    @app.get("/ping")
    @rate_limit("100/minute")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def limit_keys(url: str, service_name: str) -> list[bytes]:
    """The keys the service's limits keep in Redis."""
    with redis.Redis.from_url(url) as connection:
        return list(connection.scan_iter(match=f"flotilla:{service_name}:limits:*"))


def test_limits_cache_breakers_and_readiness_share_one_pool(
    tmp_path: Path, service_name: str, redis_url: str
) -> None:
    app = limited_app(tmp_path, service_name, redis_url)
    cache = Cache("things")
    cache.init_app(app, app.extensions["flotilla.settings"])
    limits: Limits = app.extensions["flotilla.limits"]
    store = app.extensions[cache.extension_key]
    assert isinstance(store, RedisStore)

    pool = shared_redis(redis_url).pool
    assert limits.redis_pool is pool
    assert store.pool is pool
    assert RedisBreakerState.from_url(redis_url).shared.pool is pool
    assert app.test_client().get("/ping").status_code == 200
    assert len(limit_keys(redis_url, service_name)) == 1  # counted in Redis, on that pool
    limits.close()


def connection_id(client: redis.Redis) -> int:
    """The server's id of the connection ``client`` takes from its pool."""
    ident: int = client.client_id()  # type: ignore[assignment]
    return ident


def _connection_ids_in_child(url: str, results: multiprocessing.Queue[tuple[bool, int]]) -> None:
    pool = shared_redis(url).pool
    reset_at_fork = pool.pid == os.getpid()  # before any command could reset it
    results.put((reset_at_fork, connection_id(shared_redis(url).client())))


def test_a_forked_child_gets_a_fresh_pool(redis_url: str) -> None:
    client = shared_redis(redis_url).client()
    parents = connection_id(client)  # the server's id of the parent's pooled connection
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[tuple[bool, int]] = context.Queue()
    child = context.Process(target=_connection_ids_in_child, args=(redis_url, results))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    reset_at_fork, childs = results.get(timeout=5)
    assert reset_at_fork
    assert childs != parents  # a connection of its own
    assert connection_id(client) == parents  # the parent's was neither closed nor used


def test_an_outage_met_by_the_cache_is_skipped_by_the_limits_until_the_retry(
    tmp_path: Path, service_name: str, redis_url: str, proxy: TcpProxy
) -> None:
    url = f"redis://127.0.0.1:{proxy.port}/0"
    app = limited_app(tmp_path, service_name, url)
    clock = ManualClock()
    Limits(app, app.extensions["flotilla.settings"], clock=clock)
    cache = Cache("things", clock=clock)
    cache.init_app(app, app.extensions["flotilla.settings"])
    client = app.test_client()
    with capture_logs() as logs:
        proxy.cut()
        with app.app_context():
            assert cache.get_or_load("mug", lambda: {"name": "Mug"}, ttl=60) == {"name": "Mug"}
        proxy.restore()
        assert client.get("/ping").status_code == 200  # Redis answers, but is not asked
        assert limit_keys(redis_url, service_name) == []
        clock.advance(RETRY_INTERVAL)
        assert client.get("/ping").status_code == 200
        assert len(limit_keys(redis_url, service_name)) == 1
    limits_logs = [record for record in logs if record["logger"] == "flotilla.limits"]
    assert [record["message"] for record in limits_logs] == [
        "rate limit storage unavailable, limiting in process memory",
        "rate limit storage available again",
    ]
    assert "ConnectionError" in limits_logs[0]["error"]  # the error the cache met
    with app.app_context():
        cache.close()


def fallback(guard: RedisGuard, user: str) -> RedisFallback:
    """A user of ``guard`` that logs as ``user``."""
    return RedisFallback(guard, log, unavailable="down", available="up", user=user)


def refuse() -> NoReturn:
    """A Redis call that fails."""
    raise redis.ConnectionError("refused")


def test_one_users_error_makes_every_user_fall_back_for_the_retry_interval() -> None:
    clock = ManualClock()
    guard = RedisGuard(clock=clock, retry_interval=5.0)
    cache, limits = fallback(guard, "cache"), fallback(guard, "limits")
    asked: list[str] = []

    def answer() -> str:
        asked.append("limits")
        return "redis"

    with capture_logs() as logs:
        assert cache.run(refuse, lambda: "source") == "source"
        assert limits.run(answer, lambda: "memory") == "memory"
        clock.advance(4.9)
        assert limits.run(answer, lambda: "memory") == "memory"
        clock.advance(0.1)
        assert limits.run(answer, lambda: "memory") == "redis"
        assert cache.run(lambda: "redis", lambda: "source") == "redis"
    assert asked == ["limits"]
    mine = [record for record in logs if record["logger"] == log.name]
    assert [(r["user"], r["level"], r["message"]) for r in mine] == [
        ("cache", "WARNING", "down"),
        ("limits", "WARNING", "down"),
        ("limits", "INFO", "up"),
        ("cache", "INFO", "up"),
    ]
    assert "ConnectionError" in mine[1]["error"]  # the limits' warning: the cache's error


def test_a_failure_after_the_retry_interval_prolongs_the_same_outage() -> None:
    clock = ManualClock()
    guard = RedisGuard(clock=clock, retry_interval=5.0)
    user = fallback(guard, "cache")
    with capture_logs() as logs:
        for _ in range(3):
            assert user.run(refuse, lambda: "source") == "source"
            clock.advance(5.0)
    assert guard.skipping() is False  # due for a try again
    assert [r["level"] for r in logs if r["logger"] == log.name] == ["WARNING"]
