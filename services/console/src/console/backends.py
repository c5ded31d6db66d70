"""The services the console reads and changes, asked with the signed-in administrator's token.

Each call goes through a :class:`flotilla.ServiceClient` (timeouts, retries, a breaker), so a
service that is down costs a page a fast error, never a hang. Answers are returned as plain
JSON values: the console shows them, it does not reason about them. A refusal the
administrator can act on (no such order, a bad stock level) becomes a :class:`Refused` with
the service's own words; anything else unexpected is a 502.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from flotilla import BadGateway, ServiceClient, ServiceResponse

USERS, CATALOG, ORDERS = "users", "catalog", "orders"


class Refused(Exception):
    """A service refused what was asked, for a reason to show (``detail``) and ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SessionRejected(Exception):
    """A service no longer honours the administrator's token: sign in again."""


@dataclass(frozen=True)
class TokenPair:
    """What users answers a sign-in or a refresh with."""

    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class Backends:
    """One client per service, shared by every request of the app."""

    users: ServiceClient
    catalog: ServiceClient
    orders: ServiceClient

    # users: sign-in, refresh, sign-out

    def sign_in(self, login: str, password: str, client_address: str) -> TokenPair | None:
        """The token pair for these credentials, or ``None`` when users refuses them."""
        response = self.users.post(
            "/api/v1/tokens",
            json={"login": login, "password": password},
            # users counts sign-in attempts per address: the administrator's, not the console's.
            headers={"X-Forwarded-For": client_address},
        )
        if response.status == 401:
            return None
        if response.status == 429:
            raise Refused(429, "Too many sign-in attempts; wait a minute and try again.")
        return _token_pair(_expect(response, USERS, 200))

    def refresh(self, refresh_token: str) -> TokenPair | None:
        """A new pair for ``refresh_token`` (which is used up), or ``None`` if refused."""
        response = self.users.post("/api/v1/tokens/refresh", json={"refresh_token": refresh_token})
        if response.status in (400, 401, 422):
            return None
        return _token_pair(_expect(response, USERS, 200))

    def sign_out(self, refresh_token: str) -> None:
        """End the session at users: the refresh token is revoked."""
        response = self.users.delete("/api/v1/tokens", json={"refresh_token": refresh_token})
        _expect(response, USERS, 204)

    # catalog: products

    def products(self, token: str, *, q: str, active: bool, cursor: str | None) -> Any:
        """A page of products matching ``q``: ``{"items": [...], "next_cursor": ...}``."""
        params: dict[str, str | int] = {"limit": 20, "active": "true" if active else "false"}
        if q:
            params["q"] = q
        if cursor:
            params["cursor"] = cursor
        response = self.catalog.get("/api/v1/products", params=params, headers=_auth(token))
        return _json(response, CATALOG)

    def product(self, token: str, product_id: int) -> Any:
        """One product."""
        response = self.catalog.get(f"/api/v1/products/{product_id}", headers=_auth(token))
        return _json(response, CATALOG)

    def set_stock(self, token: str, product_id: int, stock: int) -> Any:
        """Set a product's stock level; returns the product."""
        response = self.catalog.patch(
            f"/api/v1/products/{product_id}", json={"stock": stock}, headers=_auth(token)
        )
        return _json(response, CATALOG)

    def deactivate(self, token: str, product_id: int) -> None:
        """Take a product off sale."""
        response = self.catalog.delete(f"/api/v1/products/{product_id}", headers=_auth(token))
        _expect(_checked(response), CATALOG, 204)

    # orders

    def order(self, token: str, order_id: int) -> Any:
        """One order, with its lines and its state history."""
        response = self.orders.get(f"/api/v1/orders/{order_id}", headers=_auth(token))
        return _json(response, ORDERS)

    def customer_orders(self, token: str, customer_id: int, cursor: str | None) -> Any:
        """A page of one customer's orders, newest first."""
        params: dict[str, str | int] = {"customer": customer_id, "limit": 20}
        if cursor:
            params["cursor"] = cursor
        response = self.orders.get("/api/v1/orders", params=params, headers=_auth(token))
        return _json(response, ORDERS)


def backends() -> Backends:
    """The current app's clients."""
    found: Backends = current_app.extensions["console.backends"]
    return found


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _json(response: ServiceResponse, target: str) -> Any:
    return _expect(_checked(response), target, 200).json()


def _checked(response: ServiceResponse) -> ServiceResponse:
    """``response``, unless it is a refusal: 401 ends the session, other 4xx are shown."""
    if response.status == 401:
        raise SessionRejected
    if 400 <= response.status < 500:
        raise Refused(response.status, _detail(response))
    return response


def _expect(response: ServiceResponse, target: str, status: int) -> ServiceResponse:
    if response.status != status:
        raise BadGateway(
            f"{target} answered {response.status}.", target=target, maybe_processed=True
        )
    return response


def _detail(response: ServiceResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            detail = f"{detail} {errors}"
        if isinstance(detail, str):
            return detail
    return f"The service refused it ({response.status})."


def _token_pair(response: ServiceResponse) -> TokenPair:
    body = response.json()
    try:
        return TokenPair(
            str(body["access_token"]), str(body["refresh_token"]), int(body["expires_in"])
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BadGateway(
            "users answered an unreadable token pair.", target=USERS, maybe_processed=True
        ) from error
