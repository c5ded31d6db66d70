"""The JWKS cache: fetched once, refetched on an unknown kid or age, stale on error.

The cache logic runs with an injected clock and fetch function, so time and the issuer's
answers are exact; the last tests fetch from a real HTTP server on 127.0.0.1, one of which
never answers, to check the timeout and the stale-on-error fallback over a real socket.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from flotilla.auth import JwksCache, KeysUnavailable, SigningKey, jwks_document
from flotilla.auth.jwks import JwksFetchFailed, fetch_jwks, parse_jwks
from flotilla.testing import ManualClock, capture_logs

from .jwks_server import JwksServer, serving

URL = "https://users.internal/.well-known/jwks.json"
MAX_AGE = 300.0
REFETCH_INTERVAL = 10.0


class Issuer:
    """A fetch function serving a JWK Set that tests change, or failing when told."""

    def __init__(self, *keys: SigningKey) -> None:
        self.document: Mapping[str, Any] = jwks_document(key.public_key for key in keys)
        self.failure: Exception | None = None
        self.calls: list[tuple[str, float]] = []

    def publish(self, *keys: SigningKey) -> None:
        """Serve these keys from now on."""
        self.document = jwks_document(key.public_key for key in keys)

    def __call__(self, url: str, timeout: float) -> Mapping[str, Any]:
        self.calls.append((url, timeout))
        if self.failure is not None:
            raise self.failure
        return self.document


@pytest.fixture
def clock() -> ManualClock:
    """Time for the cache."""
    return ManualClock()


@pytest.fixture
def old_key() -> SigningKey:
    """The key the issuer signs with when the test starts."""
    return SigningKey.generate()


@pytest.fixture
def new_key() -> SigningKey:
    """The key the issuer rotates to."""
    return SigningKey.generate()


@pytest.fixture
def issuer(old_key: SigningKey) -> Issuer:
    """An issuer publishing ``old_key``."""
    return Issuer(old_key)


@pytest.fixture
def cache(issuer: Issuer, clock: ManualClock) -> JwksCache:
    """A cache of ``issuer``'s keys on ``clock``."""
    return JwksCache(
        URL,
        timeout=1.5,
        max_age=MAX_AGE,
        refetch_interval=REFETCH_INTERVAL,
        fetch=issuer,
        clock=clock,
    )


def kid_of(cache: JwksCache, kid: str) -> str | None:
    """The ``kid`` of the key the cache returns for ``kid``, None when it has none."""
    key = cache.key_for(kid)
    return None if key is None else str(key.key_id)


# Cache logic, with an injected clock and fetch function


def test_keys_are_fetched_once_and_then_served_from_the_cache(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    for _ in range(5):
        assert kid_of(cache, old_key.kid) == old_key.kid
        clock.advance(MAX_AGE / 10)
    assert issuer.calls == [(URL, 1.5)]


def test_keys_are_fetched_again_once_they_are_max_age_old(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    cache.key_for(old_key.kid)
    clock.advance(MAX_AGE)
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert len(issuer.calls) == 2
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert len(issuer.calls) == 2


def test_an_unknown_kid_refetches_at_once_and_finds_a_rotated_key(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey, new_key: SigningKey
) -> None:
    cache.key_for(old_key.kid)
    clock.advance(REFETCH_INTERVAL)
    issuer.publish(new_key, old_key)
    assert kid_of(cache, new_key.kid) == new_key.kid
    assert kid_of(cache, old_key.kid) == old_key.kid  # retired, still published: still good
    assert len(issuer.calls) == 2


def test_unknown_kids_refetch_at_most_once_per_interval(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    cache.key_for(old_key.kid)
    clock.advance(REFETCH_INTERVAL)
    for attempt in range(20):
        assert cache.key_for(f"made-up-{attempt}") is None
        clock.advance(REFETCH_INTERVAL / 20)
    assert len(issuer.calls) == 2  # the first fetch and one refetch for the made-up kids
    clock.advance(REFETCH_INTERVAL / 20)
    assert cache.key_for("made-up-again") is None
    assert len(issuer.calls) == 3


def test_a_key_the_issuer_no_longer_publishes_is_dropped_at_the_next_refresh(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey, new_key: SigningKey
) -> None:
    cache.key_for(old_key.kid)
    issuer.publish(new_key)
    clock.advance(MAX_AGE)
    assert cache.key_for(old_key.kid) is None
    assert kid_of(cache, new_key.kid) == new_key.kid
    assert len(issuer.calls) == 2


def test_stale_keys_keep_serving_while_the_issuer_fails(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    cache.key_for(old_key.kid)
    issuer.failure = ConnectionError("connection refused")
    clock.advance(MAX_AGE * 10)
    with capture_logs() as logs:
        assert kid_of(cache, old_key.kid) == old_key.kid
    (failure,) = [record for record in logs if record["message"] == "jwks fetch failed"]
    assert failure["level"] == "WARNING"
    assert failure["url"] == URL
    assert failure["stale_keys"] == 1
    assert "connection refused" in failure["error"]
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert len(issuer.calls) == 2  # the failed attempt is not repeated on every lookup


def test_a_document_that_is_not_a_key_set_counts_as_a_failure(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    cache.key_for(old_key.kid)
    issuer.document = ["not", "a", "key", "set"]  # type: ignore[assignment]
    clock.advance(MAX_AGE)
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert len(issuer.calls) == 2


def test_a_cache_that_never_got_keys_reports_them_unavailable(
    cache: JwksCache, issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    issuer.failure = ConnectionError("connection refused")
    with pytest.raises(KeysUnavailable, match=URL):
        cache.key_for(old_key.kid)
    with pytest.raises(KeysUnavailable):
        cache.key_for(old_key.kid)
    assert len(issuer.calls) == 1  # a dead issuer is not asked again on every request
    issuer.failure = None
    clock.advance(REFETCH_INTERVAL)
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert len(issuer.calls) == 2


def test_a_cached_key_is_served_while_another_thread_fetches(
    issuer: Issuer, clock: ManualClock, old_key: SigningKey
) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_fetch(url: str, timeout: float) -> Mapping[str, Any]:
        if issuer.calls:
            started.set()
            release.wait(timeout=30)
        return issuer(url, timeout)

    cache = JwksCache(URL, max_age=MAX_AGE, fetch=slow_fetch, clock=clock)
    cache.key_for(old_key.kid)
    clock.advance(MAX_AGE)
    fetching = threading.Thread(target=cache.key_for, args=(old_key.kid,))
    fetching.start()
    try:
        assert started.wait(timeout=30)
        served: list[str | None] = []
        reader = threading.Thread(target=lambda: served.append(kid_of(cache, old_key.kid)))
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive(), "a lookup of a cached key waited for the fetch"
        assert served == [old_key.kid]
    finally:
        release.set()
        fetching.join(timeout=30)
    assert len(issuer.calls) == 2


def test_only_signing_keys_with_a_kid_are_used() -> None:
    good, encryption = SigningKey.generate(), SigningKey.generate()
    (good_jwk,) = jwks_document([good.public_key])["keys"]
    (encryption_jwk,) = jwks_document([encryption.public_key])["keys"]
    document: dict[str, Any] = {
        "keys": [
            good_jwk,
            {**encryption_jwk, "use": "enc"},
            {key: value for key, value in good_jwk.items() if key != "kid"},
            {"kty": "OKP", "crv": "X448", "x": "AAAA", "kid": "unsupported"},
            "not a key",
        ]
    }
    with capture_logs() as logs:
        keys = parse_jwks(document)
    assert list(keys) == [good.kid]
    skipped = [record for record in logs if record["message"] == "jwks key skipped"]
    assert [record["kid"] for record in skipped] == ["unsupported"]


def test_a_key_set_without_keys_holds_none() -> None:
    assert parse_jwks({}) == {}
    assert parse_jwks({"keys": None}) == {}


# A real HTTP server on 127.0.0.1


@pytest.fixture
def jwks_server(old_key: SigningKey) -> Iterator[JwksServer]:
    """A real HTTP server publishing ``old_key``, running in a thread."""
    with serving(jwks_document([old_key.public_key])) as server:
        yield server


def test_keys_are_fetched_over_http(jwks_server: JwksServer, old_key: SigningKey) -> None:
    assert fetch_jwks(jwks_server.url, 5.0) == jwks_document([old_key.public_key])
    cache = JwksCache(jwks_server.url, timeout=5.0)
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert kid_of(cache, old_key.kid) == old_key.kid
    assert jwks_server.requests == 2  # one by fetch_jwks, one by the cache


def test_an_error_status_is_a_failed_fetch(jwks_server: JwksServer, old_key: SigningKey) -> None:
    jwks_server.status = 500
    with pytest.raises(JwksFetchFailed):
        fetch_jwks(jwks_server.url, 5.0)
    with pytest.raises(KeysUnavailable):
        JwksCache(jwks_server.url, timeout=5.0).key_for(old_key.kid)


def test_a_server_that_never_answers_times_out_as_unavailable(
    silent_url: str, old_key: SigningKey
) -> None:
    cache = JwksCache(silent_url, timeout=0.2)
    with capture_logs() as logs, pytest.raises(KeysUnavailable):
        cache.key_for(old_key.kid)
    (failure,) = [record for record in logs if record["message"] == "jwks fetch failed"]
    assert "timed out" in failure["error"].lower()


def test_stale_keys_serve_when_the_server_stops_answering(
    jwks_server: JwksServer, clock: ManualClock, old_key: SigningKey
) -> None:
    cache = JwksCache(jwks_server.url, timeout=0.2, max_age=MAX_AGE, clock=clock)
    assert kid_of(cache, old_key.kid) == old_key.kid
    jwks_server.hang = True
    clock.advance(MAX_AGE)
    with capture_logs() as logs:
        assert kid_of(cache, old_key.kid) == old_key.kid
    (failure,) = [record for record in logs if record["message"] == "jwks fetch failed"]
    assert "timed out" in failure["error"].lower()
    assert failure["stale_keys"] == 1
    assert jwks_server.requests == 2


def test_an_empty_key_set_counts_as_a_failed_fetch(clock: ManualClock, old_key: SigningKey) -> None:
    issuer = Issuer(old_key)
    cache = JwksCache(URL, max_age=MAX_AGE, refetch_interval=0, fetch=issuer, clock=clock)
    assert cache.key_for(old_key.kid) is not None
    issuer.publish()  # {"keys": []}
    clock.advance(MAX_AGE + 1)
    with capture_logs() as logs:
        assert cache.key_for(old_key.kid) is not None  # the good keys were not wiped
    assert len(issuer.calls) == 2
    assert [record["message"] for record in logs] == ["jwks fetch failed"]
