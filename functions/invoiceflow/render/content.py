"""What both renderers print about the document, the parties, the lines and the payment,
computed once for both.

The title of the document (:func:`document_title`, :func:`document_name`); a party as its
title (:func:`party_title`: the company, else the person's name) above its details
(:func:`party_details`); the document references beside the number and dates
(:func:`reference_fields`); a line's unit (:func:`unit_label`) and rate (:func:`tax_rate_text`);
the groups that get a tax line (:func:`tax_groups`) and the VAT exemption reasons below the
totals (:func:`tax_exemption_lines`); the payment details as labelled fields, a direct debit's
as one (:func:`payment_fields`). The renderers differ only in layout: the PDF sets the title in a
bold paragraph and the details below it, and puts the payment fields into a two-column
panel; the workbook gives each line a row (the title bold) and writes each field as
``Label: value``.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from invoiceflow.domain.einvoice import (
    DIRECT_DEBIT_CODES,
    exemption,
    payment_means_code,
    xml_rate,
)
from invoiceflow.domain.model import Invoice, LineItem, Party, PaymentDetails, PostalAddress
from invoiceflow.domain.totals import TaxGroup, Totals
from invoiceflow.domain.units import unit_name
from invoiceflow.render import localize

__all__ = [
    "balance_label",
    "country_name",
    "document_name",
    "document_title",
    "is_direct_debit",
    "party_details",
    "party_title",
    "payment_fields",
    "reference_fields",
    "tax_exemption_lines",
    "tax_groups",
    "tax_rate_text",
    "unit_label",
]

#: the printed name of each document type (the PDF's title in capitals)
_DOCUMENT_NAMES = {
    "invoice": "Invoice",
    "credit_note": "Credit note",
    "corrected": "Corrected invoice",
}
#: country codes CLDR does not name
_COUNTRY_NAMES = {"XI": "Northern Ireland"}


def document_title(invoice: Invoice) -> str:
    """The PDF's title: INVOICE, CREDIT NOTE or CORRECTED INVOICE."""
    return document_name(invoice).upper()


def document_name(invoice: Invoice) -> str:
    """The document's name in running text (``Invoice INV-1``, ``Credit note CN-1``)."""
    return _DOCUMENT_NAMES[invoice.document_type]


def balance_label(invoice: Invoice) -> str:
    """The label of the last figure: what the reader owes, or on a credit note what is
    credited to them."""
    return "Amount credited" if invoice.document_type == "credit_note" else "Balance due"


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """The English name of an ISO 3166-1 country code (the code when none is known)."""
    from babel import Locale

    name = Locale("en").territories.get(code)
    return name if isinstance(name, str) else _COUNTRY_NAMES.get(code, code)


def party_title(party: Party) -> str:
    """The party's first line: its company, else its name."""
    return party.company or party.name


def postal_lines(address: PostalAddress) -> list[str]:
    """A structured address as printed: the street lines, ``postal_code city``, the
    subdivision (when given) and the country's English name."""
    lines = [line for line in address.lines if line]
    town = " ".join(part for part in (address.postal_code, address.city) if part)
    if town:
        lines.append(town)
    if address.subdivision:
        lines.append(address.subdivision)
    lines.append(country_name(address.country))
    return lines


def party_details(party: Party) -> list[str]:
    """The lines under :func:`party_title`: the person's name (when a company is the title),
    the address (free lines, or the structured address by :func:`postal_lines`), email,
    phone, VAT id, tax id and legal registration id; empty fields are left out."""
    lines = []
    if party.company and party.name and party.name != party.company:
        lines.append(party.name)
    if party.postal is not None:
        lines += postal_lines(party.postal)
    else:
        lines += [line for line in party.address if line]
    if party.email:
        lines.append(party.email)
    if party.phone:
        lines.append(party.phone)
    if party.vat_id:
        lines.append(f"VAT ID: {party.vat_id}")
    if party.tax_id:
        lines.append(f"Tax ID: {party.tax_id}")
    if party.legal_id is not None:
        # the registration (SIREN, Handelsregister...) French and German invoices must show
        lines.append(f"Registration: {party.legal_id.id}")
    return lines


def unit_label(item: LineItem) -> str | None:
    """A line's printed unit: its ``unit`` text as given, else the readable name of its
    ``unit_code`` (``HUR`` -> ``hour``), else None."""
    if item.unit:
        return item.unit
    if item.unit_code:
        return unit_name(item.unit_code)
    return None


def _period_text(start: date | None, end: date | None, invoice: Invoice) -> str:
    if start is not None and end is not None:
        return f"{localize.date(start, invoice)} \u2013 {localize.date(end, invoice)}"
    if start is not None:
        return f"from {localize.date(start, invoice)}"
    assert end is not None
    return f"until {localize.date(end, invoice)}"


def reference_fields(invoice: Invoice) -> list[tuple[str, str]]:
    """The document references printed with the number and dates in the header, ``(label,
    value)`` in order: buyer reference, purchase order, contract, delivery date, invoicing
    period and each preceding invoice (``RE-1 of <date>``); absent ones are left out."""
    fields: list[tuple[str, str]] = []
    for label, value in (
        ("Buyer reference", invoice.buyer_reference),
        ("Purchase order", invoice.purchase_order),
        ("Contract", invoice.contract),
    ):
        if value:
            fields.append((label, value))
    if invoice.delivery_date is not None:
        fields.append(("Delivery date", localize.date(invoice.delivery_date, invoice)))
    period = invoice.invoicing_period
    if period is not None and (period.start is not None or period.end is not None):
        fields.append(("Invoicing period", _period_text(period.start, period.end, invoice)))
    for ref in invoice.preceding_invoices:
        value = ref.number
        if ref.issue_date is not None:
            value += f" of {localize.date(ref.issue_date, invoice)}"
        fields.append(("Preceding invoice", value))
    return fields


def tax_groups(totals: Totals) -> list[TaxGroup]:
    """The tax groups that get a tax line under the subtotal: every group with a VAT category
    or a rate, as the e-invoice's VAT breakdown (BG-23) has them, so a reverse-charge or
    exempt base given without a rate is on paper too (labelled by
    :func:`.localize.tax_line_label`). An older document's untaxed lines (neither category nor
    rate) get none, as before."""
    return [g for g in totals.groups if g.category is not None or g.rate is not None]


def tax_rate_text(item: LineItem, invoice: Invoice) -> str | None:
    """A line's rate in the items table: the rate the e-invoice states for it
    (:func:`~invoiceflow.domain.einvoice.xml_rate`: ``0 %`` for a reverse-charge or exempt line
    given without a rate), None for none (an untaxed line, category ``O``)."""
    rate = xml_rate(item.vat_category, item.tax_rate)
    return None if rate is None else localize.percent(rate, invoice)


def tax_exemption_lines(invoice: Invoice, totals: Totals) -> list[str]:
    """One line per VAT category of the totals that has an exemption reason, in the order of
    the tax groups: ``Reverse charge (VATEX-EU-AE)``, or the reason or the code alone."""
    lines: list[str] = []
    seen: set[str] = set()
    for group in totals.groups:
        if group.category is None or group.category in seen:
            continue
        seen.add(group.category)
        given = exemption(invoice, group.category)
        if given is None or not (given.reason or given.code):
            continue
        if given.reason and given.code:
            lines.append(f"{given.reason} ({given.code})")
        else:
            lines.append(given.reason or given.code or "")
    return lines


def is_direct_debit(invoice: Invoice) -> bool:
    """Whether the invoice is paid by direct debit (payment means 49 or 59): its IBAN is then
    the buyer's account that the seller debits (BT-91), not an account to pay into."""
    return payment_means_code(invoice) in DIRECT_DEBIT_CODES


def payment_fields(
    payment: PaymentDetails, invoice: Invoice | None = None, totals: Totals | None = None
) -> list[tuple[str, str]]:
    """The payment details as printed, ``(label, value)`` in order; empty fields are left out.

    Given the ``invoice`` (and its ``totals``), a direct debit (:func:`is_direct_debit`) is
    printed as one: ``Payment: SEPA direct debit`` (59) or ``Direct debit`` (49) first, the
    IBAN (or, without one, the account number) as the ``Debited account``, and, on an
    invoice with a balance due, a ``Collection`` line saying that the amount will be
    collected from it (never a request to pay into it)."""
    debit = invoice is not None and is_direct_debit(invoice)
    fields = [
        ("Bank", payment.bank_name),
        ("Account holder", payment.account_holder),
        ("Account number", payment.account_number),
        ("IBAN", payment.iban),
        ("BIC", payment.bic),
        ("Reference", payment.reference),
    ]
    if debit:
        assert invoice is not None
        credit_note = invoice.document_type == "credit_note"
        account = "Direct debit account" if credit_note else "Debited account"
        means = "SEPA direct debit" if payment_means_code(invoice) == "59" else "Direct debit"
        fields = [
            ("Payment", means),
            ("Bank", payment.bank_name),
            ("Account holder", payment.account_holder),
            ("Account number" if payment.iban else account, payment.account_number),
            (account, payment.iban),
            ("BIC", payment.bic),
            ("Reference", payment.reference),
        ]
        due = totals.balance_due if totals is not None else None
        if not credit_note and due is not None and due > 0:
            fields.append(
                (
                    "Collection",
                    f"The balance due of {localize.money(due, invoice)} will be collected "
                    "from this account by direct debit.",
                )
            )
    return [(label, value) for label, value in fields if value]
