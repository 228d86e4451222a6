"""EN 16931 facts derived from the canonical document, decided once for the business rules
(:mod:`.en16931`), the CII writer and the UBL writer. No I/O, no XML here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from invoiceflow.domain.model import DOCUMENT_TYPE_CODES, Contact, Invoice, Party, TaxExemption

#: the CII/UBL specification identifiers (BT-24)
EN16931_CII = "urn:cen.eu:en16931:2017"
XRECHNUNG_CII = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL_UBL = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"  # BT-23

#: categories whose rate is written as 0 (BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05)
ZERO_RATE_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G"})
#: categories that carry no rate at all (BR-O-05)
NO_RATE_CATEGORIES = frozenset({"O"})
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


def xml_rate(category: str | None, rate: Decimal | None) -> Decimal | None:
    """The VAT rate as written in the XML (BT-119/BT-152): 0 for the zero-rate categories
    when none is given, nothing for ``O``, else the rate."""
    if category in NO_RATE_CATEGORIES:
        return None
    if rate is None and category in ZERO_RATE_CATEGORIES:
        return Decimal(0)
    return rate


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
