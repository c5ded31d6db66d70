"""HTTP endpoints of console: parse, call one service function, return a schema."""

from __future__ import annotations

from typing import Any

from flask import url_for

from console import schemas, service
from console.models import Action
from flotilla import BIGINT_MAX, Blueprint, Page, PageQuery, ProblemSchema, require_auth

actions = Blueprint(
    "actions",
    __name__,
    url_prefix="/api/v1/actions",
    description="Actions, each with a name no other has.",
)

ID_PATH = f"/<int(max={BIGINT_MAX}):action_id>"


@actions.post("")
@require_auth()
@actions.arguments(schemas.ActionCreate)
@actions.response(201, schemas.ActionPublic)
@actions.alt_response(409, schema=ProblemSchema, description="Name taken.")
def create_action(
    data: dict[str, Any],
) -> tuple[Action, dict[str, str]]:
    """Add one of the actions (signed-in callers)."""
    created = service.create_action(**data)
    location = url_for(
        "actions.get_action",
        action_id=created.id,
    )
    return created, {"Location": location}


@actions.get("")
@actions.arguments(PageQuery, location="query", as_kwargs=True)
@actions.response(200, schemas.ActionsPublic)
def list_actions(limit: int, cursor: str | None) -> Page[Action]:
    """List the actions in id order, one page at a time."""
    return service.list_actions(limit=limit, cursor=cursor)


@actions.get(ID_PATH)
@actions.response(200, schemas.ActionPublic)
@actions.alt_response(404, schema=ProblemSchema, description="Not found.")
def get_action(action_id: int) -> Action:
    """Read one of the actions by its id."""
    return service.get_action(action_id)
