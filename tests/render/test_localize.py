"""Locale formatting (render/localize.py): Babel output for the invoice's locale and currency.

The expected strings are CLDR data as shipped by the *locked* Babel (requirements.lock): CLDR
changes between releases (Babel 2.19's de-CH groups with an apostrophe where 2.18 uses U+2019),
so they hold for that version only. tests/test_lock.py fails first when another one is
installed; after a deliberate Babel upgrade, re-read these strings from the new CLDR data.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from invoiceflow.domain.model import Invoice, Party
from invoiceflow.errors import RenderError
from invoiceflow.render import localize

NBSP = "\u00a0"


def inv(locale: str, currency: str) -> Invoice:
    return Invoice(
        number="N",
        issue_date=date(2026, 3, 5),
        currency=currency,
        locale=locale,
        seller=Party("S"),
        bill_to=Party("B"),
        items=(),
    )


@pytest.mark.parametrize(
    ("locale", "currency", "amount", "expected"),
    [
        ("de-DE", "EUR", "1234.50", f"1.234,50{NBSP}€"),
        ("de-DE", "EUR", "-1234.5", f"-1.234,50{NBSP}€"),
        ("en-US", "USD", "1234.5", "$1,234.50"),
        ("en-US", "USD", "1234567.89", "$1,234,567.89"),
        ("ja-JP", "JPY", "1235", "￥1,235"),  # JPY: no decimals
        ("en-US", "JPY", "1235", "¥1,235"),
        # KWD: three decimals; a code printed as the sign is spaced from the digits (CLDR's
        # currencySpacing), a symbol is not
        ("en-US", "KWD", "1234.5", "KWD\u00a01,234.500"),
        ("en-US", "USD", "-1234.5", "-$1,234.50"),
        ("en-US", "CHF", "-5", "-CHF\u00a05.00"),
        ("fr-FR", "EUR", "1234.5", "1\u202f234,50\u00a0€"),
        ("de-CH", "CHF", "1234.5", "CHF\u00a01\u2019234.50"),
    ],
)
def test_money(locale: str, currency: str, amount: str, expected: str) -> None:
    assert localize.money(D(amount), inv(locale, currency)) == expected


def test_money_kwd_in_arabic_has_three_decimals() -> None:
    out = localize.money(D("1234.5"), inv("ar-KW", "KWD"))
    assert "1,234.500" in out and "د.ك" in out


def test_money_never_rounds_nor_drops_digits() -> None:
    eur = inv("de-DE", "EUR")
    assert localize.money(D("0.125"), eur) == f"0,125{NBSP}€"  # a unit price
    assert localize.money(D("5"), eur) == f"5,00{NBSP}€"  # padded to the minor unit
    # Babel alone would round half-even to 2; the invoice prints exactly what was computed
    assert localize.money(D("2.5"), inv("en-US", "JPY")) == "¥2.5"
    # zeros beyond the minor unit carry no information
    assert localize.money(D("0.1250"), eur) == f"0,125{NBSP}€"
    assert localize.money(D("7.000"), eur) == f"7,00{NBSP}€"


@pytest.mark.parametrize(
    ("locale", "currency", "amount", "expected"),
    [
        # CLDR shows these without decimals, ISO 4217 (the rounding policy) has 2 or 3: the
        # amounts are rounded to ISO's digits and print them, as the workbook shows them
        ("sr-Latn-RS", "RSD", "25.00", f"25,00{NBSP}RSD"),
        ("sr-Latn-RS", "RSD", "595.60", f"595,60{NBSP}RSD"),
        ("en-US", "IQD", "1234.5", f"IQD{NBSP}1,234.500"),
        ("en-US", "IRR", "-7", f"-IRR{NBSP}7.00"),
    ],
)
def test_money_has_the_iso_digits_where_cldr_shows_fewer(
    locale: str, currency: str, amount: str, expected: str
) -> None:
    assert localize.money(D(amount), inv(locale, currency)) == expected


def test_money_negative_zero_and_other_currency() -> None:
    assert localize.money(D("-0.00"), inv("en-US", "USD")) == "$0.00"
    assert localize.money(D("10"), inv("en-US", "USD"), currency="EUR") == "€10.00"


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        localize.money(1.5, inv("en-US", "USD"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("locale", "q", "expected"),
    [
        ("de-DE", "2.500", "2,5"),
        ("de-DE", "1000", "1.000"),
        ("en-US", "1000.125", "1,000.125"),
        ("en-US", "-3", "-3"),
        ("ja-JP", "0.5", "0.5"),
    ],
)
def test_quantity(locale: str, q: str, expected: str) -> None:
    assert localize.quantity(D(q), inv(locale, "EUR")) == expected


@pytest.mark.parametrize(
    ("locale", "rate", "expected"),
    [
        ("de-DE", "19", f"19{NBSP}%"),
        ("de-DE", "7.5", f"7,5{NBSP}%"),
        ("en-US", "7.25", "7.25%"),
        ("en-US", "0", "0%"),
        ("ja-JP", "10", "10%"),
    ],
)
def test_percent(locale: str, rate: str, expected: str) -> None:
    assert localize.percent(D(rate), inv(locale, "EUR")) == expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de-DE", "05.03.2026"),
        ("en-US", "3/5/2026"),
        ("en-GB", "05/03/2026"),
        ("ja-JP", "2026/03/05"),
        ("fr-FR", "05/03/2026"),
        ("zh-CN", "2026/3/5"),
    ],
)
def test_date(locale: str, expected: str) -> None:
    """The CLDR short date with the year in full: numbers only, so the workbook's date cells
    show the same (render.xlsx turns the pattern into a number format)."""
    assert localize.date(date(2026, 3, 5), inv(locale, "EUR")) == expected


def test_currency_symbol_and_locale() -> None:
    assert localize.currency_symbol(inv("de-DE", "EUR")) == "€"
    assert localize.currency_symbol(inv("en-US", "USD")) == "$"
    assert localize.locale_of(inv("de-DE", "EUR")).territory == "DE"


def test_unknown_locale_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="unknown locale"):
        localize.money(D(1), inv("xx-YY", "EUR"))
