"""The payloads this service consumes, one model per event type and version (docs/events.md).

A payload that does not match its model raises, the task retries and, after the last retry,
the message waits in the dead-letter queue for a fix and a replay: a malformed event is
never half-handled. Unknown fields are ignored, so a producer may add optional fields
without a new version; renaming or removing one needs a new version, which this module
learns by adding a model beside the old one.

Money is an integer amount of the currency's minor unit beside an ISO 4217 ``currency``
(``3150`` and ``"EUR"`` for 31.50 EUR; see :mod:`flotilla.money`). An order's amounts
must add up — each line's total is its quantity times its unit price, the order's total the
sum of its lines — and a payload whose arithmetic disagrees is refused like any malformed
one: the e-mail would otherwise show the customer figures that contradict each other.
"""

from __future__ import annotations

from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Annotated, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from flotilla import Event


def _mailbox(value: str) -> str:
    """``value`` if it is one address a To: header can carry (``Address`` parses it)."""
    try:
        address = Address(addr_spec=value)
    except (ValueError, HeaderParseError) as error:
        raise ValueError(f"not an e-mail address: {error}") from error
    if not address.username or not address.domain or address.addr_spec != value:
        raise ValueError("not a single e-mail address")
    return value


EmailAddress = Annotated[str, StringConstraints(max_length=254), AfterValidator(_mailbox)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
MinorUnits = Annotated[int, Field(strict=True, ge=0)]
"""An amount of money in the currency's minor unit; strict: ``"31.50"`` or ``31.5`` is refused."""


class UnsupportedEvent(ValueError):
    """An event of a type or version this service has no model for."""


class Payload(BaseModel):
    """Base of the payload models: immutable, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class UserRegistered(Payload):
    """``user.registered`` v1: an account was created."""

    user_id: int
    username: str
    email: EmailAddress
    display_name: str | None = None
    registered_at: datetime


class OrderLine(Payload):
    """One product of an order, priced when the order was placed."""

    product_id: int
    name: str
    quantity: int = Field(ge=1)
    unit_price: MinorUnits
    line_total: MinorUnits

    @model_validator(mode="after")
    def _line_total_is_quantity_times_unit_price(self) -> Self:
        if self.line_total != self.quantity * self.unit_price:
            raise ValueError(
                f"line_total {self.line_total} is not quantity {self.quantity}"
                f" times unit_price {self.unit_price}"
            )
        return self


class OrderPlaced(Payload):
    """``order.placed`` v1: a customer placed an order (the orders service emits it)."""

    order_id: int
    user_id: int
    email: EmailAddress
    display_name: str | None = None
    placed_at: datetime
    currency: CurrencyCode
    lines: list[OrderLine] = Field(min_length=1)
    total: MinorUnits

    @model_validator(mode="after")
    def _total_is_the_sum_of_the_lines(self) -> Self:
        lines_sum = sum(line.line_total for line in self.lines)
        if self.total != lines_sum:
            raise ValueError(f"total {self.total} is not the sum of the line totals {lines_sum}")
        return self


class OrderCancelled(Payload):
    """``order.cancelled`` v1: an order was cancelled, by its customer or the shop."""

    order_id: int
    user_id: int
    email: EmailAddress
    display_name: str | None = None
    cancelled_at: datetime
    reason: str | None = None
    currency: CurrencyCode
    total: MinorUnits


PayloadT = TypeVar("PayloadT", bound=Payload)

MODELS: dict[tuple[str, int], type[Payload]] = {
    ("user.registered", 1): UserRegistered,
    ("order.placed", 1): OrderPlaced,
    ("order.cancelled", 1): OrderCancelled,
}
"""Every (type, version) this service understands."""


def parse_payload(event: Event, model: type[PayloadT]) -> PayloadT:
    """The payload of ``event`` as ``model``; raises ``UnsupportedEvent`` or ``ValidationError``."""
    expected = MODELS.get((event.type, event.version))
    if expected is not model:
        raise UnsupportedEvent(f"{event.type} v{event.version} is not handled as {model.__name__}")
    return model.model_validate(event.payload)
