"""EN 16931 facts derived from the canonical document, decided once for the business rules
(:mod:`.en16931`), the CII writer and the UBL writer. No I/O, no XML here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from invoiceflow.domain.model import (
    DOCUMENT_TYPE_CODES,
    Contact,
    Invoice,
    LineItem,
    Party,
    TaxExemption,
)

# the rate as the XML writes it is decided in the model, where the tax groups of
# :mod:`.totals` are keyed by it too; the writers and the rules read it from here
from invoiceflow.domain.model import NO_RATE_CATEGORIES as NO_RATE_CATEGORIES
from invoiceflow.domain.model import ZERO_RATE_CATEGORIES as ZERO_RATE_CATEGORIES
from invoiceflow.domain.model import xml_rate as xml_rate
from invoiceflow.domain.money import round_money
from invoiceflow.domain.totals import LineTotal, Totals
from invoiceflow.records import record

#: the CII/UBL specification identifiers (BT-24)
EN16931_CII = "urn:cen.eu:en16931:2017"
XRECHNUNG_CII = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL_UBL = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"  # BT-23

#: categories that require an exemption reason text or code (BR-E-10, BR-AE-10, BR-IC-10,
#: BR-G-10, BR-O-10)
EXEMPTION_REQUIRED = frozenset({"E", "AE", "K", "G", "O"})

Profile = Literal["en16931", "xrechnung"]


def document_type_code(invoice: Invoice) -> str:
    """UNTDID 1001 code of the document (BT-3): 380 invoice, 381 credit note, 384 corrected."""
    return DOCUMENT_TYPE_CODES[invoice.document_type]


def cii_profile(invoice: Invoice) -> Profile:
    """XRechnung 3.0 when the invoice is German (the seller's country is DE) and names a buyer
    reference (BT-10, the Leitweg-ID); otherwise the plain EN 16931 profile."""
    seller = invoice.seller.postal
    if invoice.buyer_reference and seller is not None and seller.country == "DE":
        return "xrechnung"
    return "en16931"


def payment_means_code(invoice: Invoice) -> str:
    """BT-81: the code given; else 58 (SEPA credit transfer) with an IBAN in EUR, 30 (credit
    transfer) with another IBAN or an account number, else 1 (instrument not defined)."""
    p = invoice.payment
    if p is not None and p.means_code:
        return p.means_code
    if p is not None and p.iban:
        return "58" if invoice.currency == "EUR" else "30"
    if p is not None and p.account_number:
        return "30"
    return "1"


def normalized_iban(iban: str) -> str:
    """An IBAN without spaces, upper case (as written into XML and QR codes)."""
    return "".join(iban.split()).upper()


def exemption(invoice: Invoice, category: str | None) -> TaxExemption | None:
    """The exemption reason given for a category (BT-120/BT-121), if any."""
    return next((e for e in invoice.tax_exemptions if e.category == category), None)


#: reason codes written for the mapped document-level allowance and charge (UNTDID 5189 and
#: 7161): the invoice discount is a discount (95), shipping a freight charge (FC)
DISCOUNT_REASON = ("Discount", "95")
SHIPPING_REASON = ("Shipping", "FC")


def party_name(party: Party) -> str:
    """A party's name in the e-invoice (BT-27 seller, BT-44 buyer, BT-70 deliver to): its
    company, else its name."""
    return party.company or party.name


def party_contact(party: Party) -> Contact | None:
    """A party's contact point (BG-6 seller, BG-9 buyer): the contact given, completed with
    the person's name (when the party's title is a company of another name) and the party's
    phone and email; None when none of them is known. (XRechnung's BR-DE-2/5/6/7 hold the
    seller's to name, phone and email.)"""
    given = party.contact or Contact()
    person = party.name if party.company and party.name != party.company else None
    contact = Contact(
        name=given.name or person,
        phone=given.phone or party.phone,
        email=given.email or party.email,
    )
    return None if contact == Contact() else contact


# --- the mapping both writers share ------------------------------------------------------
# Every choice the CII and UBL writers make the same way is made here once; the writers only
# put its results where their syntax wants them.

#: BT-32's scheme: the seller's tax registration id (CII ``schemeID``, UBL ``TaxScheme/ID``;
#: anything but VAT means BT-32 in UBL, ``FC`` as in CII)
SELLER_TAX_SCHEME = "FC"
#: the payment means codes of a direct debit (UNTDID 4461): the IBAN given is the debited
#: account (BT-91), not the payee's (BT-84)
DIRECT_DEBIT_CODES = frozenset({"49", "59"})
#: how far Peppol BIS 3.0 lets an amount differ from what its parts give (PEPPOL-EN16931-R040,
#: R120)
PEPPOL_SLACK = Decimal("0.02")
#: the street lines an address has room for (BT-35, BT-36, BT-162)
ADDRESS_LINES = 3


def address_lines(lines: tuple[str, ...]) -> tuple[str, ...]:
    """At most three street lines (BT-35, BT-36, BT-162), blank ones left out: a fourth and
    later ones join the third, separated by commas."""
    kept = tuple(line for line in lines if line and line.strip())
    if len(kept) <= ADDRESS_LINES:
        return kept
    return (*kept[: ADDRESS_LINES - 1], ", ".join(kept[ADDRESS_LINES - 1 :]))


def document_notes(invoice: Invoice, *, preceding_room: int | None) -> list[str]:
    """The document notes (BT-22): ``notes``, then ``terms``; when the syntax has room for
    fewer preceding invoice references (BG-3) than the document names (CII D16B: one), a note
    listing all of them, so none is lost. ``preceding_room`` None: room for every one."""
    notes = [text for text in (invoice.notes, invoice.terms) if text]
    refs = invoice.preceding_invoices
    if preceding_room is not None and len(refs) > preceding_room:
        listed = ", ".join(
            ref.number + (f" ({ref.issue_date.isoformat()})" if ref.issue_date else "")
            for ref in refs
        )
        notes.append(f"Preceding invoices: {listed}")
    return notes


def single_note(notes: list[str]) -> str | None:
    """The notes as the one document note Peppol allows (PEPPOL-EN16931-R002), separated by
    a blank line; None without notes."""
    return "\n\n".join(notes) or None


def net_price_and_quantity(item: LineItem) -> tuple[Decimal, Decimal]:
    """The item net price (BT-146) and invoiced quantity (BT-129) as written: BR-27 forbids a
    negative net price, so a line with a negative unit price is written with the price's
    absolute value and the opposite quantity (the line amount is the same)."""
    if item.unit_price < 0:
        return -item.unit_price, -item.quantity
    return item.unit_price, item.quantity


def percent_fits(base: Decimal, percent: Decimal, value: Decimal, currency: str) -> bool:
    """Whether an allowance may state its percentage and base amount (BT-94/BT-93,
    BT-138/BT-137): only when base x percentage / 100 gives its amount under the rounding
    policy and within Peppol's 0.02 (PEPPOL-EN16931-R040). A line discount is taken before
    rounding, so the rounded gross may miss by a minor unit, and in a currency without minor
    units a percentage rarely gives a whole amount: the amount alone is then written, which
    says it exactly."""
    exact = base * percent / 100
    return round_money(exact, currency) == value and abs(exact - value) <= PEPPOL_SLACK


@record
class AllowanceCharge:
    """A document-level allowance (BG-20) or charge (BG-21), or a line allowance (BG-27), as
    both writers write it."""

    charge: bool
    #: BT-97/BT-104/BT-139 and BT-98/BT-105/BT-140
    reason: str
    reason_code: str
    #: BT-92/BT-99/BT-136
    amount: Decimal
    #: BT-94/BT-138 and BT-93/BT-137: both or neither (see :func:`percent_fits`)
    percent: Decimal | None = None
    base: Decimal | None = None
    #: BT-95/BT-102 and BT-96/BT-103 (document level only; None: not categorised)
    category: str | None = None
    rate: Decimal | None = None


def _with_percent(
    base: Decimal, percent: Decimal | None, value: Decimal, currency: str
) -> tuple[Decimal | None, Decimal | None]:
    if percent is None or not base or not percent_fits(base, percent, value, currency):
        return None, None
    return percent, base


def document_allowances_charges(invoice: Invoice, totals: Totals) -> list[AllowanceCharge]:
    """The invoice discount as one document-level allowance per tax group share (reason
    Discount/95), then the shipping as one document-level charge (Shipping/FC) in its tax
    group."""
    d = invoice.discount
    percent = d.value if d is not None and d.kind == "percent" else None
    out: list[AllowanceCharge] = []
    reason, code = DISCOUNT_REASON
    for g in totals.groups:
        if g.discount:
            p, base = _with_percent(g.lines, percent, g.discount, invoice.currency)
            out.append(
                AllowanceCharge(False, reason, code, g.discount, p, base, g.category, g.rate)
            )
    reason, code = SHIPPING_REASON
    for g in totals.groups:
        if g.shipping:
            out.append(
                AllowanceCharge(True, reason, code, g.shipping, None, None, g.category, g.rate)
            )
    return out


def line_allowance(item: LineItem, line: LineTotal, currency: str) -> AllowanceCharge | None:
    """A discounted line's allowance (BG-27): what the discount takes off the rounded gross
    (``gross - amount``, so gross, allowance and line amount add up), reason Discount/95;
    None when the line has no discount or it takes nothing off."""
    value = line.gross - line.amount
    if item.discount is None or not value:
        return None
    percent = item.discount.value if item.discount.kind == "percent" else None
    p, base = _with_percent(line.gross, percent, value, currency)
    reason, code = DISCOUNT_REASON
    return AllowanceCharge(False, reason, code, value, p, base)
