"""The canonical invoice document (schema version 1) as immutable values. No I/O here.

The JSON form is specified by ``events/schemas/invoice.v1.schema.json``; :mod:`.parse` turns
any accepted JSON into these values and :func:`to_json` turns them back into canonical JSON.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import field
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, Literal, TypeVar

from invoiceflow.records import record

_T = TypeVar("_T")


def assemble(cls: type[_T], values: Mapping[str, Any]) -> _T:
    """``cls(**values)`` for a frozen dataclass ``cls`` without ``__post_init__`` or default
    factories, given every field it requires and no other name: the same instance (equal,
    same hash, repr and ``vars``), with ``values`` set in one ``__dict__`` update instead of
    the ``object.__setattr__`` call per field of a frozen dataclass's ``__init__``, most of
    the cost of building the lines of a long invoice. tests/domain/test_parse_shortcuts.py
    holds the classes it builds and their callers to all of that."""
    kind: type = cls
    obj: _T = object.__new__(cls)
    state = obj.__dict__
    state.update(_field_defaults(kind))  # every field in the class's order, as __init__ sets
    state.update(values)
    return obj


@cache
def _field_defaults(cls: type) -> dict[str, Any]:
    """The fields of dataclass ``cls`` in their order with their defaults (MISSING: none)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


SCHEMA_VERSION = "1"
#: the locale of a document that names none (invoice.v1.schema.json states the same default)
DEFAULT_LOCALE = "en-US"


@record
class Logo:
    media_type: Literal["image/png", "image/jpeg"]
    data: bytes = field(repr=False)

    def data_uri(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


#: the document types (EN 16931 BT-3, UNTDID 1001 codes in :data:`DOCUMENT_TYPE_CODES`)
DocumentType = Literal["invoice", "credit_note", "corrected"]
DOCUMENT_TYPE_CODES: dict[str, str] = {"invoice": "380", "credit_note": "381", "corrected": "384"}

#: VAT category codes (UNTDID 5305, the subset EN 16931 allows), with their meaning
VAT_CATEGORIES: dict[str, str] = {
    "S": "standard rate",
    "Z": "zero rated goods",
    "E": "exempt from tax",
    "AE": "reverse charge",
    "K": "intra-community supply (VAT exempt for EEA intra-community supply)",
    "G": "free export item, tax not charged",
    "O": "services outside scope of tax",
    "L": "Canary Islands general indirect tax (IGIC)",
    "M": "tax for production, services and importation in Ceuta and Melilla (IPSI)",
}


@record
class PostalAddress:
    """A structured postal address (EN 16931 BG-5 seller, BG-8 buyer, BG-15 deliver to)."""

    #: ISO 3166-1 alpha-2 country code (BT-40 / BT-55 / BT-80)
    country: str
    #: street lines, at most 3 (BT-35, BT-36, BT-162 / BT-50, BT-51, BT-163)
    lines: tuple[str, ...] = ()
    city: str | None = None  # BT-37 / BT-52 / BT-77
    postal_code: str | None = None  # BT-38 / BT-53 / BT-78
    subdivision: str | None = None  # BT-39 / BT-54 / BT-79


@record
class Identifier:
    """An identifier with an optional scheme (ISO 6523 ICD, or the EAS code list for an
    electronic address: ``EM`` email, ``0088`` GLN, ``9930`` German VAT...)."""

    id: str
    scheme: str | None = None


@record
class Contact:
    """A contact point (BG-6 seller, BG-9 buyer)."""

    name: str | None = None  # BT-41 / BT-56
    phone: str | None = None  # BT-42 / BT-57
    email: str | None = None  # BT-43 / BT-58


@record
class Party:
    name: str
    company: str | None = None
    #: free address lines as printed (the legacy form); empty when ``postal`` is given
    address: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None
    #: printed as given; in an e-invoice the seller's tax registration id (BT-32)
    tax_id: str | None = None
    #: the structured address (JSON: ``address`` as an object)
    postal: PostalAddress | None = None
    vat_id: str | None = None  # BT-31 seller / BT-48 buyer
    legal_id: Identifier | None = None  # BT-30 seller / BT-47 buyer
    electronic_address: Identifier | None = None  # BT-34 seller / BT-49 buyer
    contact: Contact | None = None


@record
class Period:
    """A date range (BG-14 invoicing period, BG-26 line period); either end may be open."""

    start: date | None = None
    end: date | None = None


@record
class DocumentReference:
    """An earlier invoice this document refers to (BG-3: BT-25 number, BT-26 date)."""

    number: str
    issue_date: date | None = None


@record
class TaxExemption:
    """Why a VAT category charges no tax (BT-120 reason text, BT-121 VATEX code)."""

    category: str
    reason: str | None = None
    code: str | None = None


#: the page layouts of the PDF (and the look of the workbook): classic (the original),
#: modern (light, large totals), compact (dense, for long invoices)
LAYOUTS = ("classic", "modern", "compact")
#: the font families shipped with the renderer (branding ``font``); scripts a family lacks
#: (CJK, Arabic, Thai...) fall back to the shipped font that has them
FONT_FAMILIES = ("dejavu-sans", "liberation-sans", "liberation-serif")


@record
class Branding:
    """How the document looks (absent fields: the renderer's defaults). The account's branding
    settings fill what an upload leaves out when it is accepted, so a stored document renders
    the same however the settings change later."""

    layout: str | None = None  # one of LAYOUTS
    accent_color: str | None = None  # "#RRGGBB": header row, titles
    font: str | None = None  # one of FONT_FAMILIES
    footer: str | None = None  # a line printed at the foot of every page


@record
class Discount:
    """Either a percentage (0-100) or a fixed amount in the invoice currency."""

    kind: Literal["percent", "amount"]
    value: Decimal


@record
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
    #: UN/ECE Recommendation 20 unit code (BT-130), e.g. C62, HUR; see :mod:`.units`
    unit_code: str | None = None
    #: the buyer's item id (BT-156); ``sku`` is the seller's (BT-155)
    buyer_item_id: str | None = None
    #: a standard item id, e.g. a GTIN with scheme 0160 (BT-157)
    standard_id: Identifier | None = None
    period: Period | None = None  # BG-26
    note: str | None = None  # BT-127
    #: VAT category code (BT-151); absent: derived from the rate (see :attr:`vat_category`)
    tax_category: str | None = None

    @property
    def vat_category(self) -> str | None:
        """The line's VAT category: the one given, else ``S`` for a positive rate and ``Z``
        for a zero rate; None when neither a category nor a rate is given."""
        return _category(self.tax_category, self.tax_rate)


@record
class PaymentDetails:
    bank_name: str | None = None
    account_holder: str | None = None
    account_number: str | None = None
    iban: str | None = None
    bic: str | None = None
    #: the remittance information (BT-83)
    reference: str | None = None
    #: UNTDID 4461 payment means code (BT-81): 58 SEPA credit transfer, 30 credit transfer,
    #: 59 SEPA direct debit, 48 bank card...; absent: see ``domain.einvoice``
    means_code: str | None = None


@record
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
    document_type: DocumentType = "invoice"
    #: the invoices a credit note or corrected invoice refers to (BG-3)
    preceding_invoices: tuple[DocumentReference, ...] = ()
    buyer_reference: str | None = None  # BT-10 (the German Leitweg-ID)
    purchase_order: str | None = None  # BT-13
    contract: str | None = None  # BT-12
    delivery_date: date | None = None  # BT-72
    invoicing_period: Period | None = None  # BG-14: BT-73, BT-74
    #: VAT category of the shipping charge; absent: derived from shipping_tax_rate
    shipping_tax_category: str | None = None
    #: exemption reasons per VAT category (BT-120, BT-121), one per category at most
    tax_exemptions: tuple[TaxExemption, ...] = ()
    #: the language of the labels (BCP 47 language tag, e.g. ``de``, ``en``); absent: the
    #: locale's language. The locale still formats numbers, dates and the paper size.
    language: str | None = None
    branding: Branding | None = None

    @property
    def shipping_vat_category(self) -> str | None:
        return _category(self.shipping_tax_category, self.shipping_tax_rate)

    @property
    def babel_locale(self) -> str:
        """The locale in Babel's form (``de_DE``)."""
        return self.locale.replace("-", "_")


def _category(given: str | None, rate: Decimal | None) -> str | None:
    if given is not None:
        return given
    if rate is None:
        return None
    return "S" if rate > 0 else "Z"


#: categories whose rate is written as 0 (BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05)
ZERO_RATE_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G"})
#: categories that carry no rate at all (BR-O-05)
NO_RATE_CATEGORIES = frozenset({"O"})


def xml_rate(category: str | None, rate: Decimal | None) -> Decimal | None:
    """The VAT rate as written in the XML (BT-119/BT-152): 0 for the zero-rate categories
    when none is given, nothing for ``O``, else the rate."""
    if category in NO_RATE_CATEGORIES:
        return None
    if rate is None and category in ZERO_RATE_CATEGORIES:
        return Decimal(0)
    return rate


def _num(value: Decimal) -> str:
    return format(value, "f")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, (), [], {})}


def _party(p: Party, logo: Logo | None = None) -> dict[str, Any]:
    out = _drop_none(
        {
            "name": p.name,
            "company": p.company,
            "address": _postal(p.postal) if p.postal is not None else list(p.address),
            "email": p.email,
            "phone": p.phone,
            "tax_id": p.tax_id,
            "vat_id": p.vat_id,
            "legal_id": _identifier(p.legal_id),
            "electronic_address": _identifier(p.electronic_address),
            "contact": _drop_none(vars(p.contact)) if p.contact else None,
        }
    )
    if logo is not None:
        out["logo"] = logo.data_uri()
    return out


def _postal(a: PostalAddress) -> dict[str, Any]:
    return _drop_none(
        {
            "lines": list(a.lines),
            "city": a.city,
            "postal_code": a.postal_code,
            "subdivision": a.subdivision,
            "country": a.country,
        }
    )


def _identifier(i: Identifier | None) -> dict[str, str] | None:
    return None if i is None else _drop_none({"id": i.id, "scheme": i.scheme})


def _date(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _period(p: Period | None) -> dict[str, str] | None:
    if p is None:
        return None
    return _drop_none({"start": _date(p.start), "end": _date(p.end)}) or None


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
                "unit_code": it.unit_code,
                "buyer_item_id": it.buyer_item_id,
                "standard_id": _identifier(it.standard_id),
                "period": _period(it.period),
                "note": it.note,
                "tax_category": it.tax_category,
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
        "document_type": None if inv.document_type == "invoice" else inv.document_type,
        "preceding_invoices": [
            _drop_none({"number": ref.number, "issue_date": _date(ref.issue_date)})
            for ref in inv.preceding_invoices
        ],
        "buyer_reference": inv.buyer_reference,
        "purchase_order": inv.purchase_order,
        "contract": inv.contract,
        "delivery_date": _date(inv.delivery_date),
        "invoicing_period": _period(inv.invoicing_period),
        "shipping_tax_category": inv.shipping_tax_category,
        "tax_exemptions": {
            e.category: _drop_none({"reason": e.reason, "code": e.code}) for e in inv.tax_exemptions
        },
        "language": inv.language,
        "branding": _drop_none(vars(inv.branding)) if inv.branding else None,
    }
    return _drop_none(doc)
