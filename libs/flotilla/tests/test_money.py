"""Amounts in minor units are shown with the decimals of their currency (ISO 4217)."""

from __future__ import annotations

import pytest

from flotilla.money import format_money, minor_unit_digits


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        *[(code, 0) for code in ("JPY", "KRW", "ISK", "CLP", "VND")],
        *[(code, 3) for code in ("BHD", "JOD", "KWD", "OMR", "TND", "IQD", "LYD")],
        ("CLF", 4),
        *[(code, 2) for code in ("EUR", "USD", "GBP", "CHF")],
        ("XYZ", 2),  # a code this table does not know: the common case
    ],
)
def test_the_minor_unit_has_the_iso_4217_number_of_digits(currency: str, digits: int) -> None:
    assert minor_unit_digits(currency) == digits


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (3150, "EUR", "31.50 EUR"),
        (5, "EUR", "0.05 EUR"),
        (0, "EUR", "0.00 EUR"),
        (123456789, "USD", "1,234,567.89 USD"),
        (3150, "JPY", "3,150 JPY"),
        (0, "JPY", "0 JPY"),
        (3150, "KWD", "3.150 KWD"),
        (7, "BHD", "0.007 BHD"),
        (1234567, "TND", "1,234.567 TND"),
        (12345, "CLF", "1.2345 CLF"),
        (-3150, "EUR", "-31.50 EUR"),
        (10**20 + 1, "EUR", "1,000,000,000,000,000,000.01 EUR"),  # no float on the way
    ],
)
def test_an_amount_is_shown_with_its_currency_s_decimals(
    amount: int, currency: str, shown: str
) -> None:
    assert format_money(amount, currency) == shown
