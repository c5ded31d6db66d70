"""Flask JSON provider backed by orjson: several times faster than the standard library."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider

from flotilla.web.jsonbody import parse_body


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class OrjsonProvider(JSONProvider):
    """Serialises with orjson; datetimes, UUIDs and dataclasses work out of the box."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj`` to a JSON string."""
        return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text strictly: :func:`flotilla.web.jsonbody.parse_body`.

        Flask parses every request's ``get_json`` with this method, so it refuses what the
        views' arguments refuse; the error is :class:`~flotilla.web.errors.MalformedJson`, a
        ``ValueError`` as Flask expects.
        """
        return parse_body(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """A JSON response without the detour through ``str``."""
        payload = self._prepare_response_obj(args, kwargs)
        body = orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)
        return Response(body, mimetype="application/json")
