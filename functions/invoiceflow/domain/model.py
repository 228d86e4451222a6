"""The canonical invoice document (schema version 1) as immutable values. No I/O here.

The JSON form is specified by ``events/schemas/invoice.v1.schema.json``; :mod:`.parse` turns
any accepted JSON into these values and :func:`to_json` turns them back into canonical JSON.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

SCHEMA_VERSION = "1"
#: the locale of a document that names none (invoice.v1.schema.json states the same default)
DEFAULT_LOCALE = "en-US"


@dataclass(frozen=True)
class Logo:
    media_type: Literal["image/png", "image/jpeg"]
    data: bytes = field(repr=False)

    def data_uri(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class Party:
    name: str
    company: str | None = None
    address: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None
    tax_id: str | None = None


@dataclass(frozen=True)
class Discount:
    """Either a percentage (0-100) or a fixed amount in the invoice currency."""

    kind: Literal["percent", "amount"]
    value: Decimal


@dataclass(frozen=True)
class LineItem:
    description: str
    quantity: Decimal
    unit_price: Decimal
    unit: str | None = None
    sku: str | None = None
    #: percent, e.g. Decimal("19"); None means the line is not taxed
    tax_rate: Decimal | None = None
    discount: Discount | None = None
    #: an explicit credit line may carry a negative quantity or unit price
    credit: bool = False


@dataclass(frozen=True)
class PaymentDetails:
    bank_name: str | None = None
    account_holder: str | None = None
    account_number: str | None = None
    iban: str | None = None
    bic: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Invoice:
    number: str
    issue_date: date
    currency: str
    seller: Party
    bill_to: Party
    items: tuple[LineItem, ...]
    locale: str = DEFAULT_LOCALE
    due_date: date | None = None
    payment_terms: str | None = None
    logo: Logo | None = None
    ship_to: Party | None = None
    discount: Discount | None = None
    shipping: Decimal = Decimal(0)
    shipping_tax_rate: Decimal | None = None
    amount_paid: Decimal = Decimal(0)
    notes: str | None = None
    terms: str | None = None
    payment: PaymentDetails | None = None

    @property
    def babel_locale(self) -> str:
        """The locale in Babel's form (``de_DE``)."""
        return self.locale.replace("-", "_")


def _num(value: Decimal) -> str:
    return format(value, "f")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, (), [])}


def _party(p: Party, logo: Logo | None = None) -> dict[str, Any]:
    out = _drop_none(
        {
            "name": p.name,
            "company": p.company,
            "address": list(p.address),
            "email": p.email,
            "phone": p.phone,
            "tax_id": p.tax_id,
        }
    )
    if logo is not None:
        out["logo"] = logo.data_uri()
    return out


def _discount(d: Discount | None) -> dict[str, str] | None:
    return None if d is None else {d.kind: _num(d.value)}


def to_json(inv: Invoice) -> dict[str, Any]:
    """The canonical JSON document (numbers as strings, so no precision is ever lost)."""
    items = []
    for it in inv.items:
        row = _drop_none(
            {
                "description": it.description,
                "quantity": _num(it.quantity),
                "unit": it.unit,
                "sku": it.sku,
                "unit_price": _num(it.unit_price),
                "tax_rate": None if it.tax_rate is None else _num(it.tax_rate),
                "discount": _discount(it.discount),
            }
        )
        if it.credit:
            row["credit"] = True
        items.append(row)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "number": inv.number,
        "issue_date": inv.issue_date.isoformat(),
        "due_date": inv.due_date.isoformat() if inv.due_date else None,
        "payment_terms": inv.payment_terms,
        "currency": inv.currency,
        "locale": inv.locale,
        "seller": _party(inv.seller, inv.logo),
        "bill_to": _party(inv.bill_to),
        "ship_to": _party(inv.ship_to) if inv.ship_to else None,
        "items": items,
        "discount": _discount(inv.discount),
        "shipping": _num(inv.shipping) if inv.shipping else None,
        "shipping_tax_rate": (
            None if inv.shipping_tax_rate is None else _num(inv.shipping_tax_rate)
        ),
        "amount_paid": _num(inv.amount_paid) if inv.amount_paid else None,
        "notes": inv.notes,
        "terms": inv.terms,
        "payment": _drop_none(vars(inv.payment)) if inv.payment else None,
    }
    return _drop_none(doc)
