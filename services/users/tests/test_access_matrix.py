"""Who may call what: every route of the app, every kind of caller → the expected status.

The table is the users service's access policy in one place. A route added to the app but
not to the table fails ``test_every_route_is_in_the_matrix``, so no endpoint ships without a
decision about who may call it. "other" is a second customer acting on the first customer's
resources; the first customer's e-mail must never reach anyone but them and administrators.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flotilla.web.swagger_ui import SWAGGER_UI_URL

from .conftest import PASSWORD, Account, json_of

SWAGGER_UI_FILE = "swagger-ui.css"

ROLES = ("anonymous", "customer", "other", "admin")

# (method, rule): expected status for (anonymous, customer, other, admin)
MATRIX: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200),
    ("GET", "/healthz/live"): (200, 200, 200, 200),
    ("GET", "/healthz/ready"): (200, 200, 200, 200),
    ("GET", "/metrics"): (200, 200, 200, 200),  # internal port; nginx does not route it
    ("GET", "/openapi.json"): (200, 200, 200, 200),
    ("GET", "/docs"): (200, 200, 200, 200),
    ("GET", f"{SWAGGER_UI_URL}<name>"): (200, 200, 200, 200),  # its files, served locally
    ("GET", "/.well-known/jwks.json"): (200, 200, 200, 200),
    ("POST", "/api/v1/users"): (201, 201, 201, 201),
    ("GET", "/api/v1/users"): (401, 403, 403, 200),
    ("GET", "/api/v1/users/<user_id>"): (401, 200, 200, 200),
    ("GET", "/api/v1/users/me"): (401, 200, 200, 200),
    ("PATCH", "/api/v1/users/me"): (401, 200, 200, 200),
    ("PUT", "/api/v1/users/me/password"): (401, 204, 204, 204),
    ("POST", "/api/v1/tokens"): (200, 200, 200, 200),
    ("POST", "/api/v1/tokens/refresh"): (200, 200, 200, 200),
    ("DELETE", "/api/v1/tokens"): (204, 204, 204, 204),
    # Services only, by their client secret (test_service_tokens); a user's token is not one.
    ("POST", "/api/v1/service-tokens"): (401, 401, 401, 401),
}


@dataclass(frozen=True)
class Cast:
    """The accounts of one check: the customer whose resources are targeted, and the caller."""

    customer: Account
    caller: Account | None
    client: FlaskClient


def _refresh_token(cast: Cast) -> dict[str, Any]:
    credentials = {"login": cast.customer.username, "password": PASSWORD}
    token = json_of(cast.client.post("/api/v1/tokens", json=credentials))["refresh_token"]
    return {"refresh_token": token}


BODIES: dict[tuple[str, str], Callable[[Cast], dict[str, Any]]] = {
    ("POST", "/api/v1/users"): lambda _: {
        "username": f"new{uuid.uuid4().hex[:8]}",
        "email": f"{uuid.uuid4().hex[:8]}@example.com",
        "password": PASSWORD,
    },
    ("PATCH", "/api/v1/users/me"): lambda _: {"display_name": "Renamed"},
    ("PUT", "/api/v1/users/me/password"): lambda _: {
        "current_password": PASSWORD,
        "new_password": "another long passphrase",
    },
    ("POST", "/api/v1/tokens"): lambda cast: {
        "login": cast.customer.username,
        "password": PASSWORD,
    },
    ("POST", "/api/v1/tokens/refresh"): _refresh_token,
    ("DELETE", "/api/v1/tokens"): _refresh_token,
}


def routes_of(app: Flask) -> set[tuple[str, str]]:
    """Every (method, rule) the app answers, with converters reduced to their names."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for argument in rule.arguments:
            path = _strip_converter(path, argument)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def _strip_converter(path: str, argument: str) -> str:
    start = path.find("<")
    end = path.find(">", start)
    return f"{path[:start]}<{argument}>{path[end + 1 :]}" if start >= 0 else path


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    assert routes_of(app) == set(MATRIX)


@pytest.fixture
def cast_for(
    app: Flask, customer: Account, other_customer: Account, admin: Account
) -> Callable[[str], Cast]:
    """The cast of a check made by ``role``."""
    callers = {"anonymous": None, "customer": customer, "other": other_customer, "admin": admin}
    return lambda role: Cast(customer, callers[role], app.test_client())


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "rule"), list(MATRIX))
def test_access(cast_for: Callable[[str], Cast], method: str, rule: str, role: str) -> None:
    cast = cast_for(role)
    path = rule.replace("<user_id>", str(cast.customer.id)).replace("<name>", SWAGGER_UI_FILE)
    body = BODIES[(method, rule)](cast) if (method, rule) in BODIES else None
    headers = cast.caller.headers if cast.caller else {}
    with cast.client.open(path, method=method, json=body, headers=headers) as response:
        assert response.status_code == MATRIX[(method, rule)][ROLES.index(role)], response.data
        if role in ("anonymous", "other"):
            assert cast.customer.email not in response.get_data(as_text=True)
