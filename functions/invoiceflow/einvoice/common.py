"""What the CII and UBL writers format the same way: amounts, quantities, rates, dates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from invoiceflow.domain.money import minor_digits


def amount(value: Decimal, currency: str) -> str:
    """An amount with exactly the currency's minor digits (EUR 12.50, JPY 1250); a negative
    zero (a rounded -0.001) is written as zero."""
    return f"{value if value else abs(value):.{minor_digits(currency)}f}"


def decimal_text(value: Decimal) -> str:
    """A quantity, price or rate as plain decimal text without exponent or trailing zeros
    beyond what is needed (19 -> "19", 0.125 -> "0.125", 12.50 -> "12.5")."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def iso_date(d: date) -> str:
    """UBL's date form: 2026-11-30."""
    return d.isoformat()


def cii_date(d: date) -> str:
    """CII's date form (format 102): 20261130."""
    return d.strftime("%Y%m%d")
