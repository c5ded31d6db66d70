"""Sentry reports carry the request id and trace id, and never a token, password or secret.

The SDK sends its real envelopes to :class:`SentryReceiver`, a local HTTP endpoint; what it
received is searched, bytes and all, for the secrets the failing request carried.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from flask import request

from flotilla import ServiceSettings
from flotilla.observability.error_reports import FILTERED, scrub, secret_values
from flotilla.testing import wait_until
from flotilla.testing.telemetry import SentryReceiver

from .conftest import build_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def sentry() -> Iterator[SentryReceiver]:
    """The endpoint; sentry-sdk is switched off again after the test."""
    with SentryReceiver() as receiver:
        try:
            yield receiver
        finally:
            sentry_sdk.get_client().close()
            sentry_sdk.init()


def test_a_failing_request_is_reported_without_its_secrets(
    tmp_path: Path, sentry: SentryReceiver
) -> None:
    database_password, token, password = (secrets.token_hex(20) for _ in range(3))
    app = build_app(
        tmp_path,
        DATABASE_URL=f"postgresql://shop:{database_password}@127.0.0.1:9/shop",
        SENTRY_DSN=sentry.dsn(),
        SENTRY_RELEASE="sample@9.9.9",
        SENTRY_ENVIRONMENT="staging",
    )

    @app.post("/fail")
    def fail() -> str:
        database = app.extensions["flotilla.settings"].DATABASE_URL  # a secret in a local
        raise RuntimeError(f"cannot reach {database} for {request.get_json()['password']}")

    response = app.test_client().post(
        "/fail",
        json={"username": "alice", "password": password},
        headers={
            "Authorization": f"Bearer {token}",
            "X-Request-ID": "req-sentry-1",
            "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        },
    )
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)
    wait_until(lambda: bool(sentry.events()), timeout=5, what="an event")

    received = b"".join(sentry.raw)
    for secret in (database_password, token, password):
        assert secret.encode() not in received
    event = next(found for found in sentry.events() if found.get("exception"))
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["tags"]["request_id"] == "req-sentry-1"
    assert event["tags"]["trace_id"] == TRACE_ID
    assert (event["release"], event["environment"]) == ("sample@9.9.9", "staging")
    assert event["request"]["data"]["password"] == FILTERED
    assert event["request"]["data"]["username"] == "alice"
    assert event["request"]["headers"].get("Authorization", FILTERED) == FILTERED


def test_scrub_removes_sensitive_keys_raw_pairs_and_secret_values() -> None:
    event: dict[str, Any] = {
        "extra": {"api_key": "k", "count": 3, "note": "uses hunter2hunter2 inside"},
        "breadcrumbs": [{"message": 'POST {"user": "a", "password": "pw\\"x"}'}],
        "headers": [["Authorization", "Bearer t"], ["Accept", "*/*"]],
    }
    scrubbed = scrub(event, frozenset({"hunter2hunter2"}))
    assert scrubbed["extra"] == {"api_key": FILTERED, "count": 3, "note": f"uses {FILTERED} inside"}
    assert (
        scrubbed["breadcrumbs"][0]["message"] == f'POST {{"user": "a", "password": "{FILTERED}"}}'
    )
    assert scrubbed["headers"] == [["Authorization", FILTERED], ["Accept", "*/*"]]


def test_the_secret_settings_are_those_kept_out_of_repr_and_url_passwords() -> None:
    settings = ServiceSettings(
        DATABASE_URL="postgresql://app:db-password@db/app",
        REDIS_URL="redis://:redis-password@cache:6379/0",
        SENTRY_DSN="https://public-key@sentry.example/1",
    )
    assert secret_values(settings) >= {
        "postgresql://app:db-password@db/app",
        "db-password",
        "redis-password",
        "https://public-key@sentry.example/1",
    }
