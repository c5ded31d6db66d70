"""Logs are JSON with the request context; the request id is validated and echoed."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from flask.testing import FlaskClient

from flotilla.observability.logging import JsonFormatter, info_fast
from flotilla.testing import capture_logs
from flotilla.web import context
from flotilla.web.context import RequestContext, accept_request_id


def test_a_record_is_one_json_object_with_the_standard_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("users"))
    logger = logging.getLogger("test.logging.fields")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning("user registered", extra={"user_id": 7})
    line = stream.getvalue()
    assert line.count("\n") == 1
    record = orjson.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "test.logging.fields"
    assert record["message"] == "user registered"
    assert record["service"] == "users"
    assert record["user_id"] == 7
    assert record["ts"].endswith("+00:00")


def test_the_context_extra_fields_are_in_every_line_and_the_record_wins() -> None:
    task = RequestContext("req-9", "TASK", "t.run", extra={"task_id": "abc", "trace_id": "f" * 32})
    token = context.begin(task)
    try:
        with capture_logs() as logs:
            logging.getLogger("test.logging.extra").info("ran", extra={"task_id": "own"})
            logging.getLogger("test.logging.extra").info("again")
    finally:
        context.end(token)
    assert [(line["request_id"], line["trace_id"]) for line in logs] == [("req-9", "f" * 32)] * 2
    assert [line["task_id"] for line in logs] == ["own", "abc"]
    with capture_logs() as outside:
        logging.getLogger("test.logging.extra").info("outside")
    assert "trace_id" not in outside[0]


def test_each_request_logs_one_line_with_its_context(client: FlaskClient) -> None:
    with capture_logs() as logs:
        response = client.get("/whoami/42", headers={"X-Request-ID": "req-42"})
    assert response.headers["X-Request-ID"] == "req-42"
    (line,) = [record for record in logs if record["message"] == "request finished"]
    assert line["request_id"] == "req-42"
    assert line["method"] == "GET"
    assert line["path"] == "/whoami/42"
    assert line["status"] == 200
    assert line["user_id"] == "42"
    assert line["duration_ms"] >= 0


def test_a_missing_request_id_is_generated(client: FlaskClient) -> None:
    response = client.get("/ok")
    assert len(response.headers["X-Request-ID"]) == 32


def test_an_unsafe_request_id_is_replaced(client: FlaskClient) -> None:
    response = client.get("/ok", headers={"X-Request-ID": 'bad id"};<script>'})
    assert len(response.headers["X-Request-ID"]) == 32


def test_request_id_rules() -> None:
    assert accept_request_id("abc-123_DEF.4") == "abc-123_DEF.4"
    assert accept_request_id("x" * 128) == "x" * 128
    assert accept_request_id("x" * 129) != "x" * 129
    assert accept_request_id("<script>") != "<script>"
    assert accept_request_id("") != ""


def test_a_line_written_straight_reads_as_the_same_record_through_logging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("orders"))
    handler.set_name("flotilla.stdout")  # the chassis' handler, as configure_logging names it
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])  # pytest's own capture handlers aside
    monkeypatch.setattr(root, "level", logging.INFO)
    logger = logging.getLogger("test.logging.straight")
    fields = {"status": 201, "duration_ms": 4.2}
    token = context.begin(RequestContext(request_id="req-7", method="POST", path="/x"))
    try:
        info_fast(logger, "request finished", fields)
        logger.info("request finished", extra=fields)
    finally:
        context.end(token)

    straight, through_logging = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert straight.pop("ts").endswith("+00:00")
    through_logging.pop("ts")
    assert straight == through_logging
    assert straight["request_id"] == "req-7"


def test_with_another_handler_listening_the_line_goes_through_logging() -> None:
    logger = logging.getLogger("test.logging.captured")
    with capture_logs() as logs:
        info_fast(logger, "request finished", {"status": 200})
    assert [(line["message"], line["status"]) for line in logs] == [("request finished", 200)]
