"""Locale formatting shared by the PDF and XLSX renderers: money, dates, quantities, percents,
and the customs of the locale's territory (the name of the tax, the paper size).

Everything goes through Babel (CLDR data) with the invoice's locale (``invoice.babel_locale``)
and currency, so ``de-DE``/EUR prints ``1.234,50 €``, ``ja-JP``/JPY ``￥1,235`` (no decimals)
and KWD three decimals. Babel's output is returned untouched: it may contain no-break spaces
(U+00A0, U+202F) and, for right-to-left locales, bidi marks (U+200E/U+200F).

* :func:`money` never rounds and never drops digits: it prints the amount it is given with at
  least the currency's minor-unit decimals (``5`` EUR -> ``5,00 €``) and more if the value has
  more (a unit price of ``0.125`` EUR -> ``0,125 €``). Amounts on an invoice are rounded by
  :func:`invoiceflow.domain.money.round_money` *before* they get here
  (:func:`invoiceflow.domain.totals.compute_totals`), so what is printed is exactly what was
  computed. Babel's own rounding (half-even) is never applied.
* :func:`quantity` and :func:`percent` keep every significant decimal (``2.500`` -> ``2,5``,
  a tax rate of ``7.5`` -> ``7,5 %``).
* Labels stay in English; only numbers and dates are localised.

Locale objects and patterns are cached per locale; an unknown locale raises
:class:`invoiceflow.errors.RenderError` (the document cannot be rendered as asked).
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from invoiceflow.errors import RenderError

if TYPE_CHECKING:
    from babel import Locale

    from invoiceflow.domain.model import Invoice
    from invoiceflow.domain.totals import TaxGroup

__all__ = [
    "currency_symbol",
    "date",
    "locale_of",
    "money",
    "paper_size",
    "percent",
    "quantity",
    "tax_line_label",
    "tax_name",
    "tax_rate_label",
]

_HUNDRED = Decimal(100)


@lru_cache(maxsize=64)
def _locale(babel_locale: str) -> Locale:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(babel_locale)
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise RenderError(f"unknown locale {babel_locale!r}") from exc


def locale_of(invoice: Invoice) -> Locale:
    """The invoice's Babel :class:`~babel.Locale` (cached)."""
    return _locale(invoice.babel_locale)


@lru_cache(maxsize=64)
def _patterns(babel_locale: str) -> tuple[Any, Any, Any]:
    loc = _locale(babel_locale)
    return (loc.currency_formats["standard"], loc.decimal_formats[None], loc.percent_formats[None])


def _no_negative_zero(value: Decimal) -> Decimal:
    # Babel prints Decimal("-0.00") as "-0,00 €"
    return abs(value) if value == 0 else value


@lru_cache(maxsize=8192)
def _money(text: str, currency: str, babel_locale: str) -> str:
    # keyed on str(amount): Decimal("1.5") == Decimal("1.50") but they may print differently
    pattern = _patterns(babel_locale)[0]
    formatted: str = pattern.apply(
        _no_negative_zero(Decimal(text)),
        _locale(babel_locale),
        currency=currency,
        currency_digits=True,
        decimal_quantization=False,
    )
    return formatted


def money(amount: Decimal, invoice: Invoice, currency: str | None = None) -> str:
    """``amount`` in the invoice's currency (or ``currency``), formatted for its locale.

    Prints the value exactly: at least the currency's decimals, more if ``amount`` has more.
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(amount).__name__}")
    return _money(str(amount), currency or invoice.currency, invoice.babel_locale)


@lru_cache(maxsize=4096)
def _quantity(text: str, babel_locale: str) -> str:
    pattern = _patterns(babel_locale)[1]
    formatted: str = pattern.apply(
        _no_negative_zero(Decimal(text)), _locale(babel_locale), decimal_quantization=False
    )
    return formatted


def quantity(q: Decimal, invoice: Invoice) -> str:
    """A quantity with all its significant decimals (``Decimal("2.500")`` -> ``2,5`` in de)."""
    return _quantity(str(q), invoice.babel_locale)


@lru_cache(maxsize=1024)
def _percent(text: str, babel_locale: str) -> str:
    pattern = _patterns(babel_locale)[2]
    formatted: str = pattern.apply(
        _no_negative_zero(Decimal(text)) / _HUNDRED,
        _locale(babel_locale),
        decimal_quantization=False,
    )
    return formatted


def percent(rate: Decimal, invoice: Invoice) -> str:
    """A rate given in percent (``Decimal("19")``) as ``19 %`` (de) / ``19%`` (en)."""
    return _percent(str(rate), invoice.babel_locale)


@lru_cache(maxsize=1024)
def _date(d: _dt.date, babel_locale: str) -> str:
    from babel.dates import format_date

    return format_date(d, format="medium", locale=_locale(babel_locale))


def date(d: _dt.date, invoice: Invoice) -> str:
    """A date in the locale's medium form: ``05.03.2026`` (de), ``Mar 5, 2026`` (en-US)."""
    if isinstance(d, _dt.datetime):
        d = d.date()
    return _date(d, invoice.babel_locale)


@lru_cache(maxsize=256)
def _symbol(currency: str, babel_locale: str) -> str:
    from babel.numbers import get_currency_symbol

    return get_currency_symbol(currency, locale=_locale(babel_locale))


def currency_symbol(invoice: Invoice) -> str:
    """The currency's symbol in the invoice's locale (``€``, ``$``, ``KWD``...)."""
    return _symbol(invoice.currency, invoice.babel_locale)


#: the customary name of the tax by the locale's territory; anything else says "VAT"
_TAX_NAMES = {
    "US": "Sales tax",
    "CA": "Sales tax",
    "AU": "GST",
    "NZ": "GST",
    "SG": "GST",
    "IN": "GST",
    "MY": "SST",
    "JP": "Consumption tax",
}


def tax_name(invoice: Invoice) -> str:
    """``VAT`` unless the locale's territory customarily calls the tax something else."""
    return _TAX_NAMES.get(locale_of(invoice).territory or "", "VAT")


#: the territories that print on US Letter (CLDR supplemental data, paperSizeData); the
#: rest of the world prints on A4
_LETTER_TERRITORIES = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)


def paper_size(invoice: Invoice) -> Literal["letter", "a4"]:
    """The paper customary in the locale's territory: ``letter`` or ``a4``."""
    return "letter" if locale_of(invoice).territory in _LETTER_TERRITORIES else "a4"


def tax_line_label(group: TaxGroup, invoice: Invoice) -> str:
    """The label of one 'tax per rate' line: ``VAT 19 % on 1.234,00 €``,
    ``VAT 0 % (reverse charge) on 5.000,00 €``, ``Not subject to VAT on 300,00 €``."""
    return f"{tax_rate_label(group, invoice)} on {money(group.base, invoice)}"


def tax_rate_label(group: TaxGroup, invoice: Invoice) -> str:
    """A tax group's name: ``VAT 19 %``, or with its category when that is not the standard
    rate: ``VAT 0 % (reverse charge)``. The rate is the one the e-invoice states for the group
    (:func:`invoiceflow.domain.einvoice.xml_rate`): 0 % for a zero-rate category (Z, E, AE, K,
    G) given without a rate, none for ``O``, which reads ``Not subject to VAT``. A group with
    neither category nor rate (untaxed lines of an older document) reads ``VAT 0 %``."""
    from invoiceflow.domain.einvoice import NO_RATE_CATEGORIES, xml_rate

    name = tax_name(invoice)
    if group.category in NO_RATE_CATEGORIES:
        return f"Not subject to {name if name.isupper() else name.lower()}"
    rate = xml_rate(group.category, group.rate)
    if rate is None and group.category is None:
        rate = Decimal(0)
    kind = _CATEGORY_NOTES.get(group.category or "")
    label = name if rate is None else f"{name} {percent(rate, invoice)}"
    return label + (f" ({kind})" if kind else "")


#: how a tax line names a VAT category other than the standard rate (EN 16931 BT-118); a
#: zero-rated group (Z, also what a 0 % rate without a category means) is just "VAT 0 %"
_CATEGORY_NOTES = {
    "E": "exempt",
    "AE": "reverse charge",
    "K": "intra-EU supply",
    "G": "export",
    "O": "not subject to VAT",
    "L": "IGIC",
    "M": "IPSI",
}
