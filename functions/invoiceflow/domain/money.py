"""Money: currencies, minor units and the one rounding policy.

The rounding policy, in full (it lives in :func:`round_money` and nowhere else):

* Every amount that is shown on an invoice is rounded **half-up** (ties away from zero, which
  is also what Excel's and LibreOffice's ``ROUND`` do) to the currency's minor unit: 0 decimals
  for JPY, 2 for EUR, USD and RSD, 3 for KWD and IQD, ISO 4217's (a copy of it,
  ``locale/currencies.txt``: see :func:`minor_digits`).
* A line amount is ``round(quantity x unit price - line discount)`` (an amount discount takes
  the sign of quantity x unit price, so it brings a credit line towards zero); the line
  discount shown is ``round(quantity x unit price) - line amount``, so the gross, the
  discount and the amount shown always add up (10 x 39.95 less 15 %: 399.50 - 59.92 =
  339.58).
* Tax is computed per rate on the summed taxable base of that rate (EN 16931, BT-116/BT-117):
  ``round(base x rate / 100)``, never per line.
* An invoice-level discount in percent is computed per tax rate on that rate's base; an amount
  discount is split across the rates in proportion to their bases, each share rounded, and the
  rounding remainder is given to the last rate group so the shares add up exactly.

Unit prices and quantities may carry more decimals than the currency (e.g. 0.125 per unit);
only the amounts derived from them are rounded.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

#: ISO 4217 codes that are not money one can invoice in.
_NOT_INVOICEABLE = frozenset({"XXX", "XTS"})


#: ISO 4217 codes and their minor-unit digits, one ``CODE DIGITS`` a line (``#`` starts a
#: comment): Babel's codes with ISO 4217's digits, written by ``scripts/locale_data.py``
#: (``currency_digits``), checked against both by the tests
CURRENCIES_FILE = "locale/currencies.txt"


@cache
def _currency_digits() -> dict[str, int]:
    """Read ``locale/currencies.txt`` (0.1 ms), not Babel: importing ``babel.numbers`` and
    loading its global data cost ~20 ms of upload's and intake's first request."""
    from importlib import resources

    text = resources.files("invoiceflow").joinpath(CURRENCIES_FILE).read_text(encoding="ascii")
    digits: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            code, minor = fields
            digits[code] = int(minor)
    return digits


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(_currency_digits()) - _NOT_INVOICEABLE


def babel_currency_digits() -> dict[str, int]:
    """Babel's (CLDR's) ISO 4217 codes and the decimals CLDR shows for each: the codes of
    ``locale/currencies.txt``; its digits are ISO 4217's where they differ
    (``scripts/locale_data.py``)."""
    from babel.numbers import get_currency_precision, list_currencies

    return {c: int(get_currency_precision(c)) for c in sorted(list_currencies()) if len(c) == 3}


def is_known_currency(code: str) -> bool:
    return code in known_currencies()


@cache
def minor_digits(currency: str) -> int:
    """Number of decimals of the currency's minor unit (JPY 0, EUR 2, KWD 3), as ISO 4217
    has it; a code the list does not have gets Babel's answer (its default, 2)."""
    known = _currency_digits().get(currency)
    if known is not None:
        return known
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(currency))


@cache
def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: 1, 0.01, 0.001..."""
    return Decimal(1).scaleb(-minor_digits(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """THE rounding function: half-up to the currency's minor unit."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
