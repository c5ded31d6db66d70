"""The users service's rate limits: which requests are counted, per what, and what a refusal is.

How a limit counts (windows, several limits, Redis failover) is the chassis' business and is
tested in ``libs/flotilla/tests/test_limits.py``; here is the policy this service sets with it.
Each test builds its own app with small limits on the database of the session's ``app``, so
counts never leak between tests.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from flotilla.testing import service_redis
from flotilla.web.limits import Limits
from users import create_app
from users.config import UsersSettings
from users.models import RefreshToken, User, db
from users.passwords import Passwords

from .conftest import PASSWORD, Account, json_of, make_settings

WRONG_PASSWORD = "not the password"
NEW_PASSWORD = "a brand new passphrase"

SMALL_LIMITS: dict[str, Any] = {
    "RATE_LIMITS_ENABLED": True,
    "LOGIN_RATE_LIMIT_PER_ACCOUNT": "3/minute",
    # Well above the per-account limit, so that only the per-account limit refuses unless a
    # test lowers it.
    "LOGIN_RATE_LIMIT_PER_ADDRESS": "50/minute",
    "REGISTER_RATE_LIMIT_PER_ADDRESS": "2/minute",
    "REFRESH_RATE_LIMIT_PER_ADDRESS": "2/minute",
    "PASSWORD_RATE_LIMIT_PER_USER": "2/minute",
}
FIRST_ADDRESS = {"REMOTE_ADDR": "192.0.2.1"}
SECOND_ADDRESS = {"REMOTE_ADDR": "192.0.2.2"}

AppFactory = Callable[..., Flask]


@pytest.fixture
def service_name() -> str:
    """A name no other test or run uses: it prefixes the app's keys in Redis."""
    return f"users-throttling-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_limited_app(app: Flask, service_name: str) -> Iterator[AppFactory]:
    """Builds users apps with ``SMALL_LIMITS`` on ``app``'s database; closes them afterwards."""
    settings: UsersSettings = app.extensions["flotilla.settings"]
    built: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        values = {"SERVICE_NAME": service_name, **SMALL_LIMITS, **overrides}
        limited = create_app(make_settings(settings.DATABASE_URL, settings.VAR_DIR, **values))
        built.append(limited)
        return limited

    yield make
    for limited in built:
        limits: Limits = limited.extensions["flotilla.limits"]
        limits.close()
        with limited.app_context():
            db.engine.dispose()


@pytest.fixture
def limited(make_limited_app: AppFactory) -> FlaskClient:
    """A client of a users app with ``SMALL_LIMITS`` counted in process memory."""
    return make_limited_app(REDIS_URL="").test_client()


@pytest.fixture
def redis_url(service_name: str) -> Iterator[str]:
    """The test Redis; the keys of apps named ``service_name`` are deleted afterwards."""
    with service_redis(service_name) as url:
        yield url


def log_in(
    client: FlaskClient, login: str, password: str = PASSWORD, **kwargs: Any
) -> TestResponse:
    """POST /api/v1/tokens."""
    return client.post("/api/v1/tokens", json={"login": login, "password": password}, **kwargs)


def failed_logins(client: FlaskClient, login: str, times: int, **kwargs: Any) -> list[int]:
    """The statuses of ``times`` logins as ``login`` with a wrong password."""
    return [log_in(client, login, WRONG_PASSWORD, **kwargs).status_code for _ in range(times)]


def register(client: FlaskClient, username: str, **kwargs: Any) -> TestResponse:
    """POST /api/v1/users for a new account named ``username``."""
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    return client.post("/api/v1/users", json=body, **kwargs)


def change_password(client: FlaskClient, account: Account, current: str) -> TestResponse:
    """PUT /api/v1/users/me/password as ``account``, proving ``current``."""
    body = {"current_password": current, "new_password": NEW_PASSWORD}
    return client.put("/api/v1/users/me/password", json=body, headers=account.headers)


def refresh(client: FlaskClient, refresh_token: str, **kwargs: Any) -> TestResponse:
    """POST /api/v1/tokens/refresh."""
    return client.post("/api/v1/tokens/refresh", json={"refresh_token": refresh_token}, **kwargs)


def assert_refused(response: TestResponse) -> int:
    """Check the 429 problem of a one-minute limit and return its Retry-After."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = json_of(response)
    assert (body["type"], body["status"]) == ("urn:flotilla:problem:too-many-requests", 429)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def count_rows(app: Flask, model: type[User] | type[RefreshToken]) -> int:
    """How many rows ``model``'s table holds."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def password_hash(app: Flask, user_id: int) -> str:
    """The stored password hash of ``user_id``."""
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return user.password_hash


def test_failed_logins_past_the_account_limit_are_refused_even_with_the_right_password(
    app: Flask, limited: FlaskClient, customer: Account
) -> None:
    assert failed_logins(limited, customer.username, 3) == [401, 401, 401]
    assert_refused(log_in(limited, customer.username, PASSWORD))
    assert count_rows(app, RefreshToken) == 0


def test_a_locked_account_leaves_other_accounts_alone(
    limited: FlaskClient, customer: Account, other_customer: Account
) -> None:
    failed_logins(limited, customer.username, 3)
    assert failed_logins(limited, other_customer.username, 1) == [401]
    assert log_in(limited, other_customer.username).status_code == 200


def test_the_account_limit_does_not_follow_the_client_address(
    limited: FlaskClient, customer: Account
) -> None:
    failed_logins(limited, customer.username, 3, environ_base=FIRST_ADDRESS)
    assert_refused(log_in(limited, customer.username, environ_base=SECOND_ADDRESS))


@pytest.mark.parametrize(
    "spellings",
    [
        ("carol@example.com", "Carol@Example.com", "CAROL@EXAMPLE.COM", " cArOl@example.COM "),
        ("carol", "Carol", "CAROL", " carol "),
    ],
    ids=["e-mail", "username"],
)
def test_the_account_limit_counts_the_login_in_any_case(
    limited: FlaskClient, customer: Account, spellings: tuple[str, ...]
) -> None:
    statuses = [log_in(limited, login, WRONG_PASSWORD).status_code for login in spellings[:3]]
    assert statuses == [401, 401, 401]
    assert_refused(log_in(limited, spellings[3], PASSWORD))
    assert_refused(log_in(limited, spellings[0], PASSWORD))


def test_successful_logins_count_too(limited: FlaskClient, customer: Account) -> None:
    # Counting every attempt up front is atomic; counting failures after the fact is not.
    assert [log_in(limited, customer.username).status_code for _ in range(3)] == [200] * 3
    assert_refused(log_in(limited, customer.username))


def test_alternating_the_username_and_the_email_shares_one_count(
    limited: FlaskClient, customer: Account
) -> None:
    logins = [customer.username, customer.email, customer.username]
    assert [log_in(limited, login, WRONG_PASSWORD).status_code for login in logins] == [401] * 3
    assert_refused(log_in(limited, customer.email))


def test_the_redis_keys_hold_no_login_names(
    make_limited_app: AppFactory, redis_url: str, service_name: str, customer: Account
) -> None:
    client = make_limited_app(REDIS_URL=redis_url).test_client()
    failed_logins(client, customer.email, 1)
    with redis.Redis.from_url(redis_url) as connection:
        keys = [key.decode() for key in connection.scan_iter(f"*{service_name}*")]
    assert keys
    assert not [key for key in keys if customer.username in key or "example.com" in key]


def test_an_unknown_account_is_limited_like_a_known_one(
    limited: FlaskClient, customer: Account
) -> None:
    def attempts(login: str) -> list[tuple[int, str, bool]]:
        responses = [log_in(limited, login, WRONG_PASSWORD) for _ in range(5)]
        return [
            (response.status_code, json_of(response)["type"], "Retry-After" in response.headers)
            for response in responses
        ]

    known, unknown = attempts(customer.username), attempts("nobody")
    assert known == unknown
    assert [status for status, _, _ in known] == [401, 401, 401, 429, 429]


def test_logins_for_many_accounts_from_one_address_hit_the_address_limit(
    make_limited_app: AppFactory, make_account: Callable[..., Account]
) -> None:
    client = make_limited_app(
        REDIS_URL="",
        LOGIN_RATE_LIMIT_PER_ADDRESS="4/minute",
        LOGIN_RATE_LIMIT_PER_ACCOUNT="50/minute",
    ).test_client()
    dave, erin = make_account("dave"), make_account("erin")
    logins = [
        (dave.username, WRONG_PASSWORD),
        ("nobody", WRONG_PASSWORD),
        (erin.username, PASSWORD),
    ]
    statuses = [log_in(client, *login, environ_base=FIRST_ADDRESS).status_code for login in logins]
    assert statuses == [401, 401, 200]
    assert log_in(client, "someone", WRONG_PASSWORD, environ_base=FIRST_ADDRESS).status_code == 401
    assert_refused(log_in(client, dave.username, environ_base=FIRST_ADDRESS))
    assert log_in(client, dave.username, environ_base=SECOND_ADDRESS).status_code == 200


def test_a_forwarded_for_header_does_not_pick_the_address_bucket(
    make_limited_app: AppFactory, customer: Account
) -> None:
    client = make_limited_app(REDIS_URL="", LOGIN_RATE_LIMIT_PER_ADDRESS="2/minute").test_client()
    assert failed_logins(client, "nobody", 2, environ_base=FIRST_ADDRESS) == [401, 401]
    forged = {"X-Forwarded-For": SECOND_ADDRESS["REMOTE_ADDR"]}
    assert_refused(log_in(client, customer.username, environ_base=FIRST_ADDRESS, headers=forged))


def test_behind_a_proxy_a_peer_that_is_not_the_proxy_cannot_forge_its_address(
    make_limited_app: AppFactory, customer: Account
) -> None:
    # The service is told one proxy is in front (as in every deployment), but this request
    # reached its port from elsewhere: a new X-Forwarded-For per attempt must not help.
    client = make_limited_app(
        REDIS_URL="", PROXY_HOPS=1, LOGIN_RATE_LIMIT_PER_ADDRESS="2/minute"
    ).test_client()
    forged = [{"X-Forwarded-For": f"203.0.113.{number}"} for number in range(3)]
    attempts = [
        log_in(client, "nobody", WRONG_PASSWORD, environ_base=FIRST_ADDRESS, headers=headers)
        for headers in forged[:2]
    ]
    assert [response.status_code for response in attempts] == [401, 401]
    assert_refused(log_in(client, customer.username, environ_base=FIRST_ADDRESS, headers=forged[2]))
    names = ("dave", "erin", "fred")
    registered = [
        register(
            client,
            name,
            environ_base=FIRST_ADDRESS,
            headers={"X-Forwarded-For": f"203.0.113.{50 + number}"},
        )
        for number, name in enumerate(names)
    ]
    assert [response.status_code for response in registered[:2]] == [201, 201]
    assert_refused(registered[2])


def test_registrations_past_the_address_limit_are_refused_and_create_nothing(
    app: Flask, limited: FlaskClient
) -> None:
    first = [register(limited, name, environ_base=FIRST_ADDRESS) for name in ("dave", "erin")]
    assert [response.status_code for response in first] == [201, 201]
    assert_refused(register(limited, "fred", environ_base=FIRST_ADDRESS))
    assert count_rows(app, User) == 2
    assert register(limited, "fred", environ_base=SECOND_ADDRESS).status_code == 201


def test_failed_registrations_use_the_address_limit_too(app: Flask, limited: FlaskClient) -> None:
    assert register(limited, "x").status_code == 422  # too short a username
    assert register(limited, "x").status_code == 422
    assert_refused(register(limited, "dave"))
    assert count_rows(app, User) == 0


def test_password_changes_past_the_user_limit_are_refused_even_with_the_right_password(
    app: Flask, limited: FlaskClient, customer: Account
) -> None:
    before = password_hash(app, customer.id)
    statuses = [change_password(limited, customer, WRONG_PASSWORD).status_code for _ in range(2)]
    assert statuses == [403, 403]
    assert_refused(change_password(limited, customer, PASSWORD))
    assert password_hash(app, customer.id) == before


def test_the_password_limit_is_per_user(
    limited: FlaskClient, customer: Account, other_customer: Account
) -> None:
    for _ in range(2):
        change_password(limited, customer, WRONG_PASSWORD)
    assert change_password(limited, other_customer, WRONG_PASSWORD).status_code == 403
    assert change_password(limited, other_customer, PASSWORD).status_code == 204


def test_refreshes_past_the_address_limit_are_refused_without_using_the_token(
    limited: FlaskClient, customer: Account
) -> None:
    token = json_of(log_in(limited, customer.username))["refresh_token"]
    statuses = [refresh(limited, "not-a-token", environ_base=FIRST_ADDRESS).status_code]
    statuses.append(refresh(limited, "not-a-token", environ_base=FIRST_ADDRESS).status_code)
    assert statuses == [401, 401]
    assert_refused(refresh(limited, token, environ_base=FIRST_ADDRESS))
    assert refresh(limited, token, environ_base=SECOND_ADDRESS).status_code == 200


def test_two_instances_on_one_redis_share_the_account_count(
    make_limited_app: AppFactory, redis_url: str, service_name: str, customer: Account
) -> None:
    first = make_limited_app(REDIS_URL=redis_url).test_client()
    second = make_limited_app(REDIS_URL=redis_url).test_client()
    assert failed_logins(first, customer.email, 2) == [401, 401]
    assert failed_logins(second, customer.email.upper(), 1) == [401]
    assert_refused(log_in(first, customer.email))
    assert_refused(log_in(second, customer.email))
    with redis.Redis.from_url(redis_url) as connection:
        keys = list(connection.scan_iter(match=f"flotilla:{service_name}:limits:*"))
    account = hashlib.sha256(customer.username.encode()).hexdigest().encode()
    assert any(account in key for key in keys), keys


class GatedPasswords(Passwords):
    """Passwords whose checks wait at a gate, so a test can hold logins in flight."""

    def __init__(self, settings: UsersSettings, expected: int) -> None:
        super().__init__(settings)
        self.expected = expected
        self.checking = 0
        self.answered = 0
        self.settled = threading.Condition()
        self.gate = threading.Event()

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Note the check, wait for the gate, then check as usual."""
        with self.settled:
            self.checking += 1
            self.settled.notify_all()
        self.gate.wait(timeout=30)
        return super().verify(password_hash, password)

    def note_answered(self, _: Future[TestResponse]) -> None:
        """A login got its response."""
        with self.settled:
            self.answered += 1
            self.settled.notify_all()

    def open_when_settled(self) -> None:
        """Open the gate once every login is either checking its password or answered."""
        with self.settled:
            settled = self.settled.wait_for(
                lambda: self.checking + self.answered >= self.expected, timeout=30
            )
        self.gate.set()
        assert settled, "logins neither reached the password check nor were answered"


def test_concurrent_failed_logins_cannot_overrun_the_account_limit(
    make_limited_app: AppFactory, customer: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_limited_app(REDIS_URL="")
    passwords = GatedPasswords(app.extensions["flotilla.settings"], expected=6)
    monkeypatch.setitem(app.extensions, "users.passwords", passwords)
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [
            pool.submit(log_in, app.test_client(), customer.username, WRONG_PASSWORD)
            for _ in range(6)
        ]
        for future in futures:
            future.add_done_callback(passwords.note_answered)
        passwords.open_when_settled()
        statuses = sorted(future.result().status_code for future in futures)
    assert passwords.checking <= 3, f"{passwords.checking} passwords checked for a 3/minute limit"
    assert statuses == [401, 401, 401, 429, 429, 429]


RATE_LIMITED_OPERATIONS = {
    ("post", "/api/v1/users"),
    ("post", "/api/v1/tokens"),
    ("post", "/api/v1/tokens/refresh"),
    ("put", "/api/v1/users/me/password"),
    ("post", "/api/v1/service-tokens"),
}


def test_the_openapi_document_declares_429_on_the_rate_limited_operations_only(
    client: FlaskClient,
) -> None:
    paths: dict[str, dict[str, Any]] = json_of(client.get("/openapi.json"))["paths"]
    operations = {
        (method, path): operation
        for path, item in paths.items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert set(operations) >= RATE_LIMITED_OPERATIONS
    limited = {key for key, operation in operations.items() if "429" in operation["responses"]}
    assert limited == RATE_LIMITED_OPERATIONS


def test_a_login_with_a_nul_character_is_limited_and_refused_cleanly(
    limited: FlaskClient,
) -> None:
    response = log_in(limited, "a\x00b@example.com", WRONG_PASSWORD)
    assert response.status_code == 422
    assert json_of(response)["type"] == "urn:flotilla:problem:validation-error"
