"""The currency list shipped with the package (locale/currencies.txt, read instead of Babel's
global data at a function's first request) is Babel's; after a Babel upgrade that changes
it, run scripts/locale_data.py."""

from __future__ import annotations

import pytest

from invoiceflow.domain import money


def test_the_currency_file_is_babels_currency_list() -> None:
    assert money._currency_digits() == money.babel_currency_digits()


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
