"""Business logic of the users service; views call these functions and nothing else."""

from __future__ import annotations

import logging

from argon2 import PasswordHasher
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flotilla import Conflict, NotFound
from flotilla.pagination import Page, decode_cursor, encode_cursor
from users.models import User, db

log = logging.getLogger(__name__)


class UsernameTaken(Conflict):
    """Another account already has this username (409)."""

    code, title = "username-taken", "Username Taken"


class EmailTaken(Conflict):
    """Another account already uses this e-mail address (409)."""

    code, title = "email-taken", "E-mail Taken"


class UserNotFound(NotFound):
    """No account has this id (404)."""

    code, title = "user-not-found", "User Not Found"


def normalize_email(email: str) -> str:
    """The form an address is stored and compared in: trimmed and lower-cased."""
    return email.strip().lower()


def register_user(
    *, username: str, email: str, password: str, display_name: str | None = None
) -> User:
    """Create an account; raises :class:`UsernameTaken` or :class:`EmailTaken`."""
    email = normalize_email(email)
    _refuse_taken(username, email)
    session = db.session()
    user = User(
        username=username,
        email=email,
        password_hash=_hasher().hash(password),
        display_name=display_name,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        # Another request registered the same name between our check and our insert.
        session.rollback()
        _refuse_taken(username, email)
        raise
    log.info("user registered", extra={"user_id": user.id})
    return user


def _refuse_taken(username: str, email: str) -> None:
    query = select(User.username, User.email).where(
        (User.username == username) | (User.email == email)
    )
    with db.reading() as session:  # autocommit: no transaction open while the password hashes
        taken = session.execute(query).all()
    if any(row.username == username for row in taken):
        raise UsernameTaken(f"The username {username!r} is taken.")
    if taken:
        raise EmailTaken("An account with this e-mail address exists.")


def _hasher() -> PasswordHasher:
    hasher: PasswordHasher = current_app.extensions["users.password_hasher"]
    return hasher


def get_user(user_id: int) -> User:
    """The account with ``user_id``; raises :class:`UserNotFound`."""
    with db.reading() as session:
        user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"User {user_id} does not exist.")
    return user


def list_users(*, limit: int, cursor: str | None = None) -> Page[User]:
    """Accounts in id order, ``limit`` at a time, after the one ``cursor`` points at."""
    query = select(User).order_by(User.id).limit(limit + 1)
    if cursor is not None:
        query = query.where(User.id > decode_cursor(cursor, int))
    with db.reading() as session:
        users = list(session.scalars(query))
    has_more = len(users) > limit
    users = users[:limit]
    return Page(users, encode_cursor(users[-1].id) if has_more else None)
