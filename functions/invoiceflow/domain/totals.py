"""Totals, computed on the server with Decimal under the policy of :mod:`.money`.

Renderers never add up money themselves: the PDF prints these figures and the workbook's
formulas are checked against them.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from invoiceflow.domain.model import Invoice, LineItem, assemble, xml_rate
from invoiceflow.domain.money import round_money
from invoiceflow.records import record

HUNDRED = Decimal(100)


@record
class LineTotal:
    #: round(quantity x unit price): the amount before the line discount
    gross: Decimal
    #: gross - amount: what the line discount takes off
    discount: Decimal
    #: round(quantity x unit price - raw line discount): the line amount
    amount: Decimal
    tax_rate: Decimal | None
    #: the line's VAT category (:attr:`LineItem.vat_category`)
    category: str | None = None


#: a tax group's key: (VAT category, :func:`group_rate`); for documents without categories the
#: category follows from the rate, so the groups are the rates
GroupKey = tuple[str | None, Decimal | None]


def group_rate(category: str | None, rate: Decimal | None) -> Decimal | None:
    """The rate a line or the shipping is grouped and taxed at: no rate or 0 % as the XML
    writes it (:func:`.model.xml_rate`: 0 for a zero-rate category, none for ``O``), so an
    exempt line given no rate and an exempt shipping given 0 % are one group, one VAT
    breakdown (EN 16931 allows exactly one per such category, BR-E-01...); any other rate as
    given (an ``O`` line given 7 % is taxed at it, which BR-O-09 refuses)."""
    return rate if rate else xml_rate(category, rate)


@record
class TaxGroup:
    """Everything charged at one VAT category and rate (EN 16931 BG-23; ``rate`` None: not
    taxed)."""

    rate: Decimal | None
    #: sum of the line amounts at this rate
    lines: Decimal
    #: this rate's share of the invoice-level discount
    discount: Decimal
    #: shipping charged at this rate
    shipping: Decimal
    #: lines - discount + shipping
    base: Decimal
    tax: Decimal
    category: str | None = None


@record
class Totals:
    currency: str
    lines: tuple[LineTotal, ...]
    #: sum of line amounts
    subtotal: Decimal
    #: the sum of line discounts (already inside subtotal; shown for information)
    line_discounts: Decimal
    #: invoice-level discount (a positive number that is subtracted)
    discount: Decimal
    shipping: Decimal
    groups: tuple[TaxGroup, ...]
    tax: Decimal
    total: Decimal
    amount_paid: Decimal
    balance_due: Decimal

    @property
    def tax_breakdown(self) -> tuple[TaxGroup, ...]:
        """The groups that are taxed, in rate order (the 'tax per rate' lines)."""
        return tuple(g for g in self.groups if g.rate is not None)


def line_total(item: LineItem, currency: str) -> LineTotal:
    raw = item.quantity * item.unit_price
    gross = round_money(raw, currency)
    if item.discount is None:
        amount = gross  # round(raw - 0): the same digits and exponent, not rounded twice
    else:
        if item.discount.kind == "percent":
            raw_discount = raw * item.discount.value / HUNDRED
        else:
            # an amount takes the sign of the line (the workbook's SIGN()): it brings a credit
            # line's (negative) amount towards zero as a percentage does, never makes the
            # credit bigger
            value = item.discount.value
            raw_discount = value if raw > 0 else -value if raw < 0 else Decimal(0)
        amount = round_money(raw - raw_discount, currency)
    return assemble(  # LineTotal(...) without its five object.__setattr__ calls
        LineTotal,
        {
            "gross": gross,
            # what the discount takes off the rounded gross, so gross - discount = amount
            # exactly (EN 16931 BT-136: the XML, the PDF and the workbook show the same figure)
            "discount": gross - amount,
            "amount": amount,
            "tax_rate": item.tax_rate,
            "category": item.vat_category,
        },
    )


def _group_order(key: GroupKey) -> tuple[int, Decimal, str]:
    # untaxed first, then ascending rates, then categories; the order also decides who gets
    # a rounding remainder
    category, rate = key
    return (0, Decimal(0), category or "") if rate is None else (1, rate, category or "")


def compute_totals(inv: Invoice) -> Totals:
    with localcontext() as ctx:
        ctx.prec = 60  # exact for any amount validation lets through (and far beyond)
        return _compute_totals(inv)


def _compute_totals(inv: Invoice) -> Totals:
    cur = inv.currency
    lines = tuple(line_total(it, cur) for it in inv.items)
    by_rate: dict[GroupKey, Decimal] = {}
    for lt in lines:
        key = (lt.category, group_rate(lt.category, lt.tax_rate))
        by_rate[key] = by_rate.get(key, Decimal(0)) + lt.amount
    shipping = round_money(inv.shipping, cur)
    ship_category = inv.shipping_vat_category
    shipping_key = (ship_category, group_rate(ship_category, inv.shipping_tax_rate))
    if shipping and shipping_key not in by_rate:
        by_rate[shipping_key] = Decimal(0)
    rates = sorted(by_rate, key=_group_order)
    subtotal = sum((lt.amount for lt in lines), round_money(Decimal(0), cur))

    shares: dict[GroupKey, Decimal] = dict.fromkeys(rates, round_money(Decimal(0), cur))
    d = inv.discount
    if d is not None and d.kind == "percent":
        for r in rates:
            shares[r] = round_money(by_rate[r] * d.value / HUNDRED, cur)
    elif d is not None and subtotal:
        amount = round_money(d.value, cur)
        allotted = Decimal(0)
        for r in rates[:-1]:
            shares[r] = round_money(amount * by_rate[r] / subtotal, cur)
            allotted += shares[r]
        shares[rates[-1]] = amount - allotted

    groups = []
    for key in rates:
        category, rate = key
        ship = shipping if key == shipping_key else round_money(Decimal(0), cur)
        base = by_rate[key] - shares[key] + ship
        tax = round_money(Decimal(0) if rate is None else base * rate / HUNDRED, cur)
        groups.append(
            TaxGroup(
                rate=rate,
                lines=by_rate[key],
                discount=shares[key],
                shipping=ship,
                base=base,
                tax=tax,
                category=category,
            )
        )
    zero = round_money(Decimal(0), cur)
    discount = sum(shares.values(), zero)
    tax = sum((g.tax for g in groups), zero)
    total = subtotal - discount + shipping + tax
    paid = round_money(inv.amount_paid, cur)
    return Totals(
        currency=cur,
        lines=lines,
        subtotal=subtotal,
        line_discounts=sum((lt.discount for lt in lines), round_money(Decimal(0), cur)),
        discount=discount,
        shipping=shipping,
        groups=tuple(groups),
        tax=tax,
        total=total,
        amount_paid=paid,
        balance_due=total - paid,
    )
