"""Rate limits: 429 problems with Retry-After, per key and scope, from settings, in Redis."""

# flask-smorest is untyped; its decorators declare the sample blueprint's contract.
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import marshmallow as ma
import pytest
import redis
from flask import Flask, request
from flask.testing import FlaskClient
from flask_smorest import Blueprint
from pydantic import Field, ValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.test import TestResponse

from flotilla import (
    Limits,
    RateLimitString,
    ServiceSettings,
    Unauthorized,
    create_service,
    rate_limit,
    register_blueprints,
)
from flotilla.serving.processes import stop_process
from flotilla.testing import ManualClock, capture_logs, free_port, service_redis
from flotilla.web.limits import REDIS_RETRY_INTERVAL

from .test_errors import assert_problem
from .test_metrics import sample


class SampleSettings(ServiceSettings):
    """The chassis settings plus one limit, as a service would declare it."""

    SAMPLE_RATE_LIMIT: RateLimitString = Field(
        "2/minute", description="Requests to /configured per client address."
    )


class ThingCreate(ma.Schema):
    """A body with one required field, to provoke 422s."""

    name = ma.fields.String(required=True)


def account_header() -> str | None:
    """The bucket key of /keyed: the account named in a header, none without it."""
    return request.headers.get("X-Account")


def build_limited_app(tmp_path: Path, **settings: Any) -> Flask:
    """A service with one route per way of declaring a limit."""
    app = create_service("limits_sample", SampleSettings(VAR_DIR=tmp_path, **settings))

    @app.get("/ping")
    @rate_limit("3/minute")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/keyed")
    @rate_limit("2/minute", key=account_header)
    def keyed() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/configured")
    @rate_limit("SAMPLE_RATE_LIMIT")
    def configured() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/burst")
    @rate_limit("2/second;3/minute")
    def burst() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/login")
    @rate_limit("2/minute", only_failures=True)
    def login() -> tuple[dict[str, str], int]:
        password = request.get_json()["password"]
        if password == "wrong":
            raise Unauthorized("Wrong password.")
        return {"password": password}, 400 if password == "" else 200

    register_blueprints(app, _things_blueprint())
    return app


def _things_blueprint() -> Blueprint:
    blueprint = Blueprint("things", __name__, url_prefix="/things")

    @blueprint.post("")
    @rate_limit("2/minute", only_failures=True)
    @blueprint.arguments(ThingCreate)
    @blueprint.response(201, ThingCreate)
    def create_thing(thing: dict[str, str]) -> dict[str, str]:
        """Create a thing."""
        return thing

    return blueprint


@pytest.fixture
def service_name() -> str:
    """A name no other test or run uses, so Redis keys never leak between tests."""
    return f"limits-test-{uuid.uuid4().hex[:12]}"


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path, service_name: str) -> Iterator[AppFactory]:
    """Builds sample services (named ``service_name`` unless told); closes their Redis pools."""
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = build_limited_app(tmp_path, **{"SERVICE_NAME": service_name, **settings})
        apps.append(app)
        return app

    yield make
    for app in apps:
        limits: Limits = app.extensions["flotilla.limits"]
        limits.close()


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    """A client of the sample service with limits in process memory."""
    return make_app(REDIS_URL="").test_client()


@pytest.fixture
def redis_url(service_name: str) -> Iterator[str]:
    """The test Redis; keys of services named after ``service_name`` are deleted afterwards."""
    with service_redis(service_name) as url:
        yield url


def limit_keys(url: str, service_name: str) -> list[bytes]:
    """The keys the service's limits keep in Redis."""
    with redis.Redis.from_url(url) as connection:
        return list(connection.scan_iter(match=f"flotilla:{service_name}:limits:*"))


def statuses(client: FlaskClient, path: str, times: int, **kwargs: Any) -> list[int]:
    """The status codes of ``times`` GETs of ``path``."""
    return [client.get(path, **kwargs).status_code for _ in range(times)]


def assert_refused(response: TestResponse, limit: str) -> int:
    """Check the 429 problem and return its Retry-After."""
    body = assert_problem(response, 429, "too-many-requests")
    assert f"The limit of {limit} was reached" in str(body["detail"])
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_the_request_past_the_limit_is_a_429_problem(client: FlaskClient) -> None:
    assert statuses(client, "/ping", 3) == [200, 200, 200]
    retry_after = assert_refused(client.get("/ping"), "3 per 1 minute")
    assert retry_after <= 60


def test_refusals_are_counted_by_scope(client: FlaskClient) -> None:
    before = sample(client, "flotilla_rate_limited_total", scope="ping")
    statuses(client, "/ping", 5)
    assert sample(client, "flotilla_rate_limited_total", scope="ping") == before + 2


def test_each_client_address_has_its_own_bucket(client: FlaskClient) -> None:
    first = {"environ_base": {"REMOTE_ADDR": "192.0.2.1"}}
    second = {"environ_base": {"REMOTE_ADDR": "192.0.2.2"}}
    assert statuses(client, "/ping", 4, **first) == [200, 200, 200, 429]
    assert statuses(client, "/ping", 3, **second) == [200, 200, 200]


def test_a_forged_forwarded_address_from_an_untrusted_peer_keeps_its_bucket(
    make_app: AppFactory,
) -> None:
    # Behind one proxy, but the request comes straight to the port from elsewhere: each
    # made-up X-Forwarded-For would otherwise be a fresh bucket, and the limit would be none.
    client = make_app(REDIS_URL="", PROXY_HOPS=1).test_client()
    forged = [
        client.get(
            "/ping",
            headers={"X-Forwarded-For": f"203.0.113.{number}"},
            environ_base={"REMOTE_ADDR": "198.51.100.7"},
        ).status_code
        for number in range(5)
    ]
    assert forged == [200, 200, 200, 429, 429]


def test_a_trusted_proxy_reports_each_client_in_its_own_bucket(make_app: AppFactory) -> None:
    client = make_app(REDIS_URL="", PROXY_HOPS=1, TRUSTED_PROXIES="10.1.0.0/16").test_client()
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    first = {"headers": {"X-Forwarded-For": "203.0.113.1"}, "environ_base": proxy}
    second = {"headers": {"X-Forwarded-For": "203.0.113.2"}, "environ_base": proxy}
    assert statuses(client, "/ping", 4, **first) == [200, 200, 200, 429]
    assert statuses(client, "/ping", 3, **second) == [200, 200, 200]


def test_each_key_has_its_own_bucket(client: FlaskClient) -> None:
    alice = {"headers": {"X-Account": "alice"}}
    bob = {"headers": {"X-Account": "bob"}}
    assert statuses(client, "/keyed", 3, **alice) == [200, 200, 429]
    assert statuses(client, "/keyed", 2, **bob) == [200, 200]


def test_no_key_means_no_limit(client: FlaskClient) -> None:
    assert statuses(client, "/keyed", 5) == [200] * 5


def test_scopes_are_separate_buckets(client: FlaskClient) -> None:
    assert statuses(client, "/ping", 4) == [200, 200, 200, 429]
    assert statuses(client, "/configured", 2) == [200, 200]


def test_a_limit_can_name_a_setting(make_app: AppFactory) -> None:
    client = make_app(REDIS_URL="", SAMPLE_RATE_LIMIT="1/hour").test_client()
    assert client.get("/configured").status_code == 200
    assert_refused(client.get("/configured"), "1 per 1 hour")


def test_a_malformed_limit_setting_stops_start_up() -> None:
    with pytest.raises(ValidationError, match="SAMPLE_RATE_LIMIT"):
        SampleSettings(SAMPLE_RATE_LIMIT="5 per fortnight")


def test_a_malformed_literal_limit_fails_at_declaration() -> None:
    with pytest.raises(ValueError, match="'5/fortnight'"):
        rate_limit("5/fortnight")


def test_every_one_of_several_limits_applies(client: FlaskClient) -> None:
    assert statuses(client, "/burst", 2) == [200, 200]
    assert assert_refused(client.get("/burst"), "2 per 1 second") == 1
    time.sleep(1.0)  # the per-second window frees up; the per-minute one has one request left
    assert client.get("/burst").status_code == 200
    assert assert_refused(client.get("/burst"), "3 per 1 minute") > 1


def test_only_failures_are_counted(client: FlaskClient) -> None:
    for _ in range(5):
        assert client.post("/login", json={"password": "right"}).status_code == 200
    assert client.post("/login", json={"password": "wrong"}).status_code == 401
    assert client.post("/login", json={"password": ""}).status_code == 400
    assert_refused(client.post("/login", json={"password": "right"}), "2 per 1 minute")


def test_disabled_limits_refuse_nothing(make_app: AppFactory) -> None:
    client = make_app(REDIS_URL="", RATE_LIMITS_ENABLED=False).test_client()
    assert statuses(client, "/ping", 6) == [200] * 6
    logins = [client.post("/login", json={"password": "wrong"}) for _ in range(4)]
    assert [response.status_code for response in logins] == [401] * 4


def test_limits_compose_with_flask_smorest(client: FlaskClient) -> None:
    for _ in range(3):
        assert client.post("/things", json={"name": "a"}).status_code == 201
    assert client.post("/things", json={}).status_code == 422
    assert client.post("/things", json={}).status_code == 422
    assert_refused(client.post("/things", json={"name": "a"}), "2 per 1 minute")
    spec = client.get("/openapi.json").json
    assert spec is not None
    operation = spec["paths"]["/things"]["post"]
    assert operation["summary"] == "Create a thing."
    assert "requestBody" in operation
    assert "201" in operation["responses"]


def test_apps_sharing_redis_share_buckets(make_app: AppFactory, redis_url: str) -> None:
    first = make_app(REDIS_URL=redis_url).test_client()
    second = make_app(REDIS_URL=redis_url).test_client()
    assert statuses(first, "/ping", 2) == [200, 200]
    assert statuses(second, "/ping", 2) == [200, 429]
    assert statuses(first, "/ping", 1) == [429]


def test_services_sharing_redis_keep_their_own_buckets(
    make_app: AppFactory, service_name: str, redis_url: str
) -> None:
    first = make_app(REDIS_URL=redis_url).test_client()
    other = make_app(REDIS_URL=redis_url, SERVICE_NAME=f"{service_name}-b").test_client()
    assert statuses(first, "/ping", 4) == [200, 200, 200, 429]
    assert statuses(other, "/ping", 3) == [200, 200, 200]
    assert limit_keys(redis_url, service_name)
    assert limit_keys(redis_url, f"{service_name}-b")


def test_unreachable_redis_falls_back_to_local_limits_with_one_warning(
    make_app: AppFactory,
) -> None:
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    with capture_logs() as logs:
        codes = statuses(client, "/ping", 5)
    assert codes == [200, 200, 200, 429, 429]
    warnings = [record for record in logs if record["level"] == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0]["logger"] == "flotilla.limits"
    assert "ConnectionError" in warnings[0]["error"]


def test_limits_return_to_redis_once_it_answers(
    make_app: AppFactory, service_name: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = make_app(REDIS_URL=url)
    clock = ManualClock()
    Limits(app, app.extensions["flotilla.settings"], clock=clock)
    client = app.test_client()
    with capture_logs() as logs:
        assert client.get("/ping").status_code == 200  # counted in memory
        with redis_server(port, tmp_path):
            assert client.get("/ping").status_code == 200  # still in memory: not yet retried
            assert limit_keys(url, service_name) == []
            clock.advance(REDIS_RETRY_INTERVAL)
            assert client.get("/ping").status_code == 200
            assert len(limit_keys(url, service_name)) == 1
    messages = [record["message"] for record in logs if record["logger"] == "flotilla.limits"]
    assert messages == [
        "rate limit storage unavailable, limiting in process memory",
        "rate limit storage available again",
    ]


@contextmanager
def redis_server(port: int, directory: Path) -> Iterator[None]:
    """A throw-away Redis on ``port``, stopped by PID afterwards."""
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_redis(f"redis://127.0.0.1:{port}/0", process)
        yield
    finally:
        stop_process(process, timeout=10)


def _wait_for_redis(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    no_retries = Retry(NoBackoff(), 0)
    with redis.Redis.from_url(url, socket_connect_timeout=0.5, retry=no_retries) as connection:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                connection.ping()
            except redis.ConnectionError:
                time.sleep(0.02)
            else:
                return
    raise TimeoutError(f"redis-server did not answer at {url}")
