"""Request and response contracts of the users service.

Input schemas refuse unknown fields (marshmallow's default), so a request carrying ``roles``,
``id`` or ``password_hash`` is a 422 that changes nothing: no mass assignment.
"""

from __future__ import annotations

import marshmallow as ma

USERNAME_PATTERN = r"\A[a-z0-9_.-]{3,32}\Z"  # \Z: "$" would accept a final newline


def _password(description: str) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(min=8, max=128),
        metadata={"description": description},
    )


def _display_name() -> ma.fields.String:
    return ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=100))


class UserCreate(ma.Schema):
    """Registration: a new account's name, e-mail and password."""

    username = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(
            USERNAME_PATTERN, error="Use 3 to 32 characters from a-z, 0-9, '_', '.' and '-'."
        ),
    )
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    password = _password("8 to 128 characters; stored only as an Argon2id hash.")
    display_name = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(min=1, max=100)
    )


class UserUpdate(ma.Schema):
    """Changes to one's own account; only the fields given change."""

    email = ma.fields.Email(validate=ma.validate.Length(max=254))
    display_name = _display_name()


class PasswordChange(ma.Schema):
    """A new password, authorised by the current one."""

    current_password = _password("The password in use now.")
    new_password = _password("8 to 128 characters.")


class UserPublic(ma.Schema):
    """What any signed-in user may see of an account: never its e-mail or roles."""

    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class UserPrivate(UserPublic):
    """What the account's owner and administrators see."""

    email = ma.fields.String(dump_only=True)
    roles = ma.fields.List(ma.fields.String(), dump_only=True)
    is_active = ma.fields.Boolean(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class UsersPrivate(ma.Schema):
    """A page of accounts, for administrators, and the cursor of the next page."""

    items = ma.fields.List(ma.fields.Nested(UserPrivate), dump_only=True)
    next_cursor = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Pass as ?cursor= for more."}
    )


class TokenCreate(ma.Schema):
    """Credentials for a login."""

    login = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=254),
        metadata={"description": "User name or e-mail address."},
    )
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=128)
    )


class TokenRefresh(ma.Schema):
    """A refresh token, to use (refresh) or to end its session (logout)."""

    refresh_token = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=256)
    )


class TokenPair(ma.Schema):
    """An access token for the APIs and the refresh token that gets the next one."""

    access_token = ma.fields.String(dump_only=True)
    token_type = ma.fields.String(dump_only=True, metadata={"description": "Always Bearer."})
    expires_in = ma.fields.Integer(dump_only=True, metadata={"description": "Seconds."})
    refresh_token = ma.fields.String(dump_only=True)
    refresh_expires_in = ma.fields.Integer(dump_only=True, metadata={"description": "Seconds."})


class ServiceTokenRequest(ma.Schema):
    """A service asking for its own token (RFC 6749 4.4), as an HTML form's fields."""

    grant_type = ma.fields.String(
        required=True,
        load_only=True,
        validate=ma.validate.Length(max=64),
        metadata={"description": "Always client_credentials."},
    )


class ServiceTokenPublic(ma.Schema):
    """A service's own access token; there is no refresh token: it asks again."""

    access_token = ma.fields.String(dump_only=True)
    token_type = ma.fields.String(dump_only=True, metadata={"description": "Always Bearer."})
    expires_in = ma.fields.Integer(dump_only=True, metadata={"description": "Seconds."})


class JsonWebKeySet(ma.Schema):
    """RFC 7517 JWK Set: the public keys access tokens are verified with."""

    keys = ma.fields.List(ma.fields.Dict(), dump_only=True)
