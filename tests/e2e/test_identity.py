"""Identity across real processes: users and another service, each under Gunicorn.

users runs on PostgreSQL with its limits in Redis and two workers; the other service knows
only users' JWKS URL. The tests talk HTTP to both, restart users with a rotated key while the
other service keeps running, and check the rate limit is shared by users' workers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from flotilla.auth import SigningKey, public_pem
from flotilla.testing import (
    GunicornServer,
    free_port,
    migrate,
    postgres_database,
    service_redis,
    wait_until,
)
from users import create_app
from users.config import UsersSettings

from .calls import Body, call

E2E_DIR = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"


@dataclass
class Shop:
    """The two running services and what users needs to be restarted."""

    users: GunicornServer
    protected: GunicornServer
    users_env: dict[str, str]
    tmp_path: Path

    def restart_users(self, **env: str) -> None:
        """Stop users and start it again on the same port with ``env`` changed."""
        self.users.stop()
        self.users_env.update(env)
        self.users = users_server(self.users_env, self.tmp_path, port=self.users.port)


def users_server(env: Mapping[str, str], tmp_path: Path, *, port: int) -> GunicornServer:
    """users under Gunicorn with ``env``."""
    server = GunicornServer(
        "users.wsgi:app", env=env, log_path=tmp_path / "users.log", port=port, cwd=tmp_path
    )
    server.start()
    return server


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    """users (PostgreSQL, Redis limits, 2 workers) and the protected service, started."""
    service_name = f"users-e2e-{uuid.uuid4().hex[:8]}"
    with postgres_database() as database_url, service_redis(service_name) as redis_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SERVICE_NAME": service_name,
            "VAR_DIR": str(tmp_path),
            "AUTH_SIGNING_KEY": SigningKey.generate().private_pem(),
            "LOGIN_RATE_LIMIT_PER_ACCOUNT": "3/minute",
            "ARGON2_MEMORY_KIB": "1024",
            "GUNICORN_WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "users-metrics"),
        }
        migrate(create_app(UsersSettings(**env)))  # type: ignore[arg-type]
        users = users_server(env, tmp_path, port=free_port())
        protected_env = {
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(E2E_DIR), os.environ.get("PYTHONPATH")])
            ),
            "AUTH_JWKS_URL": f"{users.url}/.well-known/jwks.json",
            "AUTH_JWKS_MAX_AGE": "1",  # production: 300 s; the rotation test waits this long
            "GUNICORN_WORKERS": "1",  # one cache, so "the verifier has fetched" is one log line
            "VAR_DIR": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "protected-metrics"),
        }
        protected = GunicornServer(
            "protected_app:app",
            env=protected_env,
            log_path=tmp_path / "protected.log",
            cwd=tmp_path,
        )
        shop = Shop(users, protected, env, tmp_path)
        try:
            protected.start()
            yield shop
        finally:
            protected.stop()
            shop.users.stop()


def register_and_log_in(shop: Shop, username: str) -> Body:
    """Register ``username`` over HTTP and log in; the token pair."""
    account = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    status, _, _ = call("POST", f"{shop.users.url}/api/v1/users", account)
    assert status == 201
    status, tokens, headers = call(
        "POST", f"{shop.users.url}/api/v1/tokens", {"login": username, "password": PASSWORD}
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    return tokens


def test_another_service_verifies_users_tokens_from_the_jwks(shop: Shop) -> None:
    tokens = register_and_log_in(shop, "nina")
    mine = f"{shop.protected.url}/api/v1/things/mine"

    status, body, _ = call("GET", mine, token=tokens["access_token"])
    assert (status, body["roles"]) == (200, ["customer"])
    user_id = body["user_id"]
    wait_for_log(shop.protected, lambda record: record.get("user_id") == user_id)

    status, body, headers = call("GET", mine)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="protected_app"'
    status, body, _ = call(
        "GET", f"{shop.protected.url}/api/v1/things/all", token=tokens["access_token"]
    )
    assert (status, body["type"]) == (403, "urn:flotilla:problem:insufficient-role")

    status, refreshed, _ = call(
        "POST",
        f"{shop.users.url}/api/v1/tokens/refresh",
        {"refresh_token": tokens["refresh_token"]},
    )
    assert status == 200
    assert call("GET", mine, token=refreshed["access_token"])[0] == 200


def test_a_key_rotation_rejects_no_token_and_needs_no_verifier_restart(shop: Shop) -> None:
    mine = f"{shop.protected.url}/api/v1/things/mine"
    old_tokens = register_and_log_in(shop, "otto")
    assert call("GET", mine, token=old_tokens["access_token"])[0] == 200
    old_key, new_key = (
        SigningKey.from_pem(shop.users_env["AUTH_SIGNING_KEY"]),
        SigningKey.generate(),
    )

    shop.restart_users(AUTH_NEXT_KEYS=public_pem(new_key.public_key))  # step 2: publish
    wait_until_fetched(shop, mine, old_tokens["access_token"], new_key.kid)

    shop.restart_users(  # step 3: sign with the new key, keep the old one published
        AUTH_SIGNING_KEY=new_key.private_pem(),
        AUTH_RETIRED_KEYS=public_pem(old_key.public_key),
        AUTH_NEXT_KEYS="",
    )
    status, new_tokens, _ = call(
        "POST", f"{shop.users.url}/api/v1/tokens", {"login": "otto", "password": PASSWORD}
    )
    assert status == 200
    assert call("GET", mine, token=new_tokens["access_token"])[0] == 200
    assert call("GET", mine, token=old_tokens["access_token"])[0] == 200

    shop.restart_users(AUTH_RETIRED_KEYS="")  # step 4: the old key is dropped
    wait_until_fetched(shop, mine, new_tokens["access_token"], new_key.kid, without=old_key.kid)
    status, body, _ = call("GET", mine, token=old_tokens["access_token"])
    assert (status, body["detail"]) == (401, "The token is signed with an unknown key.")


def wait_for_log(server: GunicornServer, matches: Callable[[Body], bool]) -> None:
    """Wait until ``server`` has written a log line that ``matches``."""
    wait_until(
        lambda: any(matches(record) for record in server.log_records()),
        timeout=15,
        what="the expected log line",
    )


def wait_until_fetched(
    shop: Shop, url: str, token: str, kid: str, *, without: str | None = None
) -> None:
    """Call ``url`` until the verifier has fetched a JWKS with ``kid`` (and not ``without``)."""

    def fetched() -> bool:
        call("GET", url, token=token)  # each request may refresh the expired cache
        return any(
            record.get("message") == "jwks fetched"
            and kid in (kids := record.get("kids") or [])
            and without not in kids
            for record in shop.protected.log_records()
        )

    wait_until(fetched, timeout=30, what=f"a JWKS fetch with {kid}")


def test_the_login_limit_is_shared_by_every_users_worker(shop: Shop) -> None:
    register_and_log_in(shop, "pia")  # one attempt of three used
    url = f"{shop.users.url}/api/v1/tokens"
    wrong = {"login": "pia", "password": "not the password"}
    assert [call("POST", url, wrong)[0] for _ in range(2)] == [401, 401]
    status, body, headers = call("POST", url, {"login": "PIA", "password": PASSWORD})
    assert (status, body["type"]) == (429, "urn:flotilla:problem:too-many-requests")
    assert int(headers["Retry-After"]) >= 1
    service = shop.users_env["SERVICE_NAME"]
    with redis.Redis.from_url(shop.users_env["REDIS_URL"]) as connection:  # where all count
        assert list(connection.scan_iter(f"flotilla:{service}:limits:*"))
