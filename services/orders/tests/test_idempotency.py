"""Idempotency keys: what a usable key is, and what makes two requests the same."""

from __future__ import annotations

import pytest

from orders.idempotency import (
    IdempotencyKeyRequired,
    InvalidIdempotencyKey,
    checked_key,
    request_hash,
)


@pytest.mark.parametrize("key", ["a", "order-2026-11-21T10:00:00Z", "x" * 255, "with space", "~!"])
def test_printable_ascii_keys_up_to_255_are_accepted(key: str) -> None:
    assert checked_key(key) == key


@pytest.mark.parametrize("key", [None, ""])
def test_a_missing_key_is_a_400_naming_the_header(key: str | None) -> None:
    with pytest.raises(IdempotencyKeyRequired) as raised:
        checked_key(key)
    assert raised.value.status == 400
    assert "Idempotency-Key" in str(raised.value)


@pytest.mark.parametrize("key", ["x" * 256, "caf\u00e9", "tab\there", "nul\x00", "line\n"])
def test_long_or_non_printable_keys_are_a_400(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey) as raised:
        checked_key(key)
    assert raised.value.status == 400


def test_the_request_hash_ignores_key_order_but_not_content() -> None:
    body = {"lines": [{"product_id": 1, "quantity": 2}]}
    same = {"lines": [{"quantity": 2, "product_id": 1}]}
    other = {"lines": [{"product_id": 1, "quantity": 3}]}
    assert request_hash(body) == request_hash(same)
    assert request_hash(body) != request_hash(other)
    assert len(request_hash(body)) == 64


def test_the_order_of_lines_is_part_of_the_request() -> None:
    first = {"lines": [{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 1}]}
    swapped = {"lines": list(reversed(first["lines"]))}
    assert request_hash(first) != request_hash(swapped)
