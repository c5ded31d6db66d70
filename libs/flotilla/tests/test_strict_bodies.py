"""Inputs no view should ever see are refused once, by the chassis, as 4xx problems.

JSON nested deeper than :data:`flotilla.web.jsonbody.MAX_DEPTH`, lone surrogates, bytes that are
not UTF-8, a required body that is missing; and what the OpenAPI document says about errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import marshmallow as ma
import orjson
import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flotilla import ServiceSettings, create_service, register_blueprints
from flotilla.web.api import NO_NUL_PATTERN, Blueprint, ProblemSchema
from flotilla.web.errors import PROBLEM_MEDIA_TYPE, JsonTooDeep, MalformedJson
from flotilla.web.jsonbody import MAX_DEPTH, parse_body


class NoteUpdate(ma.Schema):
    """Every field optional, as in a PATCH."""

    title = ma.fields.String()
    body = ma.fields.Raw()


def make_app(tmp_path: Path) -> Flask:
    """A service with a PATCH (body required), a POST whose body is optional, and a hook."""
    app = create_service("bodies_sample", ServiceSettings(VAR_DIR=tmp_path))
    blp = Blueprint("notes", __name__, url_prefix="/notes")
    alt = blp.alt_response(409, schema=ProblemSchema, description="Taken.")
    blp.patch("")(blp.arguments(NoteUpdate)(blp.response(200)(alt(lambda data: data))))
    optional = blp.arguments(NoteUpdate, required=False)
    blp.post("/optional")(optional(blp.response(200)(lambda data: data)))
    blp.post("/silent")(blp.response(200)(lambda: {"json": request.get_json(silent=True)}))
    register_blueprints(app, blp)
    return app


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    """A client of the sample service."""
    return make_app(tmp_path).test_client()


def nested(depth: int) -> bytes:
    """Arrays nested ``depth`` deep: ``[[...]]``."""
    return b"[" * depth + b"]" * depth


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    problem: dict[str, Any] = orjson.loads(response.data)
    assert problem["type"] == f"urn:flotilla:problem:{code}"
    return problem


def test_nesting_up_to_the_limit_parses_and_one_more_level_does_not() -> None:
    assert parse_body(nested(MAX_DEPTH)) == parse_body(nested(MAX_DEPTH))
    with pytest.raises(JsonTooDeep):
        parse_body(nested(MAX_DEPTH + 1))
    with pytest.raises(JsonTooDeep):
        parse_body(b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_nesting_past_any_recursion_limit_is_refused_not_crashed(depth: int) -> None:
    with pytest.raises(MalformedJson):  # orjson stops at 1024; JsonTooDeep below that
        parse_body(nested(depth))


@pytest.mark.parametrize(
    "text", [rb'"\ud800"', rb'"a\udc00"', rb'"\ud800\u0041"', b'"\xed\xa0\x80"', b'"\xff"']
)
def test_lone_surrogates_and_bytes_that_are_not_utf8_are_malformed(text: bytes) -> None:
    with pytest.raises(MalformedJson):
        parse_body(b'{"login":' + text + b"}")


def test_a_surrogate_pair_and_other_unicode_parse() -> None:
    assert parse_body(rb'"\ud83d\ude00 \u00e9"') == "\U0001f600 é"


def test_malformed_json_is_a_value_error_so_silent_parsing_stays_silent() -> None:
    assert issubclass(MalformedJson, ValueError)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_a_deep_body_is_a_400_problem(client: FlaskClient, depth: int) -> None:
    response = client.patch("/notes", data=nested(depth), content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_MEDIA_TYPE


def test_a_body_at_the_depth_limit_reaches_the_view(client: FlaskClient) -> None:
    body = {"body": orjson.loads(nested(MAX_DEPTH - 1))}
    assert client.patch("/notes", json=body).status_code == 200


def test_a_lone_surrogate_is_a_400_problem_saying_where(client: FlaskClient) -> None:
    body = rb'{"title":"\ud800"}'
    response = client.patch("/notes", data=body, content_type="application/json")
    problem = assert_problem(response, 400, "malformed-json")
    assert "surrogate" in problem["detail"]


def test_a_hook_reading_the_body_silently_gets_none_not_a_crash(client: FlaskClient) -> None:
    for body in (rb'{"a":"\ud800"}', nested(1_000), b"\xff"):
        response = client.post("/notes/silent", data=body, content_type="application/json")
        assert response.status_code == 200
        assert response.get_json() == {"json": None}


def test_a_patch_without_a_body_is_a_422_problem(client: FlaskClient) -> None:
    problem = assert_problem(client.patch("/notes"), 422, "validation-error")
    assert problem["errors"] == [
        {"location": "json", "field": None, "message": "A request body is required."}
    ]


def test_an_empty_json_object_is_still_a_body(client: FlaskClient) -> None:
    assert client.patch("/notes", json={}).status_code == 200


def test_a_body_declared_optional_may_be_left_out(client: FlaskClient) -> None:
    assert client.post("/notes/optional").status_code == 200


def test_the_document_declares_errors_as_problem_json(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    responses = document["paths"]["/notes"]["patch"]["responses"]
    assert list(responses["409"]["content"]) == [PROBLEM_MEDIA_TYPE]
    shared = document["components"]["responses"]
    assert shared
    assert all(list(item["content"]) == [PROBLEM_MEDIA_TYPE] for item in shared.values())
    assert document["components"]["schemas"]["Problem"]["additionalProperties"] is True


def test_the_document_says_free_text_refuses_nul(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    title = document["components"]["schemas"]["NoteUpdate"]["properties"]["title"]
    assert title["pattern"] == NO_NUL_PATTERN
