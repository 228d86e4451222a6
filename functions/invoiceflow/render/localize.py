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
  computed. Babel's own rounding (half-even) is never applied. The decimals are ISO 4217's
  (:func:`invoiceflow.domain.money.minor_digits`, those the amounts are rounded to), also where
  CLDR shows fewer (``RSD 25,00``, not ``25``).
* :func:`quantity` and :func:`percent` keep every significant decimal (``2.500`` -> ``2,5``,
  a tax rate of ``7.5`` -> ``7,5 %``).
* :func:`money` applies CLDR's currency spacing: a currency printed as letters (an ISO code
  such as ``KWD``, ``CHF``) is kept apart from the digits by a no-break space
  (``KWD 1,234.500``), a symbol (``$``, ``€``) is not.
* :func:`date` prints the locale's CLDR *short* date pattern with the year in full
  (:func:`date_pattern`: ``dd.MM.y`` de, ``M/d/y`` en-US, ``y/MM/dd`` ja): numbers only, so
  the workbook's date cells show the very same text (``render.xlsx`` turns the pattern into
  a number format).

Labels are not here: :mod:`invoiceflow.render.i18n` (the catalogues, the tax terms) and
:mod:`invoiceflow.render.view` (everything a reader sees).

Locale objects and patterns are cached per locale; an unknown locale raises
:class:`invoiceflow.errors.RenderError` (the document cannot be rendered as asked).
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from invoiceflow.domain.money import minor_digits
from invoiceflow.errors import RenderError
from invoiceflow.render import babeldata

babeldata.install()  # before this process's first use of Babel: its data from the entries

if TYPE_CHECKING:
    from babel import Locale

    from invoiceflow.domain.model import Invoice

__all__ = [
    "currency_spacing",
    "currency_symbol",
    "date",
    "date_pattern",
    "locale_of",
    "money",
    "paper_size",
    "percent",
    "quantity",
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


@lru_cache(maxsize=256)
def _currency_pattern(babel_locale: str, digits: int) -> Any:
    """The locale's currency pattern with the currency's ISO 4217 digits (those the amounts
    are rounded to, :func:`~invoiceflow.domain.money.minor_digits`), not CLDR's: CLDR shows
    RSD, IRR, IQD... without decimals."""
    pattern = copy.copy(_patterns(babel_locale)[0])
    pattern.frac_prec = (digits, digits)
    return pattern


def _no_negative_zero(value: Decimal) -> Decimal:
    # Babel prints Decimal("-0.00") as "-0,00 €"
    return abs(value) if value == 0 else value


def _symbolic(char: str) -> bool:
    """Whether a character is a symbol or a space (CLDR's currencySpacing ``[:S:]``/``[:Z:]``)."""
    return unicodedata.category(char)[0] in "SZ"


def currency_spacing(text: str, symbol: str) -> str:
    """CLDR's currency spacing (the default ``currencySpacing`` of every locale): where the
    currency's sign meets a digit and its own character there is not a symbol (``KWD``,
    ``CHF``, but not ``$`` or ``€``), a no-break space goes between them."""
    at = text.find(symbol) if symbol else -1
    if at < 0:
        return text
    end = at + len(symbol)
    if end < len(text) and text[end].isdigit() and not _symbolic(symbol[-1]):
        return f"{text[:end]}\u00a0{text[end:]}"
    if at > 0 and text[at - 1].isdigit() and not _symbolic(symbol[0]):
        return f"{text[:at]}\u00a0{text[at:]}"
    return text


@lru_cache(maxsize=8192)
def _money(text: str, currency: str, babel_locale: str) -> str:
    # keyed on str(amount): Decimal("1.5") == Decimal("1.50") but they may print differently
    pattern = _currency_pattern(babel_locale, minor_digits(currency))
    formatted: str = pattern.apply(
        _no_negative_zero(Decimal(text)),
        _locale(babel_locale),
        currency=currency,
        currency_digits=False,
        decimal_quantization=False,
    )
    return currency_spacing(formatted, _symbol(currency, babel_locale))


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


_YEAR = re.compile(r"y+")


@lru_cache(maxsize=64)
def _date_pattern(babel_locale: str) -> str:
    return _YEAR.sub("y", _locale(babel_locale).date_formats["short"].pattern)


def date_pattern(invoice: Invoice) -> str:
    """The CLDR (LDML) pattern of the invoice's dates: the locale's short date pattern with
    the year in full (``dd.MM.y`` de-DE, ``M/d/y`` en-US, ``dd/MM/y`` en-GB)."""
    return _date_pattern(invoice.babel_locale)


@lru_cache(maxsize=1024)
def _date(d: _dt.date, babel_locale: str) -> str:
    from babel.dates import format_date

    return format_date(d, format=_date_pattern(babel_locale), locale=_locale(babel_locale))


def date(d: _dt.date, invoice: Invoice) -> str:
    """A date by :func:`date_pattern`: ``05.03.2026`` (de-DE), ``3/5/2026`` (en-US)."""
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


#: the territories that print on US Letter (CLDR supplemental data, paperSizeData); the
#: rest of the world prints on A4
_LETTER_TERRITORIES = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)


def paper_size(invoice: Invoice) -> Literal["letter", "a4"]:
    """The paper customary in the locale's territory: ``letter`` or ``a4``."""
    return "letter" if locale_of(invoice).territory in _LETTER_TERRITORIES else "a4"
