"""The verifier's memory of verified tokens: what it saves, and what it must never excuse.

Signature checks are counted by the key source that hands out the keys (:class:`CountingKeys`),
so a test sees whether a token was served from memory or verified from scratch without
patching the verifier. Time for the re-checks comes from an injected clock; the one test that
needs PyJWT's own clock to pass a token's expiry waits for it, for about a second.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import jwt
import pytest
from jwt.algorithms import AllowedOKPKeys, OKPAlgorithm

from flotilla import ServiceSettings, create_service
from flotilla.auth import (
    Auth,
    InvalidToken,
    JwksCache,
    KeysUnavailable,
    Principal,
    SigningKey,
    TokenVerifier,
    jwks_document,
    public_jwk,
    public_pem,
)
from flotilla.auth.cache import LruCache
from flotilla.testing import ManualClock

from .forgery import AUDIENCE, ISSUER, craft_token, header_for, valid_claims

LEEWAY = timedelta(seconds=10)


class CountedEd25519(OKPAlgorithm):
    """PyJWT's Ed25519, telling its key source about every signature it checks."""

    def __init__(self, source: CountingKeys) -> None:
        super().__init__()
        self.source = source

    def verify(self, msg: str | bytes, key: AllowedOKPKeys, sig: str | bytes) -> bool:
        """Count, then check as PyJWT would."""
        self.source.signature_checks += 1
        return super().verify(msg, key, sig)


class CountingKeys:
    """A key source tests can change, whose keys count the signatures checked with them."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys: dict[str, jwt.PyJWK] = {}
        self.signature_checks = 0
        self.lookups = 0
        for key in keys:
            self.publish(key)

    def publish(self, key: SigningKey, *, kid: str | None = None) -> None:
        """Trust ``key``, under its own ``kid`` or, as a careless issuer might, under ``kid``."""
        jwk = jwt.PyJWK(public_jwk(key.public_key))
        jwk.Algorithm = CountedEd25519(self)
        self.keys[kid or key.kid] = jwk

    def drop(self, kid: str) -> None:
        """Stop trusting the key ``kid``, as after a leak."""
        del self.keys[kid]

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid``."""
        self.lookups += 1
        return self.keys.get(kid)


@pytest.fixture
def signing_key() -> SigningKey:
    """The issuer's key."""
    return SigningKey.generate()


@pytest.fixture
def keys(signing_key: SigningKey) -> CountingKeys:
    """A key source trusting ``signing_key``."""
    return CountingKeys(signing_key)


@pytest.fixture
def clock() -> ManualClock:
    """POSIX time for the verifier's re-checks, starting at the real time."""
    return ManualClock(time.time())


@pytest.fixture
def verifier(keys: CountingKeys, clock: ManualClock) -> TokenVerifier:
    """A verifier remembering up to 8 tokens, re-checking them against ``keys`` and ``clock``."""
    return TokenVerifier(
        keys, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY, cache_size=8, clock=clock
    )


def token_for(key: SigningKey, *, signed_by: SigningKey | None = None, **overrides: Any) -> str:
    """A good access token naming ``key``, signed by it unless ``signed_by``, with ``overrides``.

    Its claims are :func:`forgery.valid_claims` without the ``jti``, unless ``overrides`` give one.
    """
    claims = valid_claims(**{"jti": None, **overrides})
    return craft_token(header_for(key), claims, (signed_by or key).private_key.sign)


def rejection(verifier: TokenVerifier, token: str) -> str:
    """Why ``verifier`` refuses ``token``; fails if it accepts it."""
    with pytest.raises(InvalidToken) as raised:
        verifier.verify(token)
    return raised.value.description


# What the cache saves


def test_a_repeated_token_is_answered_without_checking_its_signature_again(
    signing_key: SigningKey, keys: CountingKeys, verifier: TokenVerifier
) -> None:
    token = token_for(signing_key)
    first = verifier.verify(token)
    assert keys.signature_checks == 1
    second = verifier.verify(token)
    assert second is first
    assert keys.signature_checks == 1
    assert keys.lookups == 2  # the key is still asked for on every use


def test_a_remembered_principal_cannot_be_altered_for_later_requests(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    principal = verifier.verify(token_for(signing_key))
    with pytest.raises(TypeError):
        cast(dict[str, Any], principal.claims)["sub"] = "2"
    assert principal.claims["sub"] == "1"


def test_a_cache_size_of_zero_checks_every_signature(
    signing_key: SigningKey, keys: CountingKeys
) -> None:
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, cache_size=0)
    token = token_for(signing_key)
    for _ in range(3):
        assert verifier.verify(token).user_id == 1
    assert keys.signature_checks == 3
    assert verifier.cache_size == 0


def test_the_least_recently_used_token_is_forgotten_at_the_size_bound(
    signing_key: SigningKey, keys: CountingKeys, clock: ManualClock
) -> None:
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, cache_size=2, clock=clock)
    first, second, third = (token_for(signing_key, sub=f"{n}") for n in (1, 2, 3))
    verifier.verify(first)
    verifier.verify(second)
    verifier.verify(first)  # first is now the most recently used
    verifier.verify(third)  # so second is forgotten
    assert keys.signature_checks == 3
    verifier.verify(first)
    verifier.verify(third)
    assert keys.signature_checks == 3
    assert verifier.verify(second).user_id == 2
    assert keys.signature_checks == 4


def test_the_setting_sizes_the_cache_of_the_chassis_verifier(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    def verifier_of(settings: ServiceSettings) -> TokenVerifier:
        auth: Auth = create_service("auth_cache", settings).extensions["flotilla.auth"]
        assert auth.verifier is not None
        return auth.verifier

    pem = public_pem(signing_key.public_key)
    default = ServiceSettings(SERVICE_NAME="auth-cache", VAR_DIR=tmp_path, AUTH_PUBLIC_KEYS=pem)
    off = ServiceSettings(
        SERVICE_NAME="auth-cache", VAR_DIR=tmp_path, AUTH_PUBLIC_KEYS=pem, AUTH_TOKEN_CACHE_SIZE=0
    )
    assert verifier_of(default).cache_size == 4096
    assert verifier_of(off).cache_size == 0


# What every use re-checks: time


def test_a_remembered_token_is_refused_once_it_has_expired(
    signing_key: SigningKey, keys: CountingKeys
) -> None:
    verifier = TokenVerifier(
        keys, issuer=ISSUER, audience=AUDIENCE, leeway=timedelta(0), cache_size=8
    )
    if time.time() % 1 > 0.8:  # leave the first verification most of a second
        time.sleep(1 - time.time() % 1)
    expires = int(time.time()) + 1
    token = token_for(signing_key, iat=expires - 900, exp=expires)
    assert verifier.verify(token).user_id == 1
    time.sleep(max(0.0, expires - time.time()) + 0.01)
    assert rejection(verifier, token) == "The token has expired."
    assert keys.signature_checks == 2  # verified from scratch, not answered from memory


def test_a_remembered_token_is_verified_again_from_its_expiry_plus_the_leeway(
    signing_key: SigningKey, keys: CountingKeys, clock: ManualClock, verifier: TokenVerifier
) -> None:
    expires = int(time.time()) + 900
    token = token_for(signing_key, exp=expires)
    verifier.verify(token)
    clock.now = expires + LEEWAY.total_seconds() - 0.001  # still within the leeway
    verifier.verify(token)
    assert keys.signature_checks == 1
    clock.now = expires + LEEWAY.total_seconds()  # where PyJWT would call it expired
    verifier.verify(token)  # PyJWT's clock still says valid, so full verification accepts
    assert keys.signature_checks == 2


def test_a_remembered_token_is_verified_again_when_the_clock_is_set_back(
    signing_key: SigningKey, keys: CountingKeys, clock: ManualClock, verifier: TokenVerifier
) -> None:
    issued = int(time.time())
    token = token_for(signing_key, iat=issued, nbf=issued + 5)
    verifier.verify(token)
    clock.now = issued + 5 - LEEWAY.total_seconds()  # as early as PyJWT would accept it
    verifier.verify(token)
    assert keys.signature_checks == 1
    clock.now -= 0.001
    verifier.verify(token)
    assert keys.signature_checks == 2


# What every use re-checks: the key


def test_a_remembered_token_is_refused_as_soon_as_its_key_is_dropped(
    signing_key: SigningKey, keys: CountingKeys, verifier: TokenVerifier
) -> None:
    other = SigningKey.generate()
    keys.publish(other)
    token, other_token = token_for(signing_key), token_for(other)
    verifier.verify(token)
    verifier.verify(other_token)
    dropped = keys.keys[signing_key.kid]
    keys.drop(signing_key.kid)
    assert rejection(verifier, token) == "The token is signed with an unknown key."
    assert rejection(verifier, token) == "The token is signed with an unknown key."
    assert verifier.verify(other_token).user_id == 1
    assert keys.signature_checks == 2
    keys.keys[signing_key.kid] = dropped  # the very same key object back: the token was
    assert verifier.verify(token).user_id == 1  # forgotten, so it is verified again
    assert keys.signature_checks == 3


def test_a_remembered_token_is_refused_when_its_kid_now_names_another_key(
    signing_key: SigningKey, keys: CountingKeys, verifier: TokenVerifier
) -> None:
    token = token_for(signing_key)
    verifier.verify(token)
    keys.publish(SigningKey.generate(), kid=signing_key.kid)
    assert rejection(verifier, token) == "The token signature is invalid."


def test_a_key_dropped_from_the_jwks_stops_remembered_tokens_at_the_next_fetch(
    signing_key: SigningKey,
) -> None:
    published = {"document": jwks_document([signing_key.public_key])}
    monotonic = ManualClock(time.time())
    source = JwksCache(
        "https://users.internal/.well-known/jwks.json",
        max_age=300.0,
        fetch=lambda url, timeout: published["document"],
        clock=monotonic,
    )
    verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE, cache_size=8)
    token = token_for(signing_key)
    first = verifier.verify(token)
    monotonic.advance(300.0)  # the key set is stale; the same key is fetched again
    assert verifier.verify(token) is not first  # a new key object: verified from scratch
    assert verifier.verify(token) is verifier.verify(token)
    published["document"] = jwks_document([SigningKey.generate().public_key])
    monotonic.advance(300.0)
    assert rejection(verifier, token) == "The token is signed with an unknown key."


# What is never remembered


def test_a_forged_token_with_the_header_and_claims_of_a_remembered_one_is_refused(
    signing_key: SigningKey, keys: CountingKeys, verifier: TokenVerifier
) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {"iat": now, "exp": now + 900, "jti": "token-1"}
    genuine = token_for(signing_key, **claims)
    verifier.verify(genuine)
    forged = token_for(signing_key, signed_by=SigningKey.generate(), **claims)
    header, payload, _ = genuine.split(".")
    assert forged.split(".")[:2] == [header, payload]  # only the signature differs
    assert rejection(verifier, forged) == "The token signature is invalid."
    promoted = token_for(signing_key, **claims, roles=["admin"]).split(".")[1]
    signature = genuine.split(".")[2]
    altered = f"{header}.{promoted}.{signature}"
    assert rejection(verifier, altered) == "The token signature is invalid."
    assert keys.signature_checks == 3
    assert verifier.verify(genuine).roles == frozenset({"customer"})
    assert keys.signature_checks == 3  # the genuine token is still remembered


def test_a_refused_token_is_never_remembered(
    signing_key: SigningKey, keys: CountingKeys, verifier: TokenVerifier
) -> None:
    genuine = token_for(signing_key)
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBA")
    for _ in range(3):
        assert rejection(verifier, forged) == "The token signature is invalid."
    assert keys.signature_checks == 3


def test_unavailable_keys_are_not_remembered_against_a_token(signing_key: SigningKey) -> None:
    class FlakyKeys:
        def __init__(self) -> None:
            self.available = False
            self.keys = CountingKeys(signing_key)

        def key_for(self, kid: str) -> jwt.PyJWK | None:
            if not self.available:
                raise KeysUnavailable("the issuer is down")
            return self.keys.key_for(kid)

    source = FlakyKeys()
    verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE, cache_size=8)
    token = token_for(signing_key)
    with pytest.raises(KeysUnavailable):
        verifier.verify(token)
    source.available = True
    assert verifier.verify(token).user_id == 1


# Threads


def test_threads_sharing_a_verifier_each_get_the_principal_of_their_token(
    signing_key: SigningKey, keys: CountingKeys
) -> None:
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, cache_size=4)
    tokens = {f"{n}": token_for(signing_key, sub=f"{n}") for n in range(1, 7)}
    start = threading.Barrier(8)
    wrong: list[tuple[str, Principal]] = []
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        choose = random.Random(seed).choice  # a cyclic order would defeat an LRU of 4
        start.wait()
        try:
            for _ in range(300):
                user_id = choose(list(tokens))
                principal = verifier.verify(tokens[user_id])
                if principal.subject != user_id:
                    wrong.append((user_id, principal))
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (failures, wrong) == ([], [])
    assert keys.signature_checks < 8 * 300 / 2  # most answers came from memory
    assert keys.lookups == 8 * 300


# The LRU mapping itself


def test_the_lru_cache_keeps_the_most_recently_used_entries() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    cache.put("a", 4)
    assert (cache.get("a"), len(cache)) == (4, 2)


def test_the_lru_cache_discards_only_the_value_it_was_shown() -> None:
    cache: LruCache[str, Mapping[str, int]] = LruCache(2)
    stale, fresh = {"n": 1}, {"n": 1}
    cache.put("a", fresh)
    cache.discard("a", stale)  # equal, but another thread's newer entry
    assert cache.get("a") is fresh
    cache.discard("a", fresh)
    assert cache.get("a") is None


def test_an_lru_cache_of_size_zero_keeps_nothing_and_a_negative_size_is_refused() -> None:
    cache: LruCache[str, int] = LruCache(0)
    cache.put("a", 1)
    assert (cache.get("a"), len(cache)) == (None, 0)
    with pytest.raises(ValueError, match="0 or more"):
        LruCache(-1)
