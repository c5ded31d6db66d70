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

import time
import warnings
from datetime import timedelta
from typing import Any

from cachelib.file import FileSystemCache
from flask import Flask, current_app, session
from flask_session.cachelib import CacheLibSessionInterface
from flask_session.redis import RedisSessionInterface
from itsdangerous import Signer

from console.config import ConsoleSettings
from flotilla import development_key, shared_redis

SIGNED_IN_AT = "signed_in_at"
"""Session key: when the administrator signed in (epoch seconds), for the absolute timeout."""
SECURE_COOKIE_NAME = "__Host-console"
"""Over HTTPS: ``__Host-`` makes the browser refuse it unless Secure, on / and host-only."""
PLAIN_COOKIE_NAME = "console"


class _RotatingSigner:
    """Signs the session id with ``SECRET_KEY``, accepts it signed by any fallback too."""

    def _get_signer(self, app: Flask) -> Signer:
        keys = [*app.config["SECRET_KEY_FALLBACKS"], app.config["SECRET_KEY"]]
        return Signer(keys, salt="flask-session", key_derivation="hmac")  # signs with the last


class RedisSessions(_RotatingSigner, RedisSessionInterface):
    """Sessions in Redis, expiring there after the idle timeout."""


class FileSessions(_RotatingSigner, CacheLibSessionInterface):
    """Sessions in files under ``VAR_DIR``, shared by the processes of one machine."""


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
