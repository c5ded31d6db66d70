"""Who gets in, and what an expiring token does when users cannot be asked."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from console import signin
from console.backends import TokenPair
from flotilla import ADMIN, CUSTOMER

from .conftest import BASE_URL, access_token, sign_in


def test_only_an_administrators_token_lets_one_in(app: Flask) -> None:
    with app.test_request_context():
        admitted = signin._administrator(TokenPair(access_token(ADMIN), "r", 900))
        refused = signin._administrator(TokenPair(access_token(CUSTOMER), "r", 900))
        forged = signin._administrator(TokenPair("not-a-token", "r", 900))
    assert admitted is not None
    assert admitted.user_id == "7"
    assert refused is None
    assert forged is None


def test_an_expiring_token_with_users_unreachable_is_a_page_not_a_sign_out(
    client: FlaskClient,
) -> None:
    sign_in(client)
    with client.session_transaction(base_url=BASE_URL) as session:
        session[signin.EXPIRES_AT] = time.time() + 5  # within the refresh margin
    response = client.get("/console/", base_url=BASE_URL)
    assert response.status_code == 503  # users, which refreshes tokens, is not running here
    assert "A service this page needs is unavailable" in response.get_data(as_text=True)
    with client.session_transaction(base_url=BASE_URL) as session:
        assert session[signin.REFRESH_TOKEN] == "refresh-token"  # still signed in
