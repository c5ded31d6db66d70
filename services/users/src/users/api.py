"""HTTP endpoints of the users service: parse, call one service function, return a schema."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from flotilla.api import ProblemSchema
from flotilla.pagination import Page, PageQuery
from users import service
from users.models import User
from users.schemas import UserCreate, UserPublic, UsersPublic

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Accounts.")

USER_ID = "<int(max=9223372036854775807):user_id>"


@blp.post("")
@blp.arguments(UserCreate)
@blp.response(201, UserPublic)
@blp.alt_response(409, schema=ProblemSchema, description="Username or e-mail taken.")
def register_user(data: dict[str, Any]) -> tuple[User, dict[str, str]]:
    """Register an account."""
    user = service.register_user(**data)
    return user, {"Location": url_for("users.get_user", user_id=user.id)}


@blp.get(f"/{USER_ID}")
@blp.response(200, UserPublic)
@blp.alt_response(404, schema=ProblemSchema, description="No such user.")
def get_user(user_id: int) -> User:
    """Read an account's public profile."""
    return service.get_user(user_id)


@blp.get("")
@blp.arguments(PageQuery, location="query", as_kwargs=True)
@blp.response(200, UsersPublic)
def list_users(limit: int, cursor: str | None) -> Page[User]:
    """List accounts in registration order, one page at a time."""
    return service.list_users(limit=limit, cursor=cursor)
