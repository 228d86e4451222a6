"""The rounding policy and the totals, including the edge cases that go wrong in practice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoiceflow.domain.model import Discount, Invoice, LineItem, Party
from invoiceflow.domain.money import is_known_currency, minor_digits, round_money
from invoiceflow.domain.totals import compute_totals, line_total


def invoice(items: list[LineItem], currency: str = "EUR", **kw: Any) -> Invoice:
    return Invoice(
        number="N",
        issue_date=date(2026, 1, 1),
        currency=currency,
        seller=Party("S"),
        bill_to=Party("B"),
        items=tuple(items),
        **kw,
    )


@pytest.mark.parametrize(
    ("currency", "digits"), [("JPY", 0), ("EUR", 2), ("USD", 2), ("KWD", 3), ("BHD", 3)]
)
def test_minor_units_come_from_cldr(currency: str, digits: int) -> None:
    assert minor_digits(currency) == digits


def test_known_currencies() -> None:
    assert is_known_currency("EUR") and is_known_currency("KWD")
    assert not is_known_currency("ZZZ") and not is_known_currency("XXX")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "EUR", "0.01"),  # the tie rounds up
        ("0.0049999", "EUR", "0.00"),
        ("-0.005", "EUR", "-0.01"),  # ties away from zero, like Excel's ROUND
        ("1.0045", "KWD", "1.005"),
        ("1.0044", "KWD", "1.004"),
        ("0.5", "JPY", "1"),
        ("2.5", "JPY", "3"),  # not banker's rounding
        ("1.005", "USD", "1.01"),  # the float trap: 1.005 is 1.00499.. as a float
    ],
)
def test_round_money_is_half_up(amount: str, currency: str, expected: str) -> None:
    assert round_money(D(amount), currency) == D(expected)
    assert str(round_money(D(amount), currency)) == expected


def test_line_amount_rounds_once_after_discount() -> None:
    lt = line_total(LineItem("x", D(3), D("0.335"), discount=Discount("percent", D(10))), "EUR")
    # 3 x 0.335 = 1.005 -> gross 1.01; amount 1.005 - 0.1005 = 0.9045 -> 0.90; the discount
    # shown is what it takes off the rounded gross, 0.11 (not round(0.1005) = 0.10), so
    # gross - discount = amount on every document (EN 16931 BT-136)
    assert (lt.gross, lt.discount, lt.amount) == (D("1.01"), D("0.11"), D("0.90"))


@pytest.mark.parametrize(
    ("quantity", "price", "discount", "expected"),
    [
        # a credit line: the discount brings it towards zero, whichever way it is given
        ("-1", "10.00", Discount("amount", D("10.00")), ("-10.00", "-10.00", "0.00")),
        ("-1", "10.00", Discount("amount", D("2.50")), ("-10.00", "-2.50", "-7.50")),
        ("1", "-10.00", Discount("amount", D("2.50")), ("-10.00", "-2.50", "-7.50")),
        ("-1", "10.00", Discount("percent", D("25")), ("-10.00", "-2.50", "-7.50")),
        # an ordinary line, for comparison
        ("1", "10.00", Discount("amount", D("2.50")), ("10.00", "2.50", "7.50")),
    ],
)
def test_a_line_discount_reduces_a_credit_line(
    quantity: str, price: str, discount: Discount, expected: tuple[str, str, str]
) -> None:
    """An amount discount takes the sign of the line, as a percentage does: on a credit line
    (-1 x 10.00) it makes the credit smaller (-7.50), never bigger (-12.50)."""
    item = LineItem("x", D(quantity), D(price), credit=True, discount=discount)
    lt = line_total(item, "EUR")
    assert (lt.gross, lt.discount, lt.amount) == tuple(D(v) for v in expected)
    assert abs(lt.amount) <= abs(lt.gross)


def test_tax_is_computed_per_rate_on_the_summed_base_not_per_line() -> None:
    # three lines of 0.05 at 10 %: per-line tax would be 3 x 0.01 (0.005 rounds up) = 0.03,
    # EN 16931 taxes the base 0.15 -> 0.015 -> 0.02
    t = compute_totals(invoice([LineItem("x", D(1), D("0.05"), tax_rate=D(10))] * 3))
    assert t.tax == D("0.02")
    assert [(g.rate, g.base, g.tax) for g in t.tax_breakdown] == [(D(10), D("0.15"), D("0.02"))]


def test_two_rates_percent_discount_and_taxed_shipping() -> None:
    inv = invoice(
        [
            LineItem("a", D(2), D("50.00"), tax_rate=D(19)),
            LineItem("b", D(1), D("30.00"), tax_rate=D(7)),
            LineItem("c", D(1), D("20.00")),
        ],
        discount=Discount("percent", D(10)),
        shipping=D("5.00"),
        shipping_tax_rate=D(19),
        amount_paid=D("50"),
    )
    t = compute_totals(inv)
    assert t.subtotal == D("150.00")
    assert t.discount == D("15.00")
    groups = {g.rate: g for g in t.groups}
    assert groups[None].base == D("18.00") and groups[None].tax == D("0.00")
    assert groups[D(7)].base == D("27.00") and groups[D(7)].tax == D("1.89")
    assert groups[D(19)].base == D("95.00") and groups[D(19)].tax == D("18.05")
    assert t.total == D("150.00") - D("15.00") + D("5.00") + D("1.89") + D("18.05")
    assert t.balance_due == t.total - D(50)
    assert [g.rate for g in t.tax_breakdown] == [D(7), D(19)]


def test_amount_discount_is_split_with_the_remainder_on_the_last_rate() -> None:
    inv = invoice(
        [
            LineItem("a", D(1), D("10.00"), tax_rate=D(7)),
            LineItem("b", D(1), D("10.00"), tax_rate=D(19)),
            LineItem("c", D(1), D("10.00"), tax_rate=D(0)),
        ],
        discount=Discount("amount", D("10.00")),
    )
    t = compute_totals(inv)
    shares = [g.discount for g in t.groups]
    assert shares == [D("3.33"), D("3.33"), D("3.34")]  # rates 0, 7, 19
    assert t.discount == D("10.00")


def test_three_decimal_currency() -> None:
    t = compute_totals(invoice([LineItem("dates", D(3), D("4.3335"), tax_rate=D(5))], "KWD"))
    assert t.subtotal == D("13.001")  # 13.0005 rounds half-up
    assert t.tax == D("0.650")  # 0.65005 -> 0.650
    assert t.total == D("13.651")


def test_zero_decimal_currency() -> None:
    t = compute_totals(invoice([LineItem("x", D(7), D("1080.5"), tax_rate=D(8))], "JPY"))
    assert t.subtotal == D("7564") and t.tax == D("605") and t.total == D("8169")


amounts = st.decimals(min_value=D("0"), max_value=D("100000"), places=3, allow_nan=False)
rates = st.sampled_from([None, D(0), D(5), D("7.5"), D(19), D(20)])


@given(
    st.lists(st.tuples(amounts, amounts, rates), min_size=1, max_size=20),
    st.sampled_from(["JPY", "EUR", "KWD"]),
    st.one_of(st.none(), st.builds(Discount, st.just("percent"), st.decimals(0, 100, places=2))),
)
def test_totals_are_consistent(
    rows: list[tuple[D, D, D | None]], currency: str, discount: Discount | None
) -> None:
    inv = invoice(
        [LineItem("x", q, p, tax_rate=r) for q, p, r in rows], currency, discount=discount
    )
    t = compute_totals(inv)
    unit = D(1).scaleb(-minor_digits(currency))
    for value in (t.subtotal, t.discount, t.tax, t.total, *(lt.amount for lt in t.lines)):
        assert value == value.quantize(unit)  # everything shown is in minor units
    assert t.subtotal == sum(lt.amount for lt in t.lines)
    assert t.discount == sum(g.discount for g in t.groups)
    assert t.tax == sum(g.tax for g in t.groups)
    assert t.total == t.subtotal - t.discount + t.shipping + t.tax
