"""Request and response contracts of the orders service.

Input schemas refuse unknown fields (marshmallow's default), so an order carrying a
``price``, a ``total`` or a ``user_id`` is a 422 that changes nothing: what an order costs
comes from catalog alone, and whose it is from the token alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import marshmallow as ma

from flotilla import BIGINT_MAX, PageQuery

MAX_LINES = 50
MAX_QUANTITY = 1000
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


class OrderLineCreate(ma.Schema):
    """One product and how many of it."""

    product_id = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=BIGINT_MAX)
    )
    quantity = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_QUANTITY)
    )


class OrderCreate(ma.Schema):
    """A new order: 1 to 50 lines, each product once. Prices come from catalog."""

    lines = ma.fields.List(
        ma.fields.Nested(OrderLineCreate),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_LINES),
    )

    @ma.validates("lines")
    def _each_product_once(self, lines: list[dict[str, int]], **_kwargs: Any) -> None:
        # Lines that failed their own validation may be missing here.
        product_ids = [line["product_id"] for line in lines if "product_id" in line]
        if len(set(product_ids)) != len(product_ids):
            raise ma.ValidationError("Each product may appear in one line only.")


IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_KEY_HEADER,
    "required": True,
    "schema": {"type": "string", "pattern": "^[\\x20-\\x7e]{1,255}$"},
    "description": "1 to 255 printable ASCII characters chosen by the client, "
    "new for each order. Sending the same key and body again returns the first answer.",
}
"""The header that makes placing an order safe to repeat, as the OpenAPI document shows it.

The view reads the header itself and :func:`orders.idempotency.checked_key` judges it (400
when missing or malformed, a problem the client can act on), so it is declared here rather
than parsed by a schema: webargs would build a dictionary of every header of every order.
"""


class OrderCancel(ma.Schema):
    """Why an order is cancelled, shown to the customer (optional)."""

    reason = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=500)
    )


class OrdersQuery(PageQuery):
    """Whose orders to list, besides the page: one's own, or a customer's (administrators)."""

    customer = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=BIGINT_MAX),
        metadata={
            "description": "A customer's user id: list that customer's orders instead of "
            "one's own. Administrators only; anyone else giving it gets 403."
        },
    )


class OrderLinePublic(ma.Schema):
    """One product of an order, priced when the order was placed."""

    product_id = ma.fields.Integer(dump_only=True)
    sku = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    quantity = ma.fields.Integer(dump_only=True)
    unit_price = ma.fields.Integer(
        dump_only=True, metadata={"description": "Minor units of currency (cents)."}
    )
    line_total = ma.fields.Integer(
        dump_only=True, metadata={"description": "quantity times unit_price, minor units."}
    )


class HistoryEntryPublic(ma.Schema):
    """A state the order entered, and when."""

    state = ma.fields.String(
        dump_only=True, metadata={"enum": ["pending", "placed", "cancelling", "cancelled"]}
    )
    at = ma.fields.AwareDateTime(dump_only=True)


class OrderPublic(ma.Schema):
    """An order as its customer and administrators see it."""

    id = ma.fields.Integer(dump_only=True)
    user_id = ma.fields.Integer(dump_only=True)
    state = ma.fields.String(
        dump_only=True,
        metadata={
            "enum": ["placed", "cancelling", "cancelled"],
            "description": "cancelling: the cancel is recorded and the stock is being given "
            "back; the order becomes cancelled once catalog has it.",
        },
    )
    currency = ma.fields.String(dump_only=True, metadata={"description": "ISO 4217 code."})
    total = ma.fields.Integer(
        dump_only=True, metadata={"description": "Sum of the line totals, minor units."}
    )
    lines = ma.fields.List(ma.fields.Nested(OrderLinePublic), dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    placed_at = ma.fields.AwareDateTime(dump_only=True)
    cancelled_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    history = ma.fields.List(
        ma.fields.Nested(HistoryEntryPublic),
        dump_only=True,
        metadata={
            "description": "Each state the order has been in, oldest first: pending (at "
            "created_at), placed (at placed_at), cancelling (when the cancel was recorded), "
            "cancelled (at cancelled_at). An order whose cancel began before the shop "
            "recorded that time has no cancelling entry."
        },
    )


class HistoryEntryView(TypedDict):
    """One state of an order and when it was entered, as ``HistoryEntryPublic`` shows it."""

    state: str
    at: datetime


class LineView(TypedDict):
    """One line of an order, as ``OrderLinePublic`` shows it."""

    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price: int
    line_total: int


class OrderView(TypedDict):
    """An order and its lines, as ``OrderPublic`` shows it."""

    id: int
    user_id: int
    state: str
    currency: str | None
    total: int | None
    created_at: datetime
    placed_at: datetime | None
    cancelled_at: datetime | None
    lines: list[LineView]
    history: list[HistoryEntryView]


class OrdersPublic(ma.Schema):
    """A page of one's (or a customer's) orders, newest first, and the next page's cursor."""

    items = ma.fields.List(ma.fields.Nested(OrderPublic), dump_only=True)
    next_cursor = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Pass as ?cursor= for more."}
    )


@dataclass(frozen=True)
class StoredResponse:
    """The answer to a keyed ``POST /api/v1/orders``: the first one, or its replay.

    Stored on the order with its ``Idempotency-Key`` (:mod:`orders.idempotency`); the view
    turns it into the HTTP response, and a replay says so in a header.
    """

    status: int
    body: dict[str, Any]
    replayed: bool = False
