"""Logins: access tokens, rotating refresh tokens, logout and revocation.

A login starts a session ("family") of refresh tokens. Each refresh uses its token up and
returns the next one; a used token presented again means a copy exists elsewhere, so the
whole family is revoked and both holders must log in again (OAuth 2.0 Security BCP, refresh
token rotation). Only SHA-256 digests of refresh tokens are stored: a database dump holds no
usable token. 256 random bits need no slow hash.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import g
from sqlalchemy import ColumnElement, CursorResult, select, update
from sqlalchemy.orm import Session

from flotilla import Unauthorized, current_settings, issue_access_token, utc_now
from users.config import UsersSettings
from users.keys import current_key_ring
from users.models import RefreshToken, User, db, normalize_email
from users.passwords import passwords

log = logging.getLogger(__name__)


class InvalidLogin(Unauthorized):
    """Wrong user name, e-mail or password; deliberately not saying which (401)."""

    code, title = "invalid-login", "Invalid Login"


class InvalidRefreshToken(Unauthorized):
    """The refresh token is unknown, expired, used or revoked (401)."""

    code, title = "invalid-refresh-token", "Invalid Refresh Token"


@dataclass(frozen=True)
class IssuedTokens:
    """What a login or a refresh returns to the client."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret


def log_in(*, login: str, password: str) -> IssuedTokens:
    """Tokens for the account named by ``login`` (user name or e-mail) and ``password``.

    Unknown accounts cost the same password hash as known ones, so timing does not tell
    whether an account exists; inactive accounts fail the same way as wrong passwords.
    """
    user = _find_by_login(login)
    if not passwords().verify(user.password_hash if user else None, password) or not user:
        log.info("login failed")
        raise InvalidLogin("The login or password is wrong.")
    if not user.is_active:
        log.info("login refused: inactive account", extra={"user_id": user.id})
        raise InvalidLogin("The login or password is wrong.")
    session = db.session()
    _upgrade_hash(session, user, password)
    now = utc_now()
    max_age = timedelta(seconds=current_settings(UsersSettings).SESSION_MAX_AGE)
    pair = _issue(session, user, uuid.uuid4().hex, now, now + max_age)
    session.commit()
    log.info("login succeeded", extra={"user_id": user.id})
    return pair


def account_key(login: str) -> str:
    """The rate-limit key of a login attempt: one per account, by whichever name it is given.

    An e-mail address of an account counts as its user name, so alternating the two does not
    double the attempts; the key is a digest, so Redis holds no addresses. The account found
    here is kept for the request, so the login itself does not look it up again.
    """
    user = _find_by_login(login)
    name = user.username if user else login.strip().lower()
    return hashlib.sha256(name.encode()).hexdigest()


def refresh(*, refresh_token: str) -> IssuedTokens:
    """A new token pair for a valid refresh token, which is used up by this call."""
    session = db.session()
    digest = _digest(refresh_token)
    token = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest))
    now = utc_now()
    if token is None or token.revoked_at is not None:
        raise InvalidRefreshToken("The refresh token is not valid.")
    if token.used_at is not None:
        raise _revoke_after_reuse(session, token, now)
    if min(token.expires_at, token.session_expires_at) <= now:
        raise InvalidRefreshToken("The refresh token has expired.")
    if not _claim(session, token, now):  # a concurrent request used it a moment ago
        raise _revoke_after_reuse(session, token, now)
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        session.commit()
        raise InvalidRefreshToken("The account is not active.")
    pair = _issue(session, user, token.family_id, now, token.session_expires_at)
    session.commit()
    return pair


def log_out(*, refresh_token: str) -> None:
    """End the session the refresh token belongs to; unknown tokens are ignored."""
    session = db.session()
    family = session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == _digest(refresh_token))
    )
    if family is not None:
        _revoke(session, RefreshToken.family_id == family, utc_now())
        log.info("logged out", extra={"family_id": family})
    session.commit()


def revoke_all_sessions(session: Session, user_id: int, now: datetime) -> None:
    """Revoke every refresh token of ``user_id``, in the caller's transaction."""
    _revoke(session, RefreshToken.user_id == user_id, now)


def _claim(session: Session, token: RefreshToken, now: datetime) -> bool:
    """Mark ``token`` used unless a concurrent request did first; True when this one won."""
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .where(RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _revoke_after_reuse(
    session: Session, token: RefreshToken, now: datetime
) -> InvalidRefreshToken:
    """Revoke the family of a token presented twice; the error for the caller to raise."""
    family, user_id = token.family_id, token.user_id
    session.rollback()
    _revoke(session, RefreshToken.family_id == family, now)
    session.commit()
    log.warning(
        "refresh token reused; session revoked", extra={"user_id": user_id, "family_id": family}
    )
    return InvalidRefreshToken("The refresh token is not valid.")


def _revoke(session: Session, which: ColumnElement[bool], now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(which, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def _find_by_login(login: str) -> User | None:
    """The account whose user name or (case-insensitive) e-mail is ``login``.

    Looked up once per request: the rate limit's key and the login both need it.
    """
    login = login.strip()
    found: tuple[str, User | None] | None = g.get("users_login_lookup")
    if found is None or found[0] != login:
        found = (login, _query_login(login))
        g.users_login_lookup = found
    return found[1]


def _query_login(login: str) -> User | None:
    if len(login) > 254 or "\x00" in login:  # never an account's; PostgreSQL refuses NUL
        return None
    column = User.email if "@" in login else User.username
    value = normalize_email(login) if "@" in login else login
    with db.reading() as session:
        return session.scalar(select(User).where(column == value))


def _upgrade_hash(session: Session, user: User, password: str) -> None:
    """Re-hash with today's cost settings a password hashed under older ones."""
    if passwords().needs_rehash(user.password_hash):
        session.execute(
            update(User).where(User.id == user.id).values(password_hash=passwords().hash(password))
        )


def _issue(
    session: Session, user: User, family: str, now: datetime, session_expires_at: datetime
) -> IssuedTokens:
    settings = current_settings(UsersSettings)
    refresh_token = secrets.token_urlsafe(32)
    expires_at = min(now + timedelta(seconds=settings.REFRESH_TOKEN_LIFETIME), session_expires_at)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family,
            token_hash=_digest(refresh_token),
            issued_at=now,
            expires_at=expires_at,
            session_expires_at=session_expires_at,
        )
    )
    access_token = issue_access_token(
        current_key_ring().signing,
        subject=str(user.id),
        roles=user.roles,
        issuer=settings.AUTH_ISSUER,
        audience=settings.AUTH_AUDIENCE,
        lifetime=timedelta(seconds=settings.ACCESS_TOKEN_LIFETIME),
        session_id=family,
        profile=_profile(user),
        now=now,
    )
    refresh_in = int((expires_at - now).total_seconds())
    return IssuedTokens(access_token, settings.ACCESS_TOKEN_LIFETIME, refresh_token, refresh_in)


def _profile(user: User) -> dict[str, str]:
    """What an access token says about its user besides the id: e-mail and display name.

    Services that need to reach the customer (orders, for ``order.placed``) read them from
    the token rather than asking this service on every request; a change reaches them with
    the next access token, within ``ACCESS_TOKEN_LIFETIME``.
    """
    profile = {"email": user.email}
    if user.display_name:
        profile["name"] = user.display_name
    return profile


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()
