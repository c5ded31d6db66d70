"""Signing administrators in and out: the console is the browser's backend (BFF).

The browser sends a login and a password once; the console trades them at users for a
token pair and keeps both tokens in the server-side session, never in the browser. Each
page's calls carry the access token; when it is about to expire the console trades the
refresh token for a new pair itself. Signing out revokes the refresh token at users and
deletes the session, so neither the cookie nor the tokens it stood for open anything again.

Only administrators get in: a customer's valid credentials are refused here, and the session
users opened for them is ended at once.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from console import sessions
from console.backends import Backends, Refused, TokenPair, backends
from console.config import ConsoleSettings
from flotilla import ADMIN, DownstreamError, Problem, current_settings

log = logging.getLogger(__name__)

ACCESS_TOKEN, REFRESH_TOKEN, EXPIRES_AT = "access_token", "refresh_token", "access_expires_at"
ADMINISTRATOR = "administrator"
REFRESH_MARGIN = 30
"""Seconds before its expiry that an access token is traded for a new one."""

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Administrator:
    """Who is signed in, as the access token says."""

    user_id: str
    name: str


class NotAnAdministrator(Exception):
    """The credentials are right, but the account may not use the console."""


def sign_in(login: str, password: str) -> bool:
    """Start a session for these credentials; False when users refuses them.

    Raises :class:`NotAnAdministrator` for an account without the administrator role.
    """
    pair = backends().sign_in(login, password, request.remote_addr or "")
    if pair is None:
        return False
    administrator = _administrator(pair)
    if administrator is None:
        _revoke(backends(), pair.refresh_token)
        raise NotAnAdministrator
    sessions.start(
        {
            **_tokens(pair),
            ADMINISTRATOR: {"user_id": administrator.user_id, "name": administrator.name},
        }
    )
    log.info("administrator signed in", extra={"user_id": administrator.user_id})
    return True


def sign_out() -> None:
    """Revoke the session's refresh token at users and forget the session."""
    refresh_token = session.get(REFRESH_TOKEN)
    if isinstance(refresh_token, str):
        _revoke(backends(), refresh_token)
    sessions.end()


def require_administrator(view: View) -> View:
    """Let the view run for a signed-in administrator, with a fresh access token in ``g``.

    Anyone else is sent to the sign-in page, which brings them back here afterwards.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        token = current_token()
        if token is None:
            sessions.end()
            return to_sign_in()
        g.access_token = token
        g.administrator = Administrator(**session[ADMINISTRATOR])
        return view(*args, **kwargs)

    return cast(View, guarded)


def current_token(now: float | None = None) -> str | None:
    """The session's access token, refreshed if close to expiry; None: sign in again."""
    now = now if now is not None else time.time()
    settings = current_settings(ConsoleSettings)
    token, refresh_token = session.get(ACCESS_TOKEN), session.get(REFRESH_TOKEN)
    if not isinstance(token, str) or not isinstance(refresh_token, str):
        return None
    if sessions.expired(settings.SESSION_ABSOLUTE_TIMEOUT, now):
        _revoke(backends(), refresh_token)
        return None
    if session.get(EXPIRES_AT, 0) - REFRESH_MARGIN > now:
        return token
    pair = backends().refresh(refresh_token)
    if pair is None:
        return None
    session.update(_tokens(pair, now))
    return pair.access_token


def to_sign_in() -> Response:
    """A redirect to the sign-in page that returns to this page (a GET) afterwards."""
    back = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("console.sign_in_page", next=back))


def _tokens(pair: TokenPair, now: float | None = None) -> dict[str, Any]:
    now = now if now is not None else time.time()
    return {
        ACCESS_TOKEN: pair.access_token,
        REFRESH_TOKEN: pair.refresh_token,
        EXPIRES_AT: now + pair.expires_in,
    }


def _administrator(pair: TokenPair) -> Administrator | None:
    """The administrator the access token speaks for, or None for anyone else."""
    auth = current_app.extensions["flotilla.auth"]
    try:
        principal = auth.authenticate(f"Bearer {pair.access_token}")
    except Problem:
        return None
    if ADMIN not in principal.roles:
        return None
    name = principal.claims.get("name") or principal.claims.get("email") or principal.subject
    return Administrator(principal.subject, str(name))


def _revoke(clients: Backends, refresh_token: str) -> None:
    """End the session at users; the console forgets it anyway if users cannot be reached."""
    try:
        clients.sign_out(refresh_token)
    except (DownstreamError, Refused) as error:
        log.warning("sign-out not confirmed by users", extra={"error": str(error)})
