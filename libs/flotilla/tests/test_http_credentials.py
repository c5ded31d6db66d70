"""A service's own token: fetched with its client secret, shared, renewed before it expires."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import unquote

import pytest

from flotilla.resilience.http import (
    BreakerPolicy,
    CircuitBreaker,
    ClientCredentials,
    DownstreamUnavailable,
    RetryBudget,
    RetryPolicy,
    ServiceClient,
    TokenFetchFailed,
    fetch_client_token,
)
from flotilla.testing import ManualClock

from .http_stub import Reply, StubServer, serving


class Issuer:
    """Hands out numbered tokens of ``lifetime`` seconds, or fails when told to."""

    def __init__(self, lifetime: float = 300.0) -> None:
        self.lifetime = lifetime
        self.issued = 0
        self.failing = False
        self.gate: threading.Event | None = None

    def __call__(self) -> tuple[str, float]:
        if self.gate is not None:
            self.gate.wait(5)
        if self.failing:
            raise TokenFetchFailed("the issuer answered 503")
        self.issued += 1
        return f"token-{self.issued}", self.lifetime


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with serving() as server:
        yield server


def test_the_token_is_fetched_once_and_shared_until_it_is_due(
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer, clock = Issuer(lifetime=100), ManualClock()
    credentials = ClientCredentials(issuer, clock=clock)
    assert credentials.authorization() == "Bearer token-1"
    clock.advance(74)
    assert credentials.authorization() == "Bearer token-1"
    clock.advance(1)  # three quarters of its lifetime: renewed ahead of expiry
    assert credentials.authorization() == "Bearer token-2"
    assert issuer.issued == 2


def test_a_failed_renewal_keeps_the_valid_token_and_is_tried_again() -> None:
    issuer, clock = Issuer(lifetime=100), ManualClock()
    credentials = ClientCredentials(issuer, clock=clock)
    credentials.authorization()
    clock.advance(80)
    issuer.failing = True
    assert credentials.authorization() == "Bearer token-1"  # still valid for 20 s
    issuer.failing = False
    assert credentials.authorization() == "Bearer token-2"


def test_without_a_valid_token_a_failed_fetch_is_a_503_that_sent_nothing() -> None:
    issuer, clock = Issuer(lifetime=100), ManualClock()
    credentials = ClientCredentials(issuer, clock=clock, issuer="users")
    issuer.failing = True
    with pytest.raises(DownstreamUnavailable) as raised:
        credentials.authorization()
    assert raised.value.maybe_processed is False
    assert raised.value.target == "users"
    issuer.failing = False
    credentials.authorization()
    clock.advance(100)  # expired: nobody may call with it
    issuer.failing = True
    with pytest.raises(DownstreamUnavailable):
        credentials.authorization()


def test_a_renewal_in_progress_does_not_hold_up_other_callers() -> None:
    issuer, clock = Issuer(lifetime=100), ManualClock()
    credentials = ClientCredentials(issuer, clock=clock)
    credentials.authorization()
    clock.advance(80)
    issuer.gate = threading.Event()
    renewing = threading.Thread(target=credentials.authorization)
    renewing.start()
    while not credentials._fetching.locked():  # the renewing thread holds the fetch
        pass
    assert credentials.authorization() == "Bearer token-1"  # served at once, not queued
    issuer.gate.set()
    renewing.join()
    assert credentials.authorization() == "Bearer token-2"


def test_forgetting_a_refused_token_fetches_a_new_one_but_not_a_renewed_one() -> None:
    issuer = Issuer()
    credentials = ClientCredentials(issuer, clock=ManualClock())
    first = credentials.authorization()
    credentials.forget(first)
    second = credentials.authorization()
    assert second == "Bearer token-2"
    credentials.forget(first)  # a late refusal of the old token: the new one stays
    assert credentials.authorization() == second


def test_the_grant_is_posted_as_a_form_with_basic_credentials(stub: StubServer) -> None:
    stub.script(Reply(200, {"access_token": "abc", "token_type": "Bearer", "expires_in": 300}))
    token = fetch_client_token(f"{stub.url}/api/v1/service-tokens", "orders", "s3:cret", 2.0)
    assert token == ("abc", 300.0)
    (received,) = stub.received
    assert received.method == "POST"
    assert received.body == b"grant_type=client_credentials"
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    scheme, _, encoded = received.headers["Authorization"].partition(" ")
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    assert (scheme, unquote(client_id), unquote(secret)) == ("Basic", "orders", "s3:cret")


@pytest.mark.parametrize(
    "reply",
    [Reply(401, {"type": "invalid-client"}), Reply(200, {"token_type": "Bearer"}), Reply(200, [])],
)
def test_a_refusal_or_an_answer_without_a_token_is_a_failed_fetch(
    stub: StubServer, reply: Reply
) -> None:
    stub.script(reply)
    with pytest.raises(TokenFetchFailed):
        fetch_client_token(stub.url, "orders", "secret", 2.0)


def client_with(url: str, credentials: ClientCredentials) -> ServiceClient:
    name = f"stub-{uuid.uuid4().hex[:8]}"
    return ServiceClient(
        name,
        url,
        breaker=CircuitBreaker(name, BreakerPolicy()),
        budget=RetryBudget(ratio=1.0, min_per_second=10.0, window=10.0),
        retry=RetryPolicy(retries=0),
        credentials=credentials,
    )


def test_every_call_carries_the_token_and_a_401_is_retried_once_with_a_new_one(
    stub: StubServer,
) -> None:
    issuer = Issuer()
    client = client_with(stub.url, ClientCredentials(issuer, clock=ManualClock()))
    stub.script(Reply(200), Reply(401), Reply(202), Reply(401), Reply(401))
    assert client.get("/a").status == 200
    assert client.post("/b", json={}).status == 202  # refused once, then sent anew
    assert client.delete("/c").status == 401  # a fresh token refused too: the answer stands
    sent = [received.headers["Authorization"] for received in stub.received]
    assert sent == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
        "Bearer token-2",
        "Bearer token-3",
    ]


def test_a_callers_own_authorization_is_sent_as_is_and_never_retried(stub: StubServer) -> None:
    issuer = Issuer()
    client = client_with(stub.url, ClientCredentials(issuer, clock=ManualClock()))
    stub.script(Reply(401))
    response = client.get("/me", headers={"Authorization": "Bearer customer"})
    assert response.status == 401
    assert [received.headers["Authorization"] for received in stub.received] == ["Bearer customer"]
    assert issuer.issued == 0
