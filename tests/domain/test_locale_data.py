"""The currency list shipped with the package (locale/currencies.txt, read instead of Babel's
global data at a function's first request) is Babel's codes with ISO 4217's minor units; after
an upgrade of Babel or iso4217 that changes it, run scripts/locale_data.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from scripts.locale_data import currency_digits

from invoiceflow.domain import money


def test_the_currency_file_is_babels_codes_with_iso_4217_minor_units() -> None:
    assert money._currency_digits() == currency_digits()
    assert set(money._currency_digits()) == set(money.babel_currency_digits())


@pytest.mark.parametrize(
    ("code", "digits", "amount"),
    [("RSD", 2, "999.60"), ("ALL", 2, "1250.50"), ("LBP", 2, "15000.25"), ("IQD", 3, "12.125")],
)
def test_a_currency_whose_cldr_decimals_are_fewer_keeps_its_minor_unit(
    code: str, digits: int, amount: str
) -> None:
    """CLDR shows these without decimals; their minor unit (ISO 4217) has 2 or 3: an amount
    in it is not rounded to a whole unit (999.60 RSD stayed 999.60, not 1000)."""
    assert money.babel_currency_digits()[code] == 0  # what CLDR says (why the file differs)
    assert money.minor_digits(code) == digits
    assert money.round_money(Decimal(amount), code) == Decimal(amount)


@pytest.mark.parametrize(
    ("code", "digits"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3), ("CLF", 4)]
)
def test_minor_digits(code: str, digits: int) -> None:
    assert money.minor_digits(code) == digits


def test_known_currencies() -> None:
    known = money.known_currencies()
    assert {"EUR", "USD", "JPY", "CHF"} <= known
    assert not {"XXX", "XTS"} & known  # not money one can invoice in
    assert money.is_known_currency("EUR") and not money.is_known_currency("QQQ")


def test_a_code_the_list_lacks_gets_babels_default() -> None:
    money.minor_digits.cache_clear()
    assert "QQQ" not in money._currency_digits() and money.minor_digits("QQQ") == 2
