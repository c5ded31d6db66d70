"""OpenAPI 3 and Swagger UI through flask-smorest, with errors as problem+json.

Views declare their contract with flask-smorest decorators (``@blp.arguments``,
``@blp.response``); the spec is served at ``/openapi.json`` and Swagger UI at ``/docs``,
with its files from the service itself (:mod:`flotilla.web.swagger_ui`).
"""

from __future__ import annotations

import copy
import functools
import http
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Flask, Response, current_app, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from flotilla.web.errors import (
    PROBLEM_MEDIA_TYPE,
    ValidationFailed,
    problem_from_http_exception,
    problem_response,
)
from flotilla.web.jsonbody import parse_body
from flotilla.web.swagger_ui import SWAGGER_UI_URL

F = TypeVar("F", bound=Callable[..., Any])

PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}

_EXTENSION_KEY = "flotilla.api"
NO_NUL_PATTERN = r"^[^\x00]*$"
"""What :class:`ServiceParser` accepts in text, said in the document (ECMA-262 and Python)."""


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every error response of a Flotilla service.

    Open to more members (``additionalProperties``): RFC 9457 lets a problem type add its
    own, such as the ``product_ids`` an unavailable product names.
    """

    class Meta:
        unknown = ma.INCLUDE

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
    """webargs' Flask parser: strict JSON, and no NUL character anywhere in the input.

    The body is parsed by :func:`flotilla.web.jsonbody.parse_body` (webargs would use the
    standard library, which recurses until Python's stack runs out on deep nesting and lets
    lone surrogates through): malformed, non-UTF-8 or too deeply nested JSON is a 400.

    PostgreSQL cannot store U+0000 in text (the insert fails: a 500) while SQLite stores it,
    and no field of a JSON API needs it. Refusing it while parsing answers 422 naming the
    field, on every database, before any logic runs.
    """

    def _raw_load_json(self, req: Any) -> Any:
        """The parsed body, or ``missing`` when there is none or it is not declared JSON."""
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        return parse_body(data) if data else core.missing

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
        parse = super().arguments(instance, *args, **kwargs)
        if kwargs.get("location", "json") != "json" or not kwargs.get("required", True):
            return parse
        return lambda view: _require_body(parse(view))

    def alt_response(self, status_code: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's ``alt_response``; an error's content is ``application/problem+json``."""
        if kwargs.get("content_type") is None and _is_error(status_code):
            kwargs["content_type"] = PROBLEM_MEDIA_TYPE
        return super().alt_response(status_code, *args, **kwargs)


def _require_body(view: F) -> F:
    """Refuse a request without a body (422) before ``view`` parses it.

    webargs reads a missing JSON body as ``{}``, which a schema of optional fields (a PATCH)
    accepts: the request would succeed although the document says the body is required.
    """

    @functools.wraps(view)
    def with_body(*args: Any, **kwargs: Any) -> Any:
        if not request.get_data(cache=True):
            missing = {"location": "json", "field": None, "message": "A request body is required."}
            raise ValidationFailed("The request has no body.", errors=[missing])
        return view(*args, **kwargs)

    return with_body  # type: ignore[return-value]


def _text_without_nul(
    converter: Any, field: ma.fields.Field[Any], ret: dict[str, Any]
) -> dict[str, Any]:
    """A ``pattern`` refusing NUL for a string with no pattern, format or choices of its own.

    A field's own pattern, format or enum already excludes it; the others would otherwise
    promise a client (and a contract test) that any text is accepted.
    """
    kinds = ret.get("type")
    is_text = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    if not is_text or {"pattern", "format", "enum"} & ret.keys():
        return {}
    return {"pattern": NO_NUL_PATTERN}


def _is_error(status_code: Any) -> bool:
    try:
        return int(http.HTTPStatus(int(status_code))) >= 400
    except ValueError:
        return False  # "default", "2XX": not one error status


class ServiceApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, rendering every HTTP error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *args: Any, **kwargs: Any) -> None:
        """flask-smorest's spec, whose free text fields say that NUL is refused."""
        super()._init_spec(*args, **kwargs)
        self.ma_plugin.converter.add_attribute_function(_text_without_nul)

    def _register_responses(self) -> None:
        """flask-smorest's shared error responses, declared as ``application/problem+json``.

        flask-smorest declares them with its default content type, ``application/json``,
        while every error is served as problem+json: a client or a contract test reading the
        document would expect the wrong type.
        """
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Render a Werkzeug/webargs error with the shared problem format."""
        return problem_response(problem_from_http_exception(error))


def api_config(title: str, version: str) -> dict[str, Any]:
    """Flask config keys flask-smorest reads: title, version, spec and UI paths.

    The document's ``info.version`` is the service's release (its package version): what a
    client reads there is the implementation it talks to; the API's major version is in
    every path (``/api/v1``).
    """
    return {
        "API_TITLE": title,
        "API_VERSION": version,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": SWAGGER_UI_URL,
    }


def keep_api(app: Flask, api: ServiceApi) -> None:
    """Keep ``api`` on ``app`` for :func:`api_of`."""
    app.extensions[_EXTENSION_KEY] = api


def api_of(app: Flask) -> ServiceApi | None:
    """The OpenAPI registry of ``app``; None for an app made without one."""
    api: ServiceApi | None = app.extensions.get(_EXTENSION_KEY)
    return api


def register_blueprints(app: Flask, *blueprints: flask_smorest.Blueprint) -> None:
    """Add resource blueprints to the app's API so they appear in the OpenAPI document."""
    api: ServiceApi = app.extensions[_EXTENSION_KEY]
    for blueprint in blueprints:
        api.register_blueprint(blueprint)


def json_document(body: bytes) -> Response:
    """A 200 JSON answer of ``body``, already rendered (a cached document): nothing is dumped.

    flask-smorest returns a view's ``Response`` as it is, so the view keeps its declared
    schema in the OpenAPI document while the bytes come from wherever they were rendered.
    """
    response: Response = current_app.response_class(body, mimetype="application/json")
    return response


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
