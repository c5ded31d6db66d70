"""Cursors round-trip any key and refuse anything this service did not issue; pages cut right."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, select

from flotilla.web.pagination import (
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
    keyset_query,
    page_of,
)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_keys_round_trip(key: int) -> None:
    assert decode_cursor(encode_cursor(key), int) == key


@given(st.text(max_size=50))
def test_text_keys_round_trip(key: str) -> None:
    assert decode_cursor(encode_cursor(key), str) == key


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", encode_cursor("7"), "W3RydWVd"])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, int)


@given(st.text(max_size=60))
def test_no_input_crashes_the_decoder(cursor: str) -> None:
    with contextlib.suppress(InvalidCursor):
        decode_cursor(cursor, int)


@pytest.mark.parametrize("key", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_integer_keys_beyond_bigint_are_refused(key: int) -> None:
    forged = base64.urlsafe_b64encode(f"[{key}]".encode()).decode()
    with pytest.raises(InvalidCursor):
        decode_cursor(forged, int)


@dataclass(frozen=True)
class Item:
    id: int


def test_a_page_keeps_limit_items_and_continues_after_the_last_when_more_were_read() -> None:
    page = page_of([Item(3), Item(5), Item(8)], limit=2)
    assert page.items == [Item(3), Item(5)]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor, int) == 5


def test_the_last_page_has_no_cursor() -> None:
    assert page_of([Item(3), Item(5)], limit=2).next_cursor is None
    assert page_of([], limit=2) == Page([], None)


def _items() -> Table:
    return Table("items", MetaData(), Column("id", Integer, primary_key=True))


@pytest.mark.parametrize(
    ("descending", "expected"),
    [
        (False, "WHERE items.id > 5 ORDER BY items.id LIMIT 3"),
        (True, "WHERE items.id < 5 ORDER BY items.id DESC LIMIT 3"),
    ],
)
def test_a_keyset_query_reads_one_row_more_than_a_page_after_the_cursor(
    descending: bool, expected: str
) -> None:
    items = _items()
    query = keyset_query(
        select(items), items.c.id, limit=2, cursor=encode_cursor(5), descending=descending
    )
    sql = " ".join(str(query.compile(compile_kwargs={"literal_binds": True})).split())
    assert sql.endswith(expected)


def test_the_first_page_has_no_condition_on_the_key() -> None:
    items = _items()
    query = keyset_query(select(items), items.c.id, limit=20, cursor=None)
    sql = " ".join(str(query.compile(compile_kwargs={"literal_binds": True})).split())
    assert sql == "SELECT items.id FROM items ORDER BY items.id LIMIT 21"
