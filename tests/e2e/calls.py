"""What the end-to-end tests send: one HTTP request at a time, and an administrator's token."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson

from flotilla.auth import SigningKey, issue_access_token
from flotilla.config import AuthSettings

Body = dict[str, Any]


def call(
    method: str,
    url: str,
    body: Mapping[str, Any] | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Body, Mapping[str, str]]:
    """One HTTP request on a new connection: status, JSON body (or {}) and headers."""
    sent = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw, status, answer_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        with error:
            raw, status, answer_headers = error.read(), error.code, error.headers
    return status, orjson.loads(raw) if raw else {}, dict(answer_headers)


def admin_token(private_pem: str) -> str:
    """An administrator's access token signed with users' key (no such account is needed)."""
    return signed_token(private_pem, subject="1", roles=("admin",))


def signed_token(private_pem: str, *, subject: str, roles: tuple[str, ...]) -> str:
    """An access token signed with users' key, without the profile a login puts in it.

    For orders, such a token (as issued before tokens carried the customer's e-mail and
    name) is the one for which it still asks users who the customer is.
    """
    fields = AuthSettings.model_fields
    return issue_access_token(
        SigningKey.from_pem(private_pem),
        subject=subject,
        roles=roles,
        issuer=fields["AUTH_ISSUER"].default,
        audience=fields["AUTH_AUDIENCE"].default,
        lifetime=timedelta(minutes=15),
    )
