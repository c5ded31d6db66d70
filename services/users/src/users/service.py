"""Accounts: registration, profiles, password changes; views call these and nothing else."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flotilla import (
    CUSTOMER,
    Conflict,
    Forbidden,
    NotFound,
    Page,
    current_principal,
    keyset_query,
    page_of,
    token_rejected,
    utc_now,
)
from users.models import User, db, normalize_email, outbox
from users.passwords import passwords
from users.sessions import revoke_all_sessions

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


class WrongPassword(Forbidden):
    """The current password given to change it is wrong (403)."""

    code, title = "wrong-password", "Wrong Password"


def register_user(
    *,
    username: str,
    email: str,
    password: str,
    display_name: str | None = None,
    roles: tuple[str, ...] = (CUSTOMER,),
) -> User:
    """Create an account and its ``user.registered`` event (docs/events.md).

    Raises :class:`UsernameTaken` or :class:`EmailTaken`.
    """
    email = normalize_email(email)
    _refuse_taken(username=username, email=email)
    session = db.session()
    user = User(
        username=username,
        email=email,
        password_hash=passwords().hash(password),
        display_name=display_name,
        roles=list(roles),
    )
    session.add(user)
    try:
        session.flush()  # assigns the id and registration time the event carries
        # In the same transaction: the event exists exactly when the account does, and a
        # broker outage cannot fail the request (the relay publishes after the commit).
        outbox.add_event(
            session,
            "user.registered",
            {
                "user_id": user.id,
                "username": user.username,
                "email": user.email,
                "display_name": user.display_name,
                "registered_at": user.created_at.isoformat(),
            },
            version=1,
        )
        session.commit()
    except IntegrityError:
        # Another request registered the same name between our check and our insert.
        session.rollback()
        _refuse_taken(username=username, email=email)
        raise
    log.info("user registered", extra={"user_id": user.id})
    return user


def _refuse_taken(*, username: str | None = None, email: str | None = None) -> None:
    query = select(User.username, User.email).where(
        (User.username == username) | (User.email == email)
    )
    with db.reading() as session:  # autocommit: no transaction open while the password hashes
        taken = session.execute(query).all()
    if any(row.username == username for row in taken):
        raise UsernameTaken(f"The username {username!r} is taken.")
    if taken:
        raise EmailTaken("An account with this e-mail address exists.")


def get_user(user_id: int) -> User:
    """The account with ``user_id``; raises :class:`UserNotFound`."""
    with db.reading() as session:
        user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"User {user_id} does not exist.")
    return user


def list_users(*, limit: int, cursor: str | None = None) -> Page[User]:
    """Accounts in id order, ``limit`` at a time, after the one ``cursor`` points at."""
    query = keyset_query(select(User), User.id, limit=limit, cursor=cursor)
    with db.reading() as session:
        users = session.scalars(query).all()
    return page_of(users, limit=limit)


def current_user() -> User:
    """The account the request's token speaks for, if it may still act.

    Other services trust a token until it expires; this service has the account at hand, so
    it also refuses tokens of deleted or deactivated accounts and tokens issued before the
    last password change.
    """
    principal = current_principal()
    with db.reading() as session:
        user = session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise token_rejected("The account is not active.")
    if principal.issued_at < user.password_changed_at.replace(microsecond=0):
        raise token_rejected("The token was issued before the last password change.")
    return user


def update_me(changes: dict[str, Any]) -> User:
    """Apply ``changes`` (display name, e-mail) to the current account."""
    user = current_user()
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
        if changes["email"] != user.email:
            _refuse_taken(email=changes["email"])
    session = db.session()
    user = session.merge(user, load=False)
    for name, value in changes.items():
        setattr(user, name, value)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise EmailTaken("An account with this e-mail address exists.") from None
    return user


def change_password(*, current_password: str, new_password: str) -> None:
    """Replace the current account's password and end every one of its sessions."""
    user = current_user()
    if not passwords().verify(user.password_hash, current_password):
        raise WrongPassword("The current password is wrong.")
    session = db.session()
    now = utc_now()
    user = session.merge(user, load=False)
    user.password_hash = passwords().hash(new_password)
    user.password_changed_at = now
    revoke_all_sessions(session, user.id, now)
    session.commit()
    log.info("password changed; sessions revoked", extra={"user_id": user.id})


def grant_role(username: str, role: str) -> User:
    """Add ``role`` to the account named ``username``; its next token carries it."""
    session = db.session()
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    if user is None:
        raise UserNotFound(f"No account is named {username!r}.")
    if role not in user.roles:
        user.roles = [*user.roles, role]
    session.commit()
    log.info("role granted", extra={"user_id": user.id, "role": role})
    return user
