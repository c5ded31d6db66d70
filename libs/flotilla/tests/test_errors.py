"""Every error is application/problem+json with type, title, status, detail and request id."""

from __future__ import annotations

from flask.testing import FlaskClient

from flotilla.testing import capture_logs
from flotilla.web.errors import PROBLEM_MEDIA_TYPE, _flatten_messages


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    """Check the common problem shape and return the body."""
    assert getattr(response, "status_code") == status  # noqa: B009 - any response type
    assert getattr(response, "mimetype") == PROBLEM_MEDIA_TYPE  # noqa: B009
    body: dict[str, object] = getattr(response, "json")  # noqa: B009
    assert body["status"] == status
    assert body["type"] == f"urn:flotilla:problem:{code}"
    assert body["title"]
    assert body["request_id"]
    return body


def test_unknown_route_is_a_404_problem(client: FlaskClient) -> None:
    body = assert_problem(client.get("/missing"), 404, "not-found")
    assert body["instance"] == "/missing"


def test_wrong_method_is_a_405_problem_with_allow(client: FlaskClient) -> None:
    response = client.delete("/ok")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]


def test_raised_problem_keeps_its_detail_and_extensions(client: FlaskClient) -> None:
    body = assert_problem(client.get("/conflict"), 409, "conflict")
    assert body["detail"] == "The name is taken."
    assert body["name"] == "alice"


def test_malformed_json_is_a_400_problem(client: FlaskClient) -> None:
    response = client.post("/echo", data=b'{"a": ', content_type="application/json")
    assert_problem(response, 400, "malformed-json")


def test_non_json_body_is_a_415_problem(client: FlaskClient) -> None:
    response = client.post("/echo", data=b"a=1", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported-media-type")


def test_body_over_the_limit_is_a_413_problem(client: FlaskClient) -> None:
    response = client.post(
        "/echo", data=b"[" + b"1," * 600_000 + b"1]", content_type="application/json"
    )
    problem = assert_problem(response, 413, "payload-too-large")
    assert "1048576" in str(problem["detail"])


def test_json_body_within_limits_is_accepted(client: FlaskClient) -> None:
    response = client.post("/echo", json={"a": 1})
    assert response.status_code == 200
    assert response.json == {"a": 1}


def test_unexpected_exception_is_a_bare_500_logged_once(client: FlaskClient) -> None:
    with capture_logs() as logs:
        response = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500, "internal-error")
    assert "detail" not in body
    assert b"hunter2" not in response.data
    assert b"Traceback" not in response.data
    errors = [record for record in logs if record["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "boom-1"
    assert "hunter2" in errors[0]["exc_info"]


def test_webargs_messages_flatten_to_one_entry_per_field() -> None:
    messages = {"json": {"user": {"name": ["Too short."]}, "tags": {"0": ["Bad."]}}}
    assert list(_flatten_messages(messages)) == [
        {"location": "json", "field": "user.name", "message": "Too short."},
        {"location": "json", "field": "tags.0", "message": "Bad."},
    ]


def test_a_wrong_content_type_on_an_unknown_route_is_still_404(client: FlaskClient) -> None:
    response = client.post("/missing", data=b"a=1", content_type="text/plain")
    assert_problem(response, 404, "not-found")


def test_a_wrong_content_type_with_a_wrong_method_is_still_405(client: FlaskClient) -> None:
    response = client.put("/echo", data=b"a=1", content_type="text/plain")
    assert_problem(response, 405, "method-not-allowed")
