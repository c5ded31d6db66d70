"""Request bodies parsed once, strictly, the same way for every view: :func:`parse_body`.

Three kinds of JSON a service must never pass on to its logic, all refused here as a 400
problem before any view runs:

* text that is not UTF-8, or that escapes half of a surrogate pair (``"\\ud800"``): RFC 8259
  leaves its meaning open and RFC 7493 (I-JSON) forbids it. Python would carry it as a ``str``
  that cannot be encoded, so it fails only later, in the database driver, the password hasher
  or a digest, as a 500. orjson refuses both while parsing.
* nesting deeper than :data:`MAX_DEPTH`: no body of a service's API is deeper than a few
  levels, while a thousand nested ``[`` (a 2 kB body) exhausts Python's recursion limit in
  whatever walks the value next (a validator, a log formatter): a 500 with a traceback.
* anything that is not JSON at all.

See docs/adr/0021-strict-inputs.md.
"""

from __future__ import annotations

from typing import Any

import orjson

from flotilla.web.errors import JsonTooDeep, MalformedJson

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a request body; the top level is 1."""


def parse_body(data: bytes | str) -> Any:
    """The JSON value of a request body, or :class:`MalformedJson` / :class:`JsonTooDeep`."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        detail = f"The request body is not valid JSON: {error.msg} at byte {error.pos}."
        raise MalformedJson(detail) from None
    if _nests_deeper_than(value, MAX_DEPTH):
        raise JsonTooDeep(f"The request body nests arrays and objects deeper than {MAX_DEPTH}.")
    return value


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Walk the containers only, without recursion: the walk must not fail where parsing did not."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
