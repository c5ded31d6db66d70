"""A service's own access token for its calls to other services (OAuth 2.0 client credentials).

The callee must know who is calling: catalog reserves stock for the orders service and for
nobody else. The caller proves it with a token the issuer signed for it, obtained with its
client secret (``grant_type=client_credentials``, the secret sent with HTTP Basic as RFC 6749
section 2.3.1 asks) and verified by the callee like any access token, locally.

:class:`ClientCredentials` fetches the token on first use, hands the same one to every call
until three quarters of its lifetime have passed, and then renews it: one thread fetches
while the others keep sending the token they have, which is still valid. Only when there is
no valid token at all do callers wait for the fetch. A fetch that fails while the old token
still holds is logged and tried again on the next call; without a valid token the call fails
as the issuer being unavailable (503), since nothing was sent to the callee.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import orjson
import urllib3

from flotilla.auth.clients import development_client_secret
from flotilla.config import ServiceSettings
from flotilla.resilience.http.errors import DownstreamUnavailable

log = logging.getLogger(__name__)

RENEW_AFTER = 0.75
"""Share of a token's lifetime after which it is renewed, the rest a margin for clock skew."""


@dataclass(frozen=True)
class IssuedToken:
    """A token from the issuer, and when (on the clock of :class:`ClientCredentials`) it lapses."""

    value: str
    renew_at: float
    expires_at: float


Fetch = Callable[[], tuple[str, float]]
"""Asks the issuer for a token: returns it and its lifetime in seconds; raises on failure."""


class TokenFetchFailed(Exception):
    """The issuer did not hand out a token."""


def fetch_client_token(
    token_url: str, client_id: str, client_secret: str, timeout: float
) -> tuple[str, float]:
    """POST the client credentials grant to ``token_url``; the token and its lifetime."""
    basic = base64.b64encode(f"{quote(client_id)}:{quote(client_secret)}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    try:
        with urllib3.PoolManager(retries=False) as http:
            response = http.request(
                "POST",
                token_url,
                body=b"grant_type=client_credentials",
                headers=headers,
                timeout=timeout,
            )
    except urllib3.exceptions.HTTPError as error:
        raise TokenFetchFailed(f"{token_url} could not be reached: {error}") from None
    if response.status != 200:
        raise TokenFetchFailed(f"{token_url} answered {response.status}")
    return _read_token(response.data)


def _read_token(body: bytes) -> tuple[str, float]:
    try:
        document = orjson.loads(body)
        token, lifetime = document["access_token"], document["expires_in"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise TokenFetchFailed("the issuer answered no token") from None
    if not isinstance(token, str) or not isinstance(lifetime, int) or lifetime <= 0:
        raise TokenFetchFailed("the issuer answered no token")
    return token, float(lifetime)


class ClientCredentials:
    """The calling service's token, fetched, shared by its threads and renewed before expiry."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        issuer: str = "the issuer",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self.issuer = issuer
        self._token: IssuedToken | None = None
        self._fetching = threading.Lock()

    @classmethod
    def for_client(
        cls, token_url: str, client_id: str, client_secret: str, *, timeout: float
    ) -> ClientCredentials:
        """Credentials of ``client_id`` from the token endpoint at ``token_url``."""
        return cls(
            lambda: fetch_client_token(token_url, client_id, client_secret, timeout),
            issuer=urlsplit(token_url).netloc or token_url,
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ClientCredentials | None:
        """This service's credentials per ``SERVICE_TOKEN_URL``; None when it has none.

        The client id is ``SERVICE_CLIENT_ID``, else ``SERVICE_NAME``; without
        ``SERVICE_CLIENT_SECRET`` (development only: production refuses to start) the secret
        is derived from the key under ``VAR_DIR`` that the issuer derives it from too.
        """
        if not settings.SERVICE_TOKEN_URL:
            return None
        client_id = settings.SERVICE_CLIENT_ID or settings.SERVICE_NAME
        secret = settings.SERVICE_CLIENT_SECRET or development_client_secret(
            settings.VAR_DIR, client_id
        )
        return cls.for_client(
            settings.SERVICE_TOKEN_URL, client_id, secret, timeout=settings.HTTP_READ_TIMEOUT
        )

    def authorization(self) -> str:
        """The ``Authorization`` header value for a call now; 503 when no token can be had."""
        token, now = self._token, self._clock()
        if token is not None and now < token.renew_at:
            return f"Bearer {token.value}"
        if token is not None and now < token.expires_at:
            if self._fetching.acquire(blocking=False):  # one renews; the rest use what holds
                self._renew_holding_lock(now)
            return f"Bearer {(self._token or token).value}"
        with self._fetching:  # no valid token: every caller waits for the one fetch
            current = self._token
            if current is None or self._clock() >= current.expires_at:
                current = self._fetch_token(self._clock())
        return f"Bearer {current.value}"

    def forget(self, authorization: str) -> None:
        """Drop the token of ``authorization``, which the callee refused, unless renewed since."""
        token = self._token
        if token is not None and authorization == f"Bearer {token.value}":
            self._token = None

    def _renew_holding_lock(self, now: float) -> None:
        try:
            self._fetch_token(now)
        except DownstreamUnavailable:
            pass  # logged; the token in hand still holds, and the next call tries again
        finally:
            self._fetching.release()

    def _fetch_token(self, now: float) -> IssuedToken:
        try:
            value, lifetime = self._fetch()
        except (TokenFetchFailed, OSError) as error:
            log.warning("service token not obtained", extra={"error": str(error)})
            raise DownstreamUnavailable(
                f"No token to call with: {error}",
                target=self.issuer,
                maybe_processed=False,
                retry_after=1.0,
            ) from None
        token = IssuedToken(value, now + lifetime * RENEW_AFTER, now + lifetime)
        self._token = token
        return token
