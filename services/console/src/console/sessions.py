"""Server-side sessions: Flask-Session in Redis, or in files under VAR_DIR when embedded.

The browser holds only a random session id, signed with ``SECRET_KEY``; what the session
holds (the administrator's token pair) stays on the server, so any worker of any replica
reads it and no token ever reaches the browser. The signature is checked against
``SECRET_KEY`` and then each of ``SECRET_KEY_FALLBACKS``, so a key rotated in with the old
one kept as a fallback signs new cookies while the old ones still open their sessions
(docs/adr/0031-console-sessions.md).

A session ends after ``SESSION_IDLE_TIMEOUT`` without a request (the store's expiry, renewed
on each request) or ``SESSION_ABSOLUTE_TIMEOUT`` after sign-in, whichever comes first
(:func:`expired`).
"""

from __future__ import annotations

import logging
import time
import warnings
from datetime import timedelta
from typing import Any

import redis
from cachelib.file import FileSystemCache
from flask import Flask, Request, Response, current_app, render_template, request, session
from flask_session.cachelib import CacheLibSessionInterface
from flask_session.redis import RedisSessionInterface
from itsdangerous import Signer

from console.config import ConsoleSettings
from flotilla import ServiceUnavailable, development_key, shared_redis

log = logging.getLogger(__name__)

SIGNED_IN_AT = "signed_in_at"
"""Session key: when the administrator signed in (epoch seconds), for the absolute timeout."""
SECURE_COOKIE_NAME = "__Host-console"
"""Over HTTPS: ``__Host-`` makes the browser refuse it unless Secure, on / and host-only."""
PLAIN_COOKIE_NAME = "console"


UNAVAILABLE = "Sessions are unavailable right now. Try again in a moment."


class SessionsUnavailable(ServiceUnavailable):
    """The session store did not answer: nobody's session can be read (503)."""

    code, title = "sessions-unavailable", "Sessions Unavailable"


class _Sessions:
    """What both stores add to Flask-Session: key rotation, and an outage as a 503 page.

    The session id is signed with ``SECRET_KEY`` and accepted signed by any fallback too.
    A store that fails while a request's session is read leaves that request an empty
    session and a mark, so :func:`refuse_without_sessions` answers it with a page instead
    of Flask's bare 500; a failure while saving loses that request's change, logged.
    """

    def _get_signer(self, app: Flask) -> Signer:
        keys = [*app.config["SECRET_KEY_FALLBACKS"], app.config["SECRET_KEY"]]
        return Signer(keys, salt="flask-session", key_derivation="hmac")  # signs with the last

    def open_session(self, app: Flask, request: Request) -> Any:
        try:
            return super().open_session(app, request)  # type: ignore[misc]
        except redis.RedisError as error:
            log.warning("session not read", extra={"error": repr(error)[:300]})
            request.environ[_STORE_FAILED] = True
            return self.session_class(sid=self._generate_sid(self.sid_length))  # type: ignore[attr-defined]

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if request.environ.get(_STORE_FAILED):
            return
        try:
            super().save_session(app, session, response)  # type: ignore[misc]
        except redis.RedisError as error:
            log.warning("session not saved", extra={"error": repr(error)[:300]})
            if response.mimetype == "text/html" or response.status_code in (301, 302, 303):
                # What the page offered (a form's token, a sign-in) was not kept: say so.
                response.status_code = 503
                response.headers.pop("Location", None)
                response.mimetype = "text/html"
                response.set_data(
                    render_template(
                        "error.html", status=503, title="Sessions unavailable", detail=UNAVAILABLE
                    )
                )


_STORE_FAILED = "console.sessions.store_failed"


class RedisSessions(_Sessions, RedisSessionInterface):
    """Sessions in Redis, expiring there after the idle timeout."""


class FileSessions(_Sessions, CacheLibSessionInterface):
    """Sessions in files under ``VAR_DIR``, shared by the processes of one machine."""


def refuse_without_sessions() -> None:
    """Before a console page: a 503 when this request's session could not be read."""
    if request.environ.get(_STORE_FAILED):
        raise SessionsUnavailable(UNAVAILABLE)


def init_sessions(app: Flask, settings: ConsoleSettings) -> None:
    """Keep ``app``'s sessions on the server, in cookies named and flagged per the settings."""
    secure = settings.SESSION_COOKIE_SECURE
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY or _development_secret(settings),
        SECRET_KEY_FALLBACKS=settings.SECRET_KEY_FALLBACKS,
        SESSION_COOKIE_NAME=SECURE_COOKIE_NAME if secure else PLAIN_COOKIE_NAME,
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",  # __Host- requires it
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.SESSION_IDLE_TIMEOUT),
        SESSION_REFRESH_EACH_REQUEST=True,  # each request renews the idle timeout
    )
    options: dict[str, Any] = {"key_prefix": "console:session:", "use_signer": True}
    with warnings.catch_warnings():
        # Flask-Session calls signing deprecated because its ids are random; it is kept here
        # for key rotation and as a second lock (the ADR).
        warnings.simplefilter("ignore", DeprecationWarning)
        if settings.REDIS_URL:
            client = shared_redis(settings.REDIS_URL).client()
            app.session_interface = RedisSessions(app, client=client, **options)
        else:
            directory = settings.VAR_DIR / "console-sessions"
            store = FileSystemCache(str(directory), threshold=10_000, mode=0o600)
            app.session_interface = FileSessions(app, client=store, **options)


def _development_secret(settings: ConsoleSettings) -> str:
    """A random key kept under ``VAR_DIR``, the same for every process that shares it."""
    return development_key(settings.VAR_DIR / "console-secret-key").hex()


def start(values: dict[str, Any], now: float | None = None) -> None:
    """A fresh session holding ``values``: a new id, so none chosen before sign-in survives."""
    session.clear()
    session.update(values)
    session[SIGNED_IN_AT] = now if now is not None else time.time()
    session.permanent = True
    _interface().regenerate(session)  # deletes the old id's stored copy


def end() -> None:
    """Forget the session: its stored copy is deleted and the cookie cleared."""
    session.clear()


def expired(absolute_timeout: int, now: float | None = None) -> bool:
    """True when the session was signed in longer ago than ``absolute_timeout`` seconds."""
    signed_in_at = session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int | float):
        return True
    return (now if now is not None else time.time()) - signed_in_at > absolute_timeout


def _interface() -> RedisSessions | FileSessions:
    interface: RedisSessions | FileSessions = current_app.session_interface  # type: ignore[assignment]
    return interface
