"""Actions: create, read and list; views call these and nothing else."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from console.models import Action, db
from flotilla import Conflict, NotFound, Page, keyset_query, page_of

log = logging.getLogger(__name__)


class ActionNotFound(NotFound):
    """None of the actions has the id asked for (404)."""

    code, title = "action-not-found", "Action Not Found"

    def __init__(self, key: int) -> None:
        super().__init__(f"No action has the id {key}.")


class NameTaken(Conflict):
    """Another of the actions has this name already (409)."""

    code, title = "name-taken", "Name Taken"


def create_action(*, name: str, description: str) -> Action:
    """Add one of the actions; raises :class:`NameTaken`."""
    session = db.session()
    created = Action(name=name, description=description)
    session.add(created)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if _name_exists(name):
            raise NameTaken(f"The name {name!r} is taken.") from None
        raise
    log.info("action created", extra={"action_id": created.id})
    return created


def _name_exists(name: str) -> bool:
    with db.reading() as session:
        found = session.scalar(select(Action.id).where(Action.name == name))
    return found is not None


def get_action(action_id: int) -> Action:
    """The action with this id; raises :class:`ActionNotFound`."""
    with db.reading() as session:
        found = session.get(Action, action_id)
    if found is None:
        raise ActionNotFound(action_id)
    return found


def list_actions(*, limit: int, cursor: str | None = None) -> Page[Action]:
    """Actions in id order, ``limit`` at a time, after ``cursor``."""
    query = keyset_query(
        select(Action),
        Action.id,
        limit=limit,
        cursor=cursor,
    )
    with db.reading() as session:
        found = session.scalars(query).all()
    return page_of(found, limit=limit)
