"""Request and response contracts of the users service."""

from __future__ import annotations

import marshmallow as ma

USERNAME_PATTERN = r"\A[a-z0-9_.-]{3,32}\Z"  # \Z: "$" would accept a final newline


class UserCreate(ma.Schema):
    """Registration: a new account's name, e-mail and password."""

    username = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(
            USERNAME_PATTERN, error="Use 3 to 32 characters from a-z, 0-9, '_', '.' and '-'."
        ),
    )
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(min=8, max=128),
        metadata={"description": "8 to 128 characters; stored only as an Argon2id hash."},
    )
    display_name = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(min=1, max=100)
    )


class UserPublic(ma.Schema):
    """What anyone may see of an account: never its e-mail or password hash."""

    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class UsersPublic(ma.Schema):
    """A page of accounts and the cursor of the next page."""

    items = ma.fields.List(ma.fields.Nested(UserPublic), dump_only=True)
    next_cursor = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Pass as ?cursor= for more."}
    )
