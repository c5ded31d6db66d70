"""The payloads this service consumes, one model per event type and version (docs/events.md).

A payload that does not match its model raises, the task retries and, after the last retry,
the message waits in the dead-letter queue for a fix and a replay: a malformed event is
never half-handled. Unknown fields are ignored, so a producer may add optional fields
without a new version; renaming or removing one needs a new version, which this module
learns by adding a model beside the old one.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from flotilla.outbox import Event


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
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


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
    unit_price: Money
    line_total: Money


class OrderPlaced(Payload):
    """``order.placed`` v1: a customer placed an order (the orders service emits it)."""

    order_id: int
    user_id: int
    email: EmailAddress
    display_name: str | None = None
    placed_at: datetime
    currency: CurrencyCode
    lines: list[OrderLine] = Field(min_length=1)
    total: Money


class OrderCancelled(Payload):
    """``order.cancelled`` v1: an order was cancelled, by its customer or the shop."""

    order_id: int
    user_id: int
    email: EmailAddress
    display_name: str | None = None
    cancelled_at: datetime
    reason: str | None = None
    currency: CurrencyCode
    total: Money


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
