"""Verification keys fetched from an issuer's JWKS endpoint and cached.

The cache is what lets every service verify tokens locally: the key set is fetched once and
reused for ``max_age`` seconds. A token naming a ``kid`` the cache does not know triggers an
immediate refetch (that is how a newly rotated key is picked up without a restart), at most
once per ``refetch_interval`` so tokens with made-up ``kid`` values cannot turn every request
into a call to the issuer. When the issuer cannot be reached the last good key set keeps
serving (stale on error); only a verifier that has never obtained keys fails, with
:class:`KeysUnavailable`, which the chassis renders as 503 rather than blaming the token.

Lookups of a cached key take no lock. One thread at a time fetches; a thread that needs a key
the fetch may bring waits for it, the others carry on with what is cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import orjson
import urllib3

from flotilla.auth.tokens import KeysUnavailable

log = logging.getLogger(__name__)

Fetch = Callable[[str, float], Mapping[str, Any]]
"""Fetches the JWK Set at a URL within a timeout; raises on any failure."""


class JwksFetchFailed(Exception):
    """The issuer answered the key set request with something other than 200."""


def fetch_jwks(url: str, timeout: float) -> Mapping[str, Any]:
    """GET ``url`` and return its JSON body; raises on a transport error or non-200 status.

    A connection of its own each time: the key set is fetched every few minutes at most, and
    nothing is kept that a forked worker could share. urllib3 is what the chassis' service
    client speaks already, so fetching keys loads no other HTTP library.
    """
    with urllib3.PoolManager(retries=False) as http:
        response = http.request("GET", url, timeout=timeout, headers={"Accept": "application/json"})
    if response.status != 200:
        raise JwksFetchFailed(f"{url} answered {response.status}")
    document: Mapping[str, Any] = orjson.loads(response.data)
    return document


def parse_jwks(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWK Set by ``kid``; keys without a ``kid`` are skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document.get("keys") or []:
        kid = entry.get("kid") if isinstance(entry, Mapping) else None
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[kid] = jwt.PyJWK(dict(entry))
        except jwt.PyJWTError as error:
            log.warning("jwks key skipped", extra={"kid": kid, "reason": str(error)})
    return keys


class JwksCache:
    """A :class:`flotilla.auth.tokens.KeySource` backed by an issuer's JWKS URL."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        max_age: float = 300.0,
        refetch_interval: float = 10.0,
        fetch: Fetch = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_age = max_age
        self.refetch_interval = refetch_interval
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid``, refreshing the set when it is stale or does not know ``kid``."""
        key = self._keys.get(kid)
        if key is not None and not self._is_stale():
            return key
        if key is not None:
            self._refresh_in_passing()
            return self._keys.get(kid)  # a failed refresh kept it; a good one may drop it
        self._refresh_for_unknown(kid)
        if self._fetched_at is None:
            raise KeysUnavailable(f"no keys could be fetched from {self.url}")
        return self._keys.get(kid)

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.max_age

    def _may_attempt(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self.refetch_interval
        )

    def _refresh_in_passing(self) -> None:
        """Refresh stale keys if nobody else is; never wait, the cached key is still good."""
        if self._lock.acquire(blocking=False):
            try:
                if self._is_stale() and self._may_attempt():
                    self._refresh()
            finally:
                self._lock.release()

    def _refresh_for_unknown(self, kid: str) -> None:
        if not self._lock.acquire(timeout=self.timeout * 2):
            return
        try:
            if kid not in self._keys and self._may_attempt():
                self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        self._attempted_at = self._clock()
        try:
            keys = self._fetch_keys()
        except Exception as error:  # any failure keeps the last good keys
            log.warning(
                "jwks fetch failed",
                extra={"url": self.url, "error": str(error), "stale_keys": len(self._keys)},
            )
            return
        self._keys, self._fetched_at = keys, self._attempted_at
        log.info("jwks fetched", extra={"url": self.url, "kids": sorted(keys)})

    def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        keys = parse_jwks(self._fetch(self.url, self.timeout))
        if not keys:  # an issuer always publishes its signing key: this answer is broken
            raise ValueError("the key set has no usable signing key")
        return keys
