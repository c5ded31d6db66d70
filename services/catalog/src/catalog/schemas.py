"""Request and response contracts of the catalog service.

Input schemas refuse unknown fields (marshmallow's default): a PATCH carrying ``sku`` or
``id`` is a 422 that changes nothing. Numbers in bodies must be JSON integers (``strict``):
``"5"``, ``5.0`` and ``true`` are refused rather than converted. Money is an integer count of
the currency's minor units (cents for EUR), never a float.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import marshmallow as ma

from flotilla import BIGINT_MAX, PageQuery

SKU_PATTERN = r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"  # \Z: "$" would accept a final newline
CURRENCY_PATTERN = r"\A[A-Z]{3}\Z"
NAME_PATTERN = r"\A[^\x00]*[^\s\x00][^\x00]*\Z"
"""Text with something besides white space (as Python's ``str.isspace`` counts it), no NUL:
a pattern rather than a check in code, so the OpenAPI document promises what is accepted."""
MAX_PRICE = 10**10
"""Largest unit price in minor units: 50 lines of 1000 stay far below 2**53 (JSON-safe)."""
MAX_STOCK = 10**9
MAX_QUANTITY = 1000
MAX_LINES = 50


def _sku(**kwargs: Any) -> ma.fields.String:
    error = (
        "Use 1 to 64 characters from A-Z, 0-9, '-', '_' and '.', starting with a letter or digit."
    )
    description = "Stock-keeping unit; stored and compared upper-case."
    return ma.fields.String(
        validate=ma.validate.Regexp(SKU_PATTERN, error=error),
        metadata={"description": description},
        **kwargs,
    )


def _name(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=[
            ma.validate.Length(min=1, max=200),
            ma.validate.Regexp(NAME_PATTERN, error="Must not be blank."),
        ],
        **kwargs,
    )


def _description(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.Length(max=2000), **kwargs)


def _price(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=0, max=MAX_PRICE),
        metadata={"description": "Unit price in minor units of the currency (cents)."},
        **kwargs,
    )


def _currency(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.Regexp(CURRENCY_PATTERN, error="Use an ISO 4217 code, e.g. EUR."),
        **kwargs,
    )


def _stock(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True, validate=ma.validate.Range(min=0, max=MAX_STOCK), **kwargs
    )


class JsonBoolean(ma.fields.Boolean):
    """``true`` or ``false`` and nothing else: marshmallow's own takes ``0``, ``1`` and ``"yes"``.

    Truthy and falsy sets cannot say it: ``0 in {False}`` holds in Python.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _active(**kwargs: Any) -> ma.fields.Boolean:
    return JsonBoolean(**kwargs)


class ProductCreate(ma.Schema):
    """A new product (administrators)."""

    sku = _sku(required=True)
    name = _name(required=True)
    description = _description(load_default="")
    price = _price(required=True)
    currency = _currency(required=True)
    stock = _stock(load_default=0)
    active = _active(load_default=True)


class ProductUpdate(ma.Schema):
    """Changes to a product (administrators); only the fields given change. SKUs never do."""

    name = _name()
    description = _description()
    price = _price()
    currency = _currency()
    stock = _stock(metadata={"description": "The new stock level (not a difference)."})
    active = _active()


class ProductQuery(PageQuery):
    """Filters of the product list, besides the page."""

    active = ma.fields.Boolean(
        load_default=True, metadata={"description": "Active (default) or deactivated products."}
    )
    q = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=100),
        metadata={"description": "Case-insensitive part of the name or SKU."},
    )


class ProductPublic(ma.Schema):
    """A product as anyone may read it."""

    id = ma.fields.Integer(dump_only=True)
    sku = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    price = ma.fields.Integer(dump_only=True, metadata={"description": "Minor units."})
    currency = ma.fields.String(dump_only=True)
    stock = ma.fields.Integer(dump_only=True)
    active = ma.fields.Boolean(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class ProductsPublic(ma.Schema):
    """A page of products, and the cursor of the next page."""

    items = ma.fields.List(ma.fields.Nested(ProductPublic), dump_only=True)
    next_cursor = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Pass as ?cursor= for more."}
    )


def _each_product_once(lines: list[dict[str, int]]) -> None:
    counts = Counter(line["product_id"] for line in lines)
    repeated = sorted(product_id for product_id, count in counts.items() if count > 1)
    if repeated:
        raise ma.ValidationError(f"Each product may appear once; repeated: {repeated}.")


class ReservationLineCreate(ma.Schema):
    """A quantity of one product to hold."""

    product_id = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=BIGINT_MAX)
    )
    quantity = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_QUANTITY)
    )


class ReservationCreate(ma.Schema):
    """Stock to hold for an order; repeating the same request holds it once."""

    order_id = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=BIGINT_MAX),
        metadata={"description": "The order's id: the idempotency key."},
    )
    lines = ma.fields.List(
        ma.fields.Nested(ReservationLineCreate),
        required=True,
        validate=[ma.validate.Length(min=1, max=MAX_LINES), _each_product_once],
        metadata={"description": f"1 to {MAX_LINES} lines, each product at most once."},
    )


class ReservationLinePublic(ma.Schema):
    """A held line, priced when it was reserved."""

    product_id = ma.fields.Integer(dump_only=True)
    sku = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    quantity = ma.fields.Integer(dump_only=True)
    unit_price = ma.fields.Integer(dump_only=True, metadata={"description": "Minor units."})
    line_total = ma.fields.Integer(
        dump_only=True, metadata={"description": "quantity times unit_price."}
    )


class ReservationPublic(ma.Schema):
    """A reservation: ``reserved`` holds its lines' stock, ``released`` gave it back."""

    order_id = ma.fields.Integer(dump_only=True)
    state = ma.fields.String(dump_only=True, metadata={"description": "reserved or released."})
    currency = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "None for a bare release."}
    )
    lines = ma.fields.List(ma.fields.Nested(ReservationLinePublic), dump_only=True)
    total = ma.fields.Integer(dump_only=True, metadata={"description": "Sum of line totals."})
    reserved_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    released_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)


MAX_HELD_PAGE = 1000


class HeldReservationsQuery(ma.Schema):
    """Which held reservations to list: reserved in a time window, after an order id."""

    reserved_after = ma.fields.AwareDateTime(
        required=True, metadata={"description": "Reserved at or after this instant."}
    )
    reserved_before = ma.fields.AwareDateTime(
        required=True, metadata={"description": "Reserved before this instant."}
    )
    after = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(min=0, max=BIGINT_MAX),
        metadata={"description": "Only order ids above this one (the last of a page)."},
    )
    limit = ma.fields.Integer(
        load_default=100, validate=ma.validate.Range(min=1, max=MAX_HELD_PAGE)
    )


class HeldReservations(ma.Schema):
    """Order ids whose reservations hold stock, in ascending order."""

    order_ids = ma.fields.List(ma.fields.Integer(), dump_only=True)
