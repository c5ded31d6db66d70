"""Arguments parsed by flotilla's Blueprint: NUL characters are refused wherever they hide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import marshmallow as ma
import pytest
from flask import Flask
from flask.testing import FlaskClient

from flotilla import ServiceSettings, create_service, register_blueprints
from flotilla.web.api import Blueprint


class NoteCreate(ma.Schema):
    """A note with a title and tags."""

    title = ma.fields.String(required=True)
    tags = ma.fields.List(ma.fields.String(), load_default=list)
    extra = ma.fields.Dict(load_default=dict)


class NoteQuery(ma.Schema):
    """A search."""

    q = ma.fields.String(load_default="")


def make_app(tmp_path: Path) -> Flask:
    """A service with one endpoint taking a body and one taking a query."""
    app = create_service("parser_sample", ServiceSettings(VAR_DIR=tmp_path))
    blp = Blueprint("notes", __name__, url_prefix="/notes")
    blp.post("")(blp.arguments(NoteCreate)(blp.response(201)(lambda data: data)))
    blp.get("")(blp.arguments(NoteQuery, location="query")(blp.response(200)(lambda data: data)))
    register_blueprints(app, blp)
    return app


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    """A client of the sample service."""
    return make_app(tmp_path).test_client()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "a\x00b"}, "title"),
        ({"title": "ok", "tags": ["fine", "bad\x00"]}, "tags.1"),
        ({"title": "ok", "extra": {"key": {"deep": "\x00"}}}, "extra.key.deep"),
        ({"title": "ok", "extra": {"k\x00": 1}}, "extra.k\x00"),
    ],
)
def test_a_nul_character_in_the_body_is_a_422_naming_the_field(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/notes", json=body)
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["errors"] == [
        {"location": "json", "field": field, "message": "Must not contain a NUL character."}
    ]


def test_a_nul_character_in_the_query_is_a_422(client: FlaskClient) -> None:
    response = client.get("/notes?q=a%00b")
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["errors"][0]["field"] == "q"


def test_clean_input_passes(client: FlaskClient) -> None:
    assert client.post("/notes", json={"title": "café", "tags": ["x"]}).status_code == 201
    assert client.get("/notes?q=plain").json == {"q": "plain"}
