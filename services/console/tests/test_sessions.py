"""Sessions kept on the server: the cookie, key rotation, timeouts, any process serving them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, session
from flask.testing import FlaskClient
from itsdangerous import Signer

from console import create_app, sessions
from console.sessions import PLAIN_COOKIE_NAME, SECURE_COOKIE_NAME
from flotilla.testing import migrate
from flotilla.testing.redis import DEFAULT_REDIS_URL

from .conftest import BASE_URL, make_settings, sign_in

OLD_KEY, NEW_KEY = "old-key-" + "o" * 32, "new-key-" + "n" * 32


def console(var_dir: Path, **overrides: Any) -> Flask:
    """A console on SQLite under ``var_dir``; two of them share its session files."""
    database = f"sqlite:///{var_dir / 'console.db'}"
    app = create_app(make_settings(database, var_dir, **overrides))
    migrate(app)
    return app


def status_of(client: FlaskClient) -> int:
    return client.get("/console/", base_url=BASE_URL).status_code


def test_the_cookie_is_host_only_secure_httponly_and_lax(client: FlaskClient) -> None:
    response = client.get("/console/sign-in", base_url=BASE_URL)
    (cookie,) = response.headers.getlist("Set-Cookie")
    name, _, attributes = cookie.partition(";")
    assert name.startswith(f"{SECURE_COOKIE_NAME}=")
    assert {part.strip() for part in attributes.split(";")} >= {
        "Secure",
        "HttpOnly",
        "Path=/",
        "SameSite=Lax",
    }
    assert "Domain=" not in cookie  # __Host- forbids it


def test_without_https_the_cookie_drops_the_prefix_and_the_flag(tmp_path: Path) -> None:
    app = console(tmp_path, SESSION_COOKIE_SECURE=False)
    cookie = app.test_client().get("/console/sign-in").headers["Set-Cookie"]
    assert cookie.startswith(f"{PLAIN_COOKIE_NAME}=")
    assert "Secure" not in cookie


def test_the_browser_holds_a_signed_id_and_no_token(client: FlaskClient) -> None:
    sign_in(client)
    assert status_of(client) == 200
    cookie = client.get_cookie(SECURE_COOKIE_NAME, domain="console.test")
    assert cookie is not None
    session_id, _, signature = cookie.value.rpartition(".")
    assert session_id
    assert signature
    # The id and its signature, one dot between them: a JWT alone has two. (A random id may
    # well contain "eyJ", the start of an encoded JWT header, so that says nothing.)
    assert cookie.value.count(".") == 1


def test_a_session_opens_in_another_process_sharing_the_store(tmp_path: Path) -> None:
    first, second = console(tmp_path).test_client(), console(tmp_path).test_client()
    sign_in(first)
    cookie = first.get_cookie(SECURE_COOKIE_NAME, domain="console.test")
    assert cookie is not None
    second.set_cookie(SECURE_COOKIE_NAME, cookie.value, domain="console.test", secure=True)
    assert status_of(second) == 200


def test_rotating_the_key_keeps_sessions_when_the_old_one_is_a_fallback(tmp_path: Path) -> None:
    before = console(tmp_path, SECRET_KEY=OLD_KEY).test_client()
    sign_in(before)
    cookie = before.get_cookie(SECURE_COOKIE_NAME, domain="console.test")
    assert cookie is not None

    rotated = console(tmp_path, SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]).test_client()
    rotated.set_cookie(SECURE_COOKIE_NAME, cookie.value, domain="console.test", secure=True)
    assert status_of(rotated) == 200  # still signed in
    renewed = rotated.get_cookie(SECURE_COOKIE_NAME, domain="console.test")
    assert renewed is not None
    assert renewed.value != cookie.value  # signed again, with the new key

    after = console(tmp_path, SECRET_KEY=NEW_KEY).test_client()  # the old key retired
    after.set_cookie(SECURE_COOKIE_NAME, renewed.value, domain="console.test", secure=True)
    assert status_of(after) == 200
    after.set_cookie(SECURE_COOKIE_NAME, cookie.value, domain="console.test", secure=True)
    assert status_of(after) == 302  # a cookie only the retired key signed opens nothing


def test_a_forged_signature_opens_nothing(client: FlaskClient) -> None:
    sign_in(client)
    cookie = client.get_cookie(SECURE_COOKIE_NAME, domain="console.test")
    assert cookie is not None
    session_id, _, _signature = cookie.value.rpartition(".")
    client.set_cookie(SECURE_COOKIE_NAME, f"{session_id}.forged", domain="console.test")
    assert status_of(client) == 302


def test_a_session_ends_after_the_absolute_timeout_however_busy(tmp_path: Path) -> None:
    client = console(tmp_path, SESSION_ABSOLUTE_TIMEOUT=60).test_client()
    sign_in(client, signed_in_at=time.time() - 61)
    response = client.get("/console/", base_url=BASE_URL)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/sign-in?next=/console/"
    assert status_of(client) == 302  # and it is gone, not merely refused once


def test_a_session_ends_after_the_idle_timeout(tmp_path: Path) -> None:
    client = console(tmp_path, SESSION_IDLE_TIMEOUT=1).test_client()
    sign_in(client)
    time.sleep(2.1)  # the store's expiry, in whole seconds
    assert status_of(client) == 302


def test_signing_in_gives_the_session_a_new_id_and_forgets_the_old(app: Flask) -> None:
    interface: Any = app.session_interface  # Flask-Session's, untyped
    with app.test_request_context(base_url=BASE_URL):
        session["csrf_token"] = "chosen before sign-in"
        before = session.sid  # type: ignore[attr-defined]
        interface._upsert_session(  # the copy an attacker's fixed id points at
            app.permanent_session_lifetime, session, interface._get_store_id(before)
        )
        sessions.start({"access_token": "t"})
        assert session.sid != before  # type: ignore[attr-defined]
        assert session["access_token"] == "t"
        assert "csrf_token" not in session  # nothing chosen before sign-in is kept
        stored = interface._retrieve_session_data(interface._get_store_id(before))
        assert stored is None


def test_in_redis_sessions_expire_with_the_idle_timeout(tmp_path: Path) -> None:
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    first = console(tmp_path / "a", REDIS_URL=redis_url, SESSION_IDLE_TIMEOUT=300)
    second = console(tmp_path / "b", REDIS_URL=redis_url, SESSION_IDLE_TIMEOUT=300)
    client = first.test_client()
    sign_in(client)
    cookie = client.get_cookie(SECURE_COOKIE_NAME, domain="console.test")
    assert cookie is not None
    session_id = cookie.value.rpartition(".")[0]
    store: Any = first.session_interface.client  # type: ignore[attr-defined]
    ttl = store.ttl(f"console:session:{session_id}")
    assert 290 <= ttl <= 300
    other = second.test_client()  # another process, another machine: the same Redis
    other.set_cookie(SECURE_COOKIE_NAME, cookie.value, domain="console.test", secure=True)
    assert status_of(other) == 200
    store.delete(f"console:session:{session_id}")
    assert status_of(other) == 302


def test_a_session_store_that_does_not_answer_gives_a_page_not_a_crash(tmp_path: Path) -> None:
    app = console(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    client = app.test_client()
    offered = client.get("/console/sign-in", base_url=BASE_URL)  # its form's token not kept
    assert offered.status_code == 503
    assert "Sessions are unavailable right now" in offered.get_data(as_text=True)
    signed = Signer([app.config["SECRET_KEY"]], salt="flask-session", key_derivation="hmac")
    cookie = signed.sign(b"an-id-the-store-would-know").decode()
    client.set_cookie(SECURE_COOKIE_NAME, cookie, domain="console.test", secure=True)
    page = client.get("/console/", base_url=BASE_URL)
    assert page.status_code == 503
    assert "Sessions are unavailable right now" in page.get_data(as_text=True)
    assert client.get("/healthz/live").status_code == 200  # probes need no session
