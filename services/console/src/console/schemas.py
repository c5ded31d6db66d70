"""Request and response contracts of the console service.

Input schemas refuse unknown fields (marshmallow's default): a body carrying ``id`` is a 422
that stores nothing.
"""

from __future__ import annotations

import marshmallow as ma

NAME_PATTERN = r"\A[^\x00]*[^\s\x00][^\x00]*\Z"
"""Text with something besides white space (as Python's ``str.isspace`` counts it), no NUL:
a pattern rather than a check in code, so the OpenAPI document promises what is accepted."""


class ActionCreate(ma.Schema):
    """A new one of the actions."""

    name = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(min=1, max=200),
            ma.validate.Regexp(NAME_PATTERN, error="Must not be blank."),
        ],
        metadata={"description": "Unique: no two actions share a name."},
    )
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000))


class ActionPublic(ma.Schema):
    """One of the actions, as anyone may read it."""

    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class ActionsPublic(ma.Schema):
    """A page of actions, and the cursor of the next page."""

    items = ma.fields.List(
        ma.fields.Nested(ActionPublic),
        dump_only=True,
    )
    next_cursor = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Pass as ?cursor= for more."}
    )
