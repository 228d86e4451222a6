"""The helpers of :mod:`invoiceflow.render.view`: what the document says about itself, the
parties, the lines, the taxes and the payment, in the document's language
(:mod:`invoiceflow.render.i18n`). The renderers and the emails take all of it from the view
(:func:`invoiceflow.render.view.build_view`); these functions are the view's parts, each
callable on its own (the tests and the e-invoice cross-checks call them).

The title of the document (:func:`document_title`, :func:`document_name`); a party as its
title (:func:`party_title`: the company, else the person's name) above its details
(:func:`party_details`); the document references beside the number and dates
(:func:`reference_fields`); a line's unit (:func:`unit_label`) and rate (:func:`tax_rate_text`);
the groups that get a tax line (:func:`tax_groups`), their labels (:func:`tax_line_label`) and
the VAT exemption reasons below the totals (:func:`tax_exemption_lines`); the payment details
as labelled fields, a direct debit's as one (:func:`payment_fields`). Functions that take an
optional invoice print English without one.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from invoiceflow.domain.einvoice import (
    DIRECT_DEBIT_CODES,
    NO_RATE_CATEGORIES,
    exemption,
    payment_means_code,
    xml_rate,
)
from invoiceflow.domain.model import Invoice, LineItem, Party, PaymentDetails, PostalAddress
from invoiceflow.domain.totals import TaxGroup, Totals
from invoiceflow.domain.units import unit_name
from invoiceflow.render import localize
from invoiceflow.render.i18n import (
    N_,
    labels_for,
    language,
    tax_is_generic,
    tax_name,
    upper,
    vat_id_label,
)

__all__ = [
    "balance_label",
    "country_name",
    "document_name",
    "document_title",
    "is_direct_debit",
    "number_label",
    "party_details",
    "party_title",
    "payment_fields",
    "reference_fields",
    "tax_exemption_lines",
    "tax_groups",
    "tax_line_label",
    "tax_rate_label",
    "tax_rate_text",
    "unit_label",
]

#: the name of each document type (the PDF's title in capitals)
_DOCUMENT_NAMES = {
    "invoice": N_("Invoice"),
    "credit_note": N_("Credit note"),
    "corrected": N_("Corrected invoice"),
}
#: the label of the document's number
_NUMBER_LABELS = {
    "invoice": N_("Invoice number"),
    "credit_note": N_("Credit note number"),
    "corrected": N_("Corrected invoice number"),
}
#: country codes CLDR does not name
_COUNTRY_NAMES = {"XI": "Northern Ireland"}


def document_name(invoice: Invoice) -> str:
    """The document's name in running text (``Invoice INV-1``, ``Rechnung``, ``Avoir``)."""
    return labels_for(invoice).gettext(_DOCUMENT_NAMES[invoice.document_type])


def document_title(invoice: Invoice) -> str:
    """The PDF's title: the document's name in capitals (INVOICE, GUTSCHRIFT, ΤΙΜΟΛΟΓΙΟ:
    Greek capitals without accents)."""
    return upper(document_name(invoice), language(invoice))


def number_label(invoice: Invoice) -> str:
    """The label of the document's number (``Invoice number``, ``Rechnungsnummer``)."""
    return labels_for(invoice).gettext(_NUMBER_LABELS[invoice.document_type])


def balance_label(invoice: Invoice) -> str:
    """The label of the last figure: what the reader owes, or on a credit note what is to be
    refunded to them."""
    t = labels_for(invoice)
    if invoice.document_type == "credit_note":
        return t.gettext("Amount to be refunded")
    return t.gettext("Balance due")


@lru_cache(maxsize=1024)
def country_name(code: str, lang: str = "en") -> str:
    """The name of an ISO 3166-1 country code in ``lang`` (the code when none is known)."""
    from babel import Locale

    name = Locale.parse(lang).territories.get(code)
    return name if isinstance(name, str) else _COUNTRY_NAMES.get(code, code)


def party_title(party: Party) -> str:
    """The party's first line: its company, else its name."""
    return party.company or party.name


def postal_lines(address: PostalAddress, lang: str = "en") -> list[str]:
    """A structured address as printed: the street lines, ``postal_code city``, the
    subdivision (when given) and the country's name in ``lang``."""
    lines = [line for line in address.lines if line]
    town = " ".join(part for part in (address.postal_code, address.city) if part)
    if town:
        lines.append(town)
    if address.subdivision:
        lines.append(address.subdivision)
    lines.append(country_name(address.country, lang))
    return lines


def party_details(party: Party, invoice: Invoice | None = None) -> list[str]:
    """The lines under :func:`party_title`: the person's name (when a company is the title),
    the address (free lines, or the structured address by :func:`postal_lines`), email,
    phone, VAT id (labelled as the country says it: :func:`.i18n.vat_id_label`), tax id and
    legal registration id; empty fields are left out."""
    t = labels_for(invoice)
    lines = []
    if party.company and party.name and party.name != party.company:
        lines.append(party.name)
    if party.postal is not None:
        lines += postal_lines(party.postal, t.language)
    else:
        lines += [line for line in party.address if line]
    if party.email:
        lines.append(party.email)
    if party.phone:
        lines.append(party.phone)
    if party.vat_id:
        lines.append(f"{vat_id_label(invoice)}: {party.vat_id}")
    if party.tax_id:
        tax_id = t.gettext("Tax ID")
        lines.append(f"{tax_id}: {party.tax_id}")
    if party.legal_id is not None:
        # the registration (SIREN, Handelsregister...) French and German invoices must show
        registration = t.gettext("Registration")
        lines.append(f"{registration}: {party.legal_id.id}")
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
    t = labels_for(invoice)
    if start is not None and end is not None:
        return f"{localize.date(start, invoice)} \u2013 {localize.date(end, invoice)}"
    if start is not None:
        return t.gettext("from %(date)s") % {"date": localize.date(start, invoice)}
    assert end is not None
    return t.gettext("until %(date)s") % {"date": localize.date(end, invoice)}


def reference_fields(invoice: Invoice) -> list[tuple[str, str]]:
    """The document references printed with the number and dates in the header, ``(label,
    value)`` in order: buyer reference, purchase order, contract, delivery date, invoicing
    period and each preceding invoice (``RE-1 of <date>``); absent ones are left out."""
    t = labels_for(invoice)
    fields: list[tuple[str, str]] = []
    for label, value in (
        (t.gettext("Buyer reference"), invoice.buyer_reference),
        (t.gettext("Purchase order"), invoice.purchase_order),
        (t.gettext("Contract"), invoice.contract),
    ):
        if value:
            fields.append((label, value))
    if invoice.delivery_date is not None:
        fields.append((t.gettext("Delivery date"), localize.date(invoice.delivery_date, invoice)))
    period = invoice.invoicing_period
    if period is not None and (period.start is not None or period.end is not None):
        fields.append(
            (t.gettext("Invoicing period"), _period_text(period.start, period.end, invoice))
        )
    for ref in invoice.preceding_invoices:
        value = ref.number
        if ref.issue_date is not None:
            value = t.gettext("%(number)s of %(date)s") % {
                "number": ref.number,
                "date": localize.date(ref.issue_date, invoice),
            }
        fields.append((t.gettext("Preceding invoice"), value))
    return fields


def tax_groups(totals: Totals) -> list[TaxGroup]:
    """The tax groups that get a tax line under the subtotal: every group with a VAT category
    or a rate, as the e-invoice's VAT breakdown (BG-23) has them, so a reverse-charge or
    exempt base given without a rate is on paper too (labelled by :func:`tax_line_label`). An
    older document's untaxed lines (neither category nor rate) get none, as before."""
    return [g for g in totals.groups if g.category is not None or g.rate is not None]


#: how a tax line names a VAT category other than the standard rate (EN 16931 BT-118); a
#: zero-rated group (Z, also what a 0 % rate without a category means) is just "VAT 0 %".
#: IGIC and IPSI are the names of the Canary Islands' and Ceuta and Melilla's taxes.
_CATEGORY_NOTES = {
    "E": N_("exempt"),
    "AE": N_("reverse charge"),
    "K": N_("intra-EU supply"),
    "G": N_("export"),
    "L": "IGIC",
    "M": "IPSI",
}


def tax_rate_label(group: TaxGroup, invoice: Invoice) -> str:
    """A tax group's name: ``VAT 19 %``, or with its category when that is not the standard
    rate: ``VAT 0 % (reverse charge)``. The rate is the one the e-invoice states for the group
    (:func:`invoiceflow.domain.einvoice.xml_rate`): 0 % for a zero-rate category (Z, E, AE, K,
    G) given without a rate, none for ``O``, which reads ``Not subject to VAT``. A group with
    neither category nor rate (untaxed lines of an older document) reads ``VAT 0 %``. The tax's
    name is the country's (:func:`.i18n.tax_name`)."""
    t = labels_for(invoice)
    name = tax_name(invoice)
    if group.category in NO_RATE_CATEGORIES:
        if tax_is_generic(invoice):  # the language's word for tax is no name to put in
            return t.gettext("Not subject to tax")
        # English says "not subject to sales tax" (but "to VAT", "to GST")
        lower = t.language == "en" and not name.isupper()
        return t.gettext("Not subject to %(tax)s") % {"tax": name.lower() if lower else name}
    rate = xml_rate(group.category, group.rate)
    if rate is None and group.category is None:
        rate = Decimal(0)
    note = _CATEGORY_NOTES.get(group.category or "")
    label = name if rate is None else f"{name} {localize.percent(rate, invoice)}"
    return label + (f" ({t.gettext(note)})" if note else "")


def tax_line_label(group: TaxGroup, invoice: Invoice) -> str:
    """The label of one 'tax per rate' line: ``VAT 19 % on 1.234,00 €``,
    ``VAT 0 % (reverse charge) on 5.000,00 €``, ``Not subject to VAT on 300,00 €``."""
    return labels_for(invoice).gettext("%(tax)s on %(base)s") % {
        "tax": tax_rate_label(group, invoice),
        "base": localize.money(group.base, invoice),
    }


def tax_rate_text(item: LineItem, invoice: Invoice) -> str | None:
    """A line's rate in the items table: the rate the e-invoice states for it
    (:func:`~invoiceflow.domain.einvoice.xml_rate`: ``0 %`` for a reverse-charge or exempt line
    given without a rate), None for none (an untaxed line, category ``O``)."""
    rate = xml_rate(item.vat_category, item.tax_rate)
    return None if rate is None else localize.percent(rate, invoice)


def tax_exemption_lines(invoice: Invoice, totals: Totals) -> list[str]:
    """One line per VAT category of the totals that has an exemption reason, in the order of
    the tax groups: ``Reverse charge (VATEX-EU-AE)``, or the reason or the code alone (the
    reason is the document's own text)."""
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

    Given the ``invoice`` (and its ``totals``), the labels are in its language and a direct
    debit (:func:`is_direct_debit`) is printed as one: ``Payment: SEPA direct debit`` (59) or
    ``Direct debit`` (49) first, the IBAN (or, without one, the account number) as the
    ``Debited account``, and, on an invoice with a balance due, a ``Collection`` line saying
    that the amount will be collected from it (never a request to pay into it)."""
    t = labels_for(invoice)
    bank, holder = t.gettext("Bank"), t.gettext("Account holder")
    number, reference = t.gettext("Account number"), t.gettext("Reference")
    fields = [
        (bank, payment.bank_name),
        (holder, payment.account_holder),
        (number, payment.account_number),
        ("IBAN", payment.iban),
        ("BIC", payment.bic),
        (reference, payment.reference),
    ]
    if invoice is not None and is_direct_debit(invoice):
        credit_note = invoice.document_type == "credit_note"
        account = t.gettext("Direct debit account") if credit_note else t.gettext("Debited account")
        means = (
            t.gettext("SEPA direct debit")
            if payment_means_code(invoice) == "59"
            else t.gettext("Direct debit")
        )
        fields = [
            (t.gettext("Payment"), means),
            (bank, payment.bank_name),
            (holder, payment.account_holder),
            (number if payment.iban else account, payment.account_number),
            (account, payment.iban),
            ("BIC", payment.bic),
            (reference, payment.reference),
        ]
        due = totals.balance_due if totals is not None else None
        if not credit_note and due is not None and due > 0:
            fields.append(
                (
                    t.gettext("Collection"),
                    t.gettext(
                        "The balance due of %(amount)s will be collected from this account "
                        "by direct debit."
                    )
                    % {"amount": localize.money(due, invoice)},
                )
            )
    return [(label, value) for label, value in fields if value]
