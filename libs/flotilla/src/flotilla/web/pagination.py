"""Keyset (cursor) pagination: stable pages at any depth, with no OFFSET scans.

A cursor is an opaque, URL-safe token holding the sort key of the last item of a page. It is
not signed: it grants nothing, and a forged one only selects a different valid page; one
that does not decode is a 400 problem.

Every list pages the same way: :func:`keyset_query` orders a query by an integer key and
reads one row more than a page after the cursor, and :func:`page_of` cuts that back to a
page whose cursor exists only when the extra row did.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import marshmallow as ma
import orjson
from sqlalchemy import Select, SQLColumnExpression

from flotilla.data.columns import BIGINT_MAX, BIGINT_MIN
from flotilla.web.errors import BadRequest

ItemT = TypeVar("ItemT")


class Keyed(Protocol):
    """A listed item: an ORM object or a row whose ``id`` is its sort key."""

    @property
    def id(self) -> int:
        """The item's sort key."""
        ...


KeyedT = TypeVar("KeyedT", bound=Keyed)
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")
KeyT = TypeVar("KeyT", int, str)

_INVALID = "The cursor is not valid; start again without it."
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class InvalidCursor(BadRequest):
    """The ``cursor`` query parameter is not one this service issued (400)."""

    code, title = "invalid-cursor", "Invalid Cursor"


def encode_cursor(key: int | str) -> str:
    """The cursor that continues after the item whose sort key is ``key``."""
    return base64.urlsafe_b64encode(orjson.dumps([key])).rstrip(b"=").decode()


def decode_cursor(cursor: str, kind: type[KeyT]) -> KeyT:
    """The sort key of type ``kind`` inside ``cursor``; :class:`InvalidCursor` if not ours."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        (key,) = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidCursor(_INVALID) from error
    if type(key) is not kind or (isinstance(key, int) and not BIGINT_MIN <= key <= BIGINT_MAX):
        raise InvalidCursor(_INVALID)
    return key


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    """One page of items and the cursor of the next page (``None`` on the last page)."""

    items: Sequence[ItemT]
    next_cursor: str | None


def keyset_query(
    query: SelectT,
    key: SQLColumnExpression[int],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> SelectT:
    """``query`` ordered by ``key``, from after ``cursor``, reading ``limit`` rows plus one.

    The extra row tells :func:`page_of` whether another page follows without a count.
    ``descending`` pages newest first. ``key`` must be unique, or rows sharing one value
    across a page boundary would be skipped.
    """
    if cursor is not None:
        after = decode_cursor(cursor, int)
        query = query.where(key < after if descending else key > after)
    return query.order_by(key.desc() if descending else key).limit(limit + 1)


def page_of(rows: Sequence[KeyedT], *, limit: int) -> Page[KeyedT]:
    """The page of the ``rows`` a :func:`keyset_query` on their ``id`` read."""
    items = rows[:limit]
    return Page(items, encode_cursor(items[-1].id) if len(rows) > limit else None)


class PageQuery(ma.Schema):
    """Query parameters of a paginated list: ``limit`` (1-100) and ``cursor``."""

    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Items per page, 1 to {MAX_LIMIT}."},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=200),
        metadata={"description": "next_cursor of the previous page; omit for the first page."},
    )
