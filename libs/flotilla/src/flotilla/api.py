"""OpenAPI 3 and Swagger UI through flask-smorest, with errors as problem+json.

Views declare their contract with flask-smorest decorators (``@blp.arguments``,
``@blp.response``); the spec is served at ``/openapi.json`` and Swagger UI at ``/docs``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Flask, Response, current_app
from flask_smorest import Api
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from flotilla.errors import problem_from_http_exception, problem_response

F = TypeVar("F", bound=Callable[..., Any])

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.18.2/"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every error response of a Flotilla service."""

    type = ma.fields.String(metadata={"description": "URI reference naming the problem type"})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong in this request"})
    instance = ma.fields.String(metadata={"description": "Path of the request"})
    request_id = ma.fields.String(metadata={"description": "Id to find the request in logs"})
    errors = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "Each invalid field, for 422"}
    )


class ServiceParser(FlaskParser):
    """webargs' Flask parser, refusing text that holds a NUL character, anywhere in the input.

    PostgreSQL cannot store U+0000 in text (the insert fails: a 500) while SQLite stores it,
    and no field of a JSON API needs it. Refusing it while parsing answers 422 naming the
    field, on every database, before any logic runs.
    """

    def load_json(self, req: Any, schema: ma.Schema) -> Any:
        """The JSON body, if it holds no NUL character."""
        return _refuse_nul(super().load_json(req, schema))

    def load_querystring(self, req: Any, schema: ma.Schema) -> Any:
        """The query string, if it holds no NUL character."""
        return _refuse_nul(super().load_querystring(req, schema))


def _refuse_nul(data: Any) -> Any:
    found = dict(_nul_paths(data, ""))
    if found:
        raise ma.ValidationError(found)
    return data


def _nul_paths(value: Any, path: str) -> Iterator[tuple[str, list[str]]]:
    message = ["Must not contain a NUL character."]
    if isinstance(value, str) and "\x00" in value:
        yield path or "_schema", message
    elif isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                yield where, message
            yield from _nul_paths(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}" if path else str(index))


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint parsing arguments with :class:`ServiceParser`."""

    ARGUMENTS_PARSER = ServiceParser()

    def arguments(self, schema: type[ma.Schema] | ma.Schema, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's ``arguments``, with one schema instance for every request.

        Given a schema class, webargs builds an instance (and its nested schemas) on every
        request, deep-copying each declared field: about a tenth of placing an order. A
        schema instance is safe to share: loading keeps no state on it.
        """
        instance = schema() if isinstance(schema, type) else schema
        return super().arguments(instance, *args, **kwargs)


class ServiceApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, rendering every HTTP error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Render a Werkzeug/webargs error with the shared problem format."""
        return problem_response(problem_from_http_exception(error))


def api_config(title: str, version: str) -> dict[str, Any]:
    """Flask config keys flask-smorest reads: title, version, spec and UI paths."""
    return {
        "API_TITLE": title,
        "API_VERSION": version,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": SWAGGER_UI_URL,
    }


def register_blueprints(app: Flask, *blueprints: flask_smorest.Blueprint) -> None:
    """Add resource blueprints to the app's API so they appear in the OpenAPI document."""
    api: ServiceApi = app.extensions["flotilla.api"]
    for blueprint in blueprints:
        api.register_blueprint(blueprint)


def json_document(body: bytes) -> Response:
    """A 200 JSON answer of ``body``, already rendered (a cached document): nothing is dumped.

    flask-smorest returns a view's ``Response`` as it is, so the view keeps its declared
    schema in the OpenAPI document while the bytes come from wherever they were rendered.
    """
    response: Response = current_app.response_class(body, mimetype="application/json")
    return response


def current_api() -> ServiceApi:
    """The API of the current app."""
    api: ServiceApi = current_app.extensions["flotilla.api"]
    return api


def document_operation(view: F, *, problems: Mapping[int, str], **fields: Any) -> F:
    """Add problem responses and other OpenAPI operation fields to ``view``'s document.

    For decorators that change what an operation may answer (``require_auth``: 401/403,
    ``rate_limit``: 429) so the document says so wherever they are used.
    """
    apidoc = copy.deepcopy(getattr(view, "_apidoc", {}))  # never alter the wrapped view's
    manual = apidoc.setdefault("manual_doc", {})
    responses = manual.setdefault("responses", {})
    for status, description in problems.items():
        responses[str(status)] = {"description": description, "content": PROBLEM_CONTENT}
    manual.update(fields)
    view._apidoc = apidoc  # type: ignore[attr-defined]
    return view
