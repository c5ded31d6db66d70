"""Typed clients of the services orders calls: users (the customer) and catalog (stock, prices).

Each wraps a :class:`flotilla.resilience.http.ServiceClient` (timeouts, retries, breaker, deadline)
and turns the other service's answers into values or into this service's own problems. A 4xx
from the other side is a fact about the request (not enough stock, a bad token), so it is
mapped to the problem the customer should see; failures of the other service itself
(5xx, timeouts, an open breaker) and answers this service does not recognise stay or become
:class:`~flotilla.resilience.http.DownstreamError` (502/503/504) and carry ``maybe_processed``,
which compensation relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Self, TypeVar

from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flotilla import (
    PROBLEM_TYPE_PREFIX,
    BadGateway,
    Conflict,
    Principal,
    Problem,
    ServiceClient,
    ServiceResponse,
    ValidationFailed,
    token_rejected,
)

USERS, CATALOG = "users", "catalog"
RESERVED = "reserved"


@dataclass(frozen=True)
class Caller:
    """Who a request speaks for: its verified principal, and the bearer token that proved it.

    The view builds it from the request; the token goes on only to users, and only when it
    carries no profile (:func:`customer_of`).
    """

    principal: Principal
    token: str = field(repr=False)


class InsufficientStock(Conflict):
    """Catalog has fewer of a product than the order asks for (409)."""

    code, title = "insufficient-stock", "Insufficient Stock"


class ProductUnavailable(ValidationFailed):
    """A product of the order does not exist or is not for sale (422)."""

    code, title = "product-unavailable", "Product Unavailable"


class CurrencyMismatch(ValidationFailed):
    """The order's products are priced in different currencies (422)."""

    code, title = "currency-mismatch", "Currency Mismatch"


CATALOG_PROBLEMS: dict[str, type[Problem]] = {
    "insufficient-stock": InsufficientStock,
    "product-unavailable": ProductUnavailable,
    "currency-mismatch": CurrencyMismatch,
}
"""Catalog's refusals the customer can act on, and the problem they become here.

Catalog's other refusals of a reservation (``reservation-mismatch``,
``reservation-released``) say it holds or held something for the order id, and an
unexpected status says nothing reliable: both are a 502 whose outcome is unknown.
"""

MinorUnits = Annotated[int, Field(strict=True, ge=0)]
PositiveId = Annotated[int, Field(strict=True, ge=1)]


class _Answer(BaseModel):
    """Base of what is read from other services: immutable, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Customer(_Answer):
    """The customer placing an order, as users knows them now."""

    id: PositiveId
    email: str
    display_name: str | None = None


class ReservedLine(_Answer):
    """One line of a reservation, priced by catalog."""

    product_id: PositiveId
    sku: str = Field(max_length=64)
    name: str = Field(max_length=200)
    quantity: PositiveId
    unit_price: MinorUnits
    line_total: MinorUnits

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if self.line_total != self.quantity * self.unit_price:
            raise ValueError("line_total is not quantity times unit_price")
        return self


class Reservation(_Answer):
    """Stock catalog holds for an order (``reserved``) or gave back (``released``)."""

    order_id: PositiveId
    state: str
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    lines: list[ReservedLine] = []
    total: MinorUnits = 0

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if self.total != sum(line.line_total for line in self.lines):
            raise ValueError("total is not the sum of the line totals")
        return self

    def holds(self, order_id: int, lines: Sequence[dict[str, int]]) -> bool:
        """True when this reservation holds exactly ``lines`` for ``order_id``, priced."""
        asked = {line["product_id"]: line["quantity"] for line in lines}
        held = {line.product_id: line.quantity for line in self.lines}
        return (
            self.order_id == order_id
            and self.state == RESERVED
            and self.currency is not None
            and len(self.lines) == len(asked)
            and held == asked
        )


class HeldReservations(_Answer):
    """Order ids whose reservations hold stock, ascending."""

    order_ids: list[PositiveId]


AnswerT = TypeVar("AnswerT", bound=_Answer)


def _parse(response: ServiceResponse, model: type[AnswerT], target: str) -> AnswerT:
    """``response``'s JSON body as ``model``; :class:`BadGateway` when it is not one."""
    try:
        return model.model_validate(response.json())
    except (ValidationError, ValueError) as error:
        raise BadGateway(
            f"{target} answered something unreadable.", target=target, maybe_processed=True
        ) from error


def _problem_member(response: ServiceResponse, name: str) -> Any:
    """Member ``name`` of a JSON object answer, else ``None``."""
    try:
        body: Any = response.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _problem_code(response: ServiceResponse) -> str:
    """The code of a problem+json answer (``urn:flotilla:problem:<code>``), else ``""``."""
    kind = _problem_member(response, "type")
    if not isinstance(kind, str) or not kind.startswith(PROBLEM_TYPE_PREFIX):
        return ""
    return kind.removeprefix(PROBLEM_TYPE_PREFIX)


def _problem_detail(response: ServiceResponse) -> str | None:
    detail = _problem_member(response, "detail")
    return detail if isinstance(detail, str) else None


def _refusal(problem: type[Problem], response: ServiceResponse) -> Problem:
    """``problem`` with catalog's detail and the ``product_ids`` it names, if well-formed."""
    refusal = problem(_problem_detail(response))
    ids = _problem_member(response, "product_ids")
    if isinstance(ids, list) and all(type(item) is int for item in ids):
        refusal.extensions["product_ids"] = ids
    return refusal


class UsersClient:
    """The users service, asked on the customer's behalf with the customer's own token."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    def current_customer(self, token: str) -> Customer:
        """The account behind the bearer ``token``; 401 if users refuses it.

        Asking users, not only verifying the token here, also refuses a token users no
        longer honours: the password changed or the account was deactivated since.
        """
        authorization = {"Authorization": f"Bearer {token}"}
        response = self.http.get("/api/v1/users/me", headers=authorization)
        if response.status == 200:
            return _parse(response, Customer, USERS)
        if response.status == 401:
            raise token_rejected(_problem_detail(response) or "The account refused the token.")
        raise BadGateway(
            f"users answered {response.status} for the customer's account.",
            target=USERS,
            maybe_processed=False,
        )


class CatalogClient:
    """The catalog service: reserves stock at catalog's prices and releases it."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    def reserve(self, order_id: int, lines: Sequence[dict[str, int]]) -> Reservation:
        """Reserve ``lines`` for ``order_id``; safe to repeat (catalog keys it by order id).

        Raises :class:`InsufficientStock`, :class:`ProductUnavailable` or
        :class:`CurrencyMismatch` when catalog refuses: that attempt reserved nothing, but an
        earlier attempt of the call (retried after a timeout) may have. Any other answer,
        4xx included, is :class:`BadGateway` with ``maybe_processed``: this client cannot
        tell what an answer it does not recognise means for the stock.
        """
        body = {"order_id": order_id, "lines": [dict(line) for line in lines]}
        response = self.http.post(
            "/api/v1/reservations", json=body, idempotency_key=f"order-{order_id}"
        )
        if response.status in (200, 201):
            reservation = _parse(response, Reservation, CATALOG)
            if not reservation.holds(order_id, lines):
                raise BadGateway(
                    "catalog answered a reservation for other lines.",
                    target=CATALOG,
                    maybe_processed=True,
                )
            return reservation
        problem = CATALOG_PROBLEMS.get(_problem_code(response))
        if problem is not None:
            raise _refusal(problem, response)
        raise BadGateway(
            f"catalog answered {response.status} to a reservation, which orders does not expect.",
            target=CATALOG,
            maybe_processed=True,
        )

    def release(self, order_id: int) -> None:
        """Give the stock reserved for ``order_id`` back; safe to repeat, and final.

        Catalog keeps a tombstone, so a late duplicate of the reservation is refused.
        """
        response = self.http.delete(f"/api/v1/reservations/{order_id}")
        if response.status not in (200, 204):
            raise BadGateway(
                f"catalog answered {response.status} to a release.",
                target=CATALOG,
                maybe_processed=True,
            )

    def held_reservations(
        self, *, reserved_after: datetime, reserved_before: datetime, after: int, limit: int
    ) -> list[int]:
        """Ids of orders catalog holds stock for, reserved in the window, above ``after``."""
        params: dict[str, str | int] = {
            "reserved_after": reserved_after.isoformat(),
            "reserved_before": reserved_before.isoformat(),
            "after": after,
            "limit": limit,
        }
        response = self.http.get("/api/v1/reservations", params=params)
        if response.status != 200:
            raise BadGateway(
                f"catalog answered {response.status} for the held reservations.",
                target=CATALOG,
                maybe_processed=False,
            )
        return _parse(response, HeldReservations, CATALOG).order_ids

    def reservation(self, order_id: int) -> Reservation | None:
        """Catalog's reservation of ``order_id`` (held or released), or ``None``."""
        response = self.http.get(f"/api/v1/reservations/{order_id}")
        if response.status == 404:
            return None
        if response.status != 200:
            raise BadGateway(
                f"catalog answered {response.status} for a reservation.",
                target=CATALOG,
                maybe_processed=False,
            )
        return _parse(response, Reservation, CATALOG)


def customer_of(caller: Caller) -> Customer:
    """Who places the order: from the access token's profile, else as users knows them.

    users puts the account's e-mail and display name in every access token it issues
    (``email``, ``name``), so placing an order needs no call to users. A token without
    them (issued before tokens carried a profile, or by another issuer) is answered by
    users' ``/api/v1/users/me``, which also refuses a token it no longer honours.
    """
    claims = caller.principal.claims
    try:
        return Customer(
            id=caller.principal.user_id, email=claims["email"], display_name=claims.get("name")
        )
    except (KeyError, ValueError):  # no profile, or one that is not an e-mail and a name
        return users_client().current_customer(caller.token)


def users_client() -> UsersClient:
    """The users client of the current app."""
    client: UsersClient = current_app.extensions["orders.users"]
    return client


def catalog_client() -> CatalogClient:
    """The catalog client of the current app."""
    client: CatalogClient = current_app.extensions["orders.catalog"]
    return client
