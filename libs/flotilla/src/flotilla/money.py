"""Amounts of money as events carry them: an integer of the currency's minor unit.

Events never carry a float or a decimal string (docs/events.md): 31.50 EUR travels as
``3150`` with ``"EUR"``, 3,150 JPY as ``3150`` with ``"JPY"``, 3.150 KWD as ``3150`` with
``"KWD"``. Where the decimal point goes is a property of the currency, its ISO 4217
exponent, and only matters when an amount is shown to a person: in an e-mail
(notifications), on a page (the console).
"""

from __future__ import annotations

_NO_MINOR_UNIT = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THOUSANDTHS = "BHD IQD JOD KWD LYD OMR TND"
_TEN_THOUSANDTHS = "CLF UYW"

MINOR_UNIT_DIGITS: dict[str, int] = {
    **dict.fromkeys(_NO_MINOR_UNIT.split(), 0),
    **dict.fromkeys(_THOUSANDTHS.split(), 3),
    **dict.fromkeys(_TEN_THOUSANDTHS.split(), 4),
}
"""ISO 4217 exponents that are not 2; every other currency has two decimal digits."""


def minor_unit_digits(currency: str) -> int:
    """How many decimal digits ``currency``'s minor unit has: 2 unless ISO 4217 says otherwise."""
    return MINOR_UNIT_DIGITS.get(currency, 2)


def format_money(amount: int, currency: str) -> str:
    """``amount`` minor units of ``currency`` for a reader: ``1,234.50 EUR``, ``3,150 JPY``.

    Integer arithmetic only, so no amount is ever rounded on its way to the e-mail.
    """
    digits = minor_unit_digits(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    decimals = f".{fraction:0{digits}d}" if digits else ""
    return f"{sign}{whole:,}{decimals} {currency}"
