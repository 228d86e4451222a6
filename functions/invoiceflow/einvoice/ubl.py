"""The UBL 2.1 writer: Peppol BIS Billing 3.0 ``Invoice`` (380, 384) and ``CreditNote`` (381).

:func:`render_ubl` checks the document against the EN 16931 business rules first; :func:`ubl_xml`
only writes. Every amount comes from :func:`invoiceflow.domain.totals.compute_totals`, formatted
by :mod:`.common`; nothing is added up here. Elements follow the order of the UBL 2.1 schemas
(``UBL-Invoice-2.1.xsd``, ``UBL-CreditNote-2.1.xsd`` and the common aggregate types).

Mapping choices (the BT numbers are EN 16931's) are the CII writer's, made once in
:mod:`invoiceflow.domain.einvoice` (see :mod:`.cii`): party names and contacts, street lines,
notes, BR-27's sign flip, allowances and charges (their percentage only when it gives the
amount, PEPPOL-EN16931-R040), the BT-32 scheme FC, and a direct debit's IBAN as the debited
account (``PaymentMandate/PayerFinancialAccount``, BT-91). What only UBL decides:

* the seller's ``tax_id`` is a ``PartyTaxScheme`` whose ``TaxScheme/ID`` is FC (any id but
  ``VAT`` means BT-32); no trading name (BT-28) is written, as in CII;
* ``notes`` and ``terms`` share the one document note Peppol allows (BT-22, R002), and every
  preceding invoice has its own ``BillingReference``; ``payment_terms`` is BT-20;
* a credit note has no ``DueDate`` in UBL: its due date is ``PaymentMeans/PaymentDueDate``;
* a legacy free-text ``address`` has no place (the structured ``address`` object is BG-5/BG-8/
  BG-15), nor have ``bank_name``, ``locale`` and ``logo``.

:func:`render_ubl` also holds the document to the Peppol BIS 3.0 rules the native check knows
(:mod:`invoiceflow.domain.en16931`, syntax ``ubl``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Literal

from invoiceflow.domain import einvoice
from invoiceflow.domain.model import (
    Contact,
    Identifier,
    Invoice,
    LineItem,
    Party,
    Period,
    PostalAddress,
)
from invoiceflow.domain.money import minor_digits
from invoiceflow.domain.totals import LineTotal, Totals, compute_totals
from invoiceflow.domain.units import unit_code
from invoiceflow.einvoice.common import amount, decimal_text, iso_date

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

Root = Literal["Invoice", "CreditNote"]


def render_ubl(invoice: Invoice) -> bytes:
    """The UBL document, after the EN 16931 rules have passed (else BusinessRuleViolation)."""
    from invoiceflow.domain.en16931 import require_conformance

    require_conformance(invoice, "ubl")
    return ubl_xml(invoice)


def ubl_xml(invoice: Invoice) -> bytes:
    """The UBL 2.1 document (UTF-8, with an XML declaration; the same bytes for the same
    document). No rule is checked here: see :func:`render_ubl`."""
    return _Writer(invoice).document()


def root_name(invoice: Invoice) -> Root:
    """``CreditNote`` for a credit note (381), else ``Invoice`` (380, 384)."""
    return "CreditNote" if einvoice.document_type_code(invoice) == "381" else "Invoice"


class _Writer:
    def __init__(self, invoice: Invoice) -> None:
        self.inv = invoice
        self.cur = invoice.currency
        self.totals: Totals = compute_totals(invoice)
        self.root_name: Root = root_name(invoice)
        self.credit_note = self.root_name == "CreditNote"

    # -- small builders -------------------------------------------------------------------

    @staticmethod
    def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        child = ET.SubElement(parent, tag, attrs)
        if text is not None:
            child.text = text
        return child

    def _cbc(self, parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
        return self._el(parent, f"cbc:{name}", text, **attrs)

    def _cac(self, parent: ET.Element, name: str) -> ET.Element:
        return self._el(parent, f"cac:{name}")

    def _money(self, parent: ET.Element, name: str, value: Decimal) -> None:
        self._cbc(parent, name, amount(value, self.cur), currencyID=self.cur)

    def _price(self, value: Decimal) -> str:
        """A unit price: at least the currency's minor digits, more when it has them."""
        digits = minor_digits(self.cur)
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > digits:
            return decimal_text(value)
        return amount(value, self.cur)

    def _id(self, parent: ET.Element, name: str, ident: Identifier) -> None:
        attrs = {"schemeID": ident.scheme} if ident.scheme else {}
        self._cbc(parent, name, ident.id, **attrs)

    def _tax_scheme(self, parent: ET.Element, scheme: str = "VAT") -> None:
        self._cbc(self._cac(parent, "TaxScheme"), "ID", scheme)

    def _tax_category(
        self,
        parent: ET.Element,
        tag: str,
        category: str | None,
        rate: Decimal | None,
        with_exemption: bool = False,
    ) -> None:
        if category is None:  # not an EN 16931 line (BR-CO-04 refuses it); nothing to write
            return
        cat = self._cac(parent, tag)
        self._cbc(cat, "ID", category)
        percent = einvoice.xml_rate(category, rate)
        if percent is not None:
            self._cbc(cat, "Percent", decimal_text(percent))
        exemption = einvoice.exemption(self.inv, category) if with_exemption else None
        if exemption is not None and exemption.code:
            self._cbc(cat, "TaxExemptionReasonCode", exemption.code)
        if exemption is not None and exemption.reason:
            self._cbc(cat, "TaxExemptionReason", exemption.reason)
        self._tax_scheme(cat)

    def _period(self, parent: ET.Element, period: Period | None) -> None:
        if period is None or (period.start is None and period.end is None):
            return
        el = self._cac(parent, "InvoicePeriod")
        if period.start is not None:
            self._cbc(el, "StartDate", iso_date(period.start))
        if period.end is not None:
            self._cbc(el, "EndDate", iso_date(period.end))

    def _address(self, parent: ET.Element, tag: str, postal: PostalAddress) -> None:
        el = self._cac(parent, tag)
        lines = einvoice.address_lines(postal.lines)
        if len(lines) > 0:
            self._cbc(el, "StreetName", lines[0])  # BT-35
        if len(lines) > 1:
            self._cbc(el, "AdditionalStreetName", lines[1])  # BT-36
        if postal.city:
            self._cbc(el, "CityName", postal.city)
        if postal.postal_code:
            self._cbc(el, "PostalZone", postal.postal_code)
        if postal.subdivision:
            self._cbc(el, "CountrySubentity", postal.subdivision)
        if len(lines) > 2:
            self._cbc(self._cac(el, "AddressLine"), "Line", lines[2])  # BT-162
        self._cbc(self._cac(el, "Country"), "IdentificationCode", postal.country)

    # -- the document ---------------------------------------------------------------------

    def document(self) -> bytes:
        ns = CREDIT_NOTE_NS if self.credit_note else INVOICE_NS
        attrs = {"xmlns": ns, "xmlns:cac": CAC_NS, "xmlns:cbc": CBC_NS}
        root: ET.Element = ET.Element(str(self.root_name), attrs)
        self._header(root)
        self._party(self._cac(root, "AccountingSupplierParty"), self.inv.seller, seller=True)
        self._party(self._cac(root, "AccountingCustomerParty"), self.inv.bill_to, seller=False)
        self._delivery(root)
        self._payment(root)
        self._allowances_charges(root)
        self._tax_total(root)
        self._monetary_total(root)
        for index, (item, line) in enumerate(zip(self.inv.items, self.totals.lines, strict=True)):
            self._line(root, index + 1, item, line)
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode("utf-8") + b"\n"

    def _header(self, root: ET.Element) -> None:
        inv = self.inv
        self._cbc(root, "CustomizationID", einvoice.PEPPOL_UBL)  # BT-24
        self._cbc(root, "ProfileID", einvoice.PEPPOL_PROFILE)  # BT-23
        self._cbc(root, "ID", inv.number)  # BT-1
        self._cbc(root, "IssueDate", iso_date(inv.issue_date))  # BT-2
        if inv.due_date is not None and not self.credit_note:
            self._cbc(root, "DueDate", iso_date(inv.due_date))  # BT-9
        type_tag = "CreditNoteTypeCode" if self.credit_note else "InvoiceTypeCode"
        self._cbc(root, type_tag, einvoice.document_type_code(inv))  # BT-3
        note = einvoice.single_note(einvoice.document_notes(inv, preceding_room=None))
        if note is not None:
            self._cbc(root, "Note", note)  # BT-22
        self._cbc(root, "DocumentCurrencyCode", self.cur)  # BT-5
        if inv.buyer_reference:
            self._cbc(root, "BuyerReference", inv.buyer_reference)  # BT-10
        self._period(root, inv.invoicing_period)  # BG-14
        if inv.purchase_order:
            self._cbc(self._cac(root, "OrderReference"), "ID", inv.purchase_order)  # BT-13
        for ref in inv.preceding_invoices:  # BG-3
            doc = self._cac(self._cac(root, "BillingReference"), "InvoiceDocumentReference")
            self._cbc(doc, "ID", ref.number)  # BT-25
            if ref.issue_date is not None:
                self._cbc(doc, "IssueDate", iso_date(ref.issue_date))  # BT-26
        if inv.contract:
            self._cbc(self._cac(root, "ContractDocumentReference"), "ID", inv.contract)  # BT-12

    def _party(self, parent: ET.Element, p: Party, seller: bool) -> None:
        party = self._cac(parent, "Party")
        if p.electronic_address is not None:
            self._id(party, "EndpointID", p.electronic_address)  # BT-34 / BT-49
        if p.postal is not None:
            self._address(party, "PostalAddress", p.postal)  # BG-5 / BG-8
        if p.vat_id:
            scheme = self._cac(party, "PartyTaxScheme")
            self._cbc(scheme, "CompanyID", p.vat_id)  # BT-31 / BT-48
            self._tax_scheme(scheme)
        if seller and p.tax_id:
            scheme = self._cac(party, "PartyTaxScheme")
            self._cbc(scheme, "CompanyID", p.tax_id)  # BT-32
            self._tax_scheme(scheme, einvoice.SELLER_TAX_SCHEME)
        entity = self._cac(party, "PartyLegalEntity")
        self._cbc(entity, "RegistrationName", einvoice.party_name(p))  # BT-27 / BT-44
        if p.legal_id is not None:
            self._id(entity, "CompanyID", p.legal_id)  # BT-30 / BT-47
        self._contact(party, einvoice.party_contact(p))

    def _contact(self, party: ET.Element, c: Contact | None) -> None:
        if c is None:
            return
        el = self._cac(party, "Contact")  # BG-6 / BG-9
        if c.name:
            self._cbc(el, "Name", c.name)  # BT-41 / BT-56
        if c.phone:
            self._cbc(el, "Telephone", c.phone)  # BT-42 / BT-57
        if c.email:
            self._cbc(el, "ElectronicMail", c.email)  # BT-43 / BT-58

    def _delivery(self, root: ET.Element) -> None:
        inv, ship = self.inv, self.inv.ship_to
        if inv.delivery_date is None and ship is None:
            return
        el = self._cac(root, "Delivery")  # BG-13
        if inv.delivery_date is not None:
            self._cbc(el, "ActualDeliveryDate", iso_date(inv.delivery_date))  # BT-72
        if ship is not None and ship.postal is not None:
            self._address(self._cac(el, "DeliveryLocation"), "Address", ship.postal)  # BG-15
        if ship is not None:
            party = self._cac(el, "DeliveryParty")
            self._cbc(self._cac(party, "PartyName"), "Name", einvoice.party_name(ship))  # BT-70

    def _payment(self, root: ET.Element) -> None:
        inv, pay = self.inv, self.inv.payment
        due_in_means = self.credit_note and inv.due_date is not None
        if pay is not None or due_in_means:
            means = self._cac(root, "PaymentMeans")  # BG-16
            self._cbc(means, "PaymentMeansCode", einvoice.payment_means_code(inv))  # BT-81
            if due_in_means and inv.due_date is not None:
                self._cbc(means, "PaymentDueDate", iso_date(inv.due_date))  # BT-9
            if pay is not None and pay.reference:
                self._cbc(means, "PaymentID", pay.reference)  # BT-83
            code = einvoice.payment_means_code(inv)
            if pay is not None and code in einvoice.DIRECT_DEBIT_CODES:
                if pay.iban:  # BG-19: the IBAN is the debited account (BT-91)
                    mandate = self._cac(means, "PaymentMandate")
                    payer = self._cac(mandate, "PayerFinancialAccount")
                    self._cbc(payer, "ID", einvoice.normalized_iban(pay.iban))
            elif pay is not None and (pay.iban or pay.account_number):  # BG-17
                account = einvoice.normalized_iban(pay.iban) if pay.iban else pay.account_number
                fin = self._cac(means, "PayeeFinancialAccount")
                self._cbc(fin, "ID", account or "")  # BT-84
                if pay.account_holder:
                    self._cbc(fin, "Name", pay.account_holder)  # BT-85
                if pay.bic:
                    branch = self._cac(fin, "FinancialInstitutionBranch")
                    self._cbc(branch, "ID", pay.bic)  # BT-86
        if inv.payment_terms:
            self._cbc(self._cac(root, "PaymentTerms"), "Note", inv.payment_terms)  # BT-20

    def _allowances_charges(self, root: ET.Element) -> None:
        for ac in einvoice.document_allowances_charges(self.inv, self.totals):
            self._allowance_charge(root, ac)  # BG-20, BG-21

    def _allowance_charge(self, parent: ET.Element, ac: einvoice.AllowanceCharge) -> None:
        """A document-level allowance (BG-20) or charge (BG-21), or a line allowance (BG-27)."""
        el = self._cac(parent, "AllowanceCharge")
        self._cbc(el, "ChargeIndicator", "true" if ac.charge else "false")
        self._cbc(el, "AllowanceChargeReasonCode", ac.reason_code)  # BT-98/BT-105/BT-140
        self._cbc(el, "AllowanceChargeReason", ac.reason)  # BT-97/BT-104/BT-139
        if ac.percent is not None and ac.base is not None:
            self._cbc(el, "MultiplierFactorNumeric", decimal_text(ac.percent))  # BT-94/BT-138
        self._money(el, "Amount", ac.amount)  # BT-92/BT-99/BT-136
        if ac.percent is not None and ac.base is not None:
            self._money(el, "BaseAmount", ac.base)  # BT-93/BT-137
        self._tax_category(el, "TaxCategory", ac.category, ac.rate)  # BT-95/BT-96, BT-102/103

    def _tax_total(self, root: ET.Element) -> None:
        total = self._cac(root, "TaxTotal")
        self._money(total, "TaxAmount", self.totals.tax)  # BT-110
        for g in self.totals.groups:  # BG-23
            if g.category is None:  # an untaxed line without a category: BR-CO-04 refuses
                continue
            sub = self._cac(total, "TaxSubtotal")
            self._money(sub, "TaxableAmount", g.base)  # BT-116
            self._money(sub, "TaxAmount", g.tax)  # BT-117
            self._tax_category(sub, "TaxCategory", g.category, g.rate, with_exemption=True)

    def _monetary_total(self, root: ET.Element) -> None:
        t = self.totals
        el = self._cac(root, "LegalMonetaryTotal")  # BG-22
        self._money(el, "LineExtensionAmount", t.subtotal)  # BT-106
        self._money(el, "TaxExclusiveAmount", t.total - t.tax)  # BT-109
        self._money(el, "TaxInclusiveAmount", t.total)  # BT-112
        if any(g.discount for g in t.groups):
            self._money(el, "AllowanceTotalAmount", t.discount)  # BT-107
        if t.shipping:
            self._money(el, "ChargeTotalAmount", t.shipping)  # BT-108
        if t.amount_paid:
            self._money(el, "PrepaidAmount", t.amount_paid)  # BT-113
        self._money(el, "PayableAmount", t.balance_due)  # BT-115

    def _line(self, root: ET.Element, number: int, item: LineItem, lt: LineTotal) -> None:
        el = self._cac(root, "CreditNoteLine" if self.credit_note else "InvoiceLine")  # BG-25
        self._cbc(el, "ID", str(number))  # BT-126
        if item.note:
            self._cbc(el, "Note", item.note)  # BT-127
        price, quantity = einvoice.net_price_and_quantity(item)  # BR-27
        code = unit_code(item)
        attrs = {"unitCode": code} if code is not None else {}
        qty_tag = "CreditedQuantity" if self.credit_note else "InvoicedQuantity"
        self._cbc(el, qty_tag, decimal_text(quantity), **attrs)  # BT-129, BT-130
        self._money(el, "LineExtensionAmount", lt.amount)  # BT-131
        self._period(el, item.period)  # BG-26
        allowance = einvoice.line_allowance(item, lt, self.cur)
        if allowance is not None:
            self._allowance_charge(el, allowance)  # BG-27
        it = self._cac(el, "Item")  # BG-31
        self._cbc(it, "Name", item.description)  # BT-153
        if item.buyer_item_id:
            self._cbc(self._cac(it, "BuyersItemIdentification"), "ID", item.buyer_item_id)
        if item.sku:
            self._cbc(self._cac(it, "SellersItemIdentification"), "ID", item.sku)  # BT-155
        if item.standard_id is not None:
            self._id(self._cac(it, "StandardItemIdentification"), "ID", item.standard_id)
        self._tax_category(it, "ClassifiedTaxCategory", lt.category, lt.tax_rate)  # BG-30
        priced = self._cac(el, "Price")  # BG-29
        self._cbc(priced, "PriceAmount", self._price(price), currencyID=self.cur)  # BT-146
