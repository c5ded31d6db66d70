"""Cursors round-trip any key and refuse anything this service did not issue."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flotilla.pagination import InvalidCursor, decode_cursor, encode_cursor


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
