"""The UN/CEFACT Cross Industry Invoice (CII D16B) writer: EN 16931, or XRechnung 3.0 when the
invoice is German and names a buyer reference (:func:`invoiceflow.domain.einvoice.cii_profile`).

:func:`render_cii` checks the document against the business rules first
(:func:`invoiceflow.domain.en16931.require_conformance`); :func:`cii_xml` only writes. Every
amount comes from :func:`invoiceflow.domain.totals.compute_totals`; elements are written in the
order of the CII D16B XML Schema. The output is deterministic (no timestamps): the same
document gives the same bytes.

How the model maps where EN 16931 leaves a choice is decided once, in
:mod:`invoiceflow.domain.einvoice`, for this writer, the UBL writer and the rules:

* a party's name (BT-27, BT-44, BT-70) is its company, else its name; when both are given and
  differ, the name is the contact person's (BT-41, BT-56) unless the contact names one, and the
  party's email and phone fill the contact's when it gives none (``party_name``,
  ``party_contact``);
* the seller's ``tax_id`` is its tax registration id (BT-32, scheme ``SELLER_TAX_SCHEME``,
  FC); a buyer's ``tax_id`` has no place in EN 16931 and is not written;
* at most three street lines, a fourth and later ones joined to the third (``address_lines``);
* a line with a negative unit price is written with the price's absolute value and the opposite
  quantity (BR-27; ``net_price_and_quantity``);
* a line discount is a line allowance (BG-27) of ``gross - amount`` of the line's totals; the
  invoice discount is one document-level allowance (BG-20) per tax group share, shipping one
  document-level charge (BG-21); a percentage and base amount are written only when they give
  the amount (``line_allowance``, ``document_allowances_charges``, ``percent_fits``);
* CII D16B has room for one preceding invoice (BG-3); when a document names several, the first
  is written there and all of them are listed in a note (BT-22) so none is lost
  (``document_notes``);
* the direct debit codes (49, 59) write the IBAN as the debited account (BT-91); every other
  payment means writes it as the payee's account (BT-84).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

from invoiceflow.domain import einvoice
from invoiceflow.domain.model import (
    Identifier,
    Invoice,
    LineItem,
    Party,
    PaymentDetails,
    Period,
)
from invoiceflow.domain.totals import LineTotal, Totals, compute_totals
from invoiceflow.domain.units import unit_code
from invoiceflow.einvoice.common import amount, cii_date, decimal_text

__all__ = ["NAMESPACES", "cii_xml", "render_cii"]


RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NAMESPACES = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)

#: CII D16B postal addresses have three street lines (BT-35, BT-36, BT-162)
_ADDRESS_LINES = ("LineOne", "LineTwo", "LineThree")


def render_cii(invoice: Invoice) -> bytes:
    """The CII XML of a document that passes the EN 16931 (and, for XRechnung, BR-DE) rules;
    raises :class:`invoiceflow.errors.BusinessRuleViolation` (422) listing every broken rule."""
    from invoiceflow.domain.en16931 import require_conformance

    require_conformance(invoice, "cii")
    return cii_xml(invoice)


def cii_xml(invoice: Invoice) -> bytes:
    """The CII D16B XML of ``invoice`` (UTF-8, with an XML declaration), without any rule
    check."""
    return _Writer(invoice).document()


def _el(parent: ET.Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        child.text = text
    return child


def ram(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    return _el(parent, RAM, tag, text, **attrs)


def _date_time(parent: ET.Element, tag: str, d: date) -> None:
    """``<ram:tag><udt:DateTimeString format="102">YYYYMMDD</...></ram:tag>``"""
    _el(ram(parent, tag), UDT, "DateTimeString", cii_date(d), format="102")


def _indicator(parent: ET.Element, tag: str, value: bool) -> None:
    _el(ram(parent, tag), UDT, "Indicator", "true" if value else "false")


def _id(parent: ET.Element, tag: str, ident: Identifier) -> None:
    if ident.scheme:
        ram(parent, tag, ident.id, schemeID=ident.scheme)
    else:
        ram(parent, tag, ident.id)


def _period(parent: ET.Element, period: Period) -> None:
    """A BillingSpecifiedPeriod (BG-14 or BG-26); nothing when both ends are open."""
    if period.start is None and period.end is None:
        return
    el = ram(parent, "BillingSpecifiedPeriod")
    if period.start is not None:
        _date_time(el, "StartDateTime", period.start)
    if period.end is not None:
        _date_time(el, "EndDateTime", period.end)


def _address(parent: ET.Element, party: Party) -> None:
    """The PostalTradeAddress (BG-5, BG-8, BG-15): the structured address, else the free lines
    (which name no country, so such a document breaks BR-09/BR-11 and the rules refuse it)."""
    postal = party.postal
    lines = postal.lines if postal is not None else party.address
    if postal is None and not lines:
        return
    el = ram(parent, "PostalTradeAddress")
    if postal is not None and postal.postal_code:
        ram(el, "PostcodeCode", postal.postal_code)
    for tag, line in zip(_ADDRESS_LINES, einvoice.address_lines(lines), strict=False):
        ram(el, tag, line)
    if postal is not None:
        if postal.city:
            ram(el, "CityName", postal.city)
        ram(el, "CountryID", postal.country)
        if postal.subdivision:
            ram(el, "CountrySubDivisionName", postal.subdivision)


class _Writer:
    def __init__(self, invoice: Invoice) -> None:
        self.inv = invoice
        self.cur = invoice.currency
        self.totals: Totals = compute_totals(invoice)

    def money(self, value: Decimal) -> str:
        return amount(value, self.cur)

    def document(self) -> bytes:
        root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
        self.context(root)
        self.header(root)
        tx = _el(root, RSM, "SupplyChainTradeTransaction")
        for index, (item, lt) in enumerate(zip(self.inv.items, self.totals.lines, strict=True)):
            self.line(tx, index + 1, item, lt)
        self.agreement(tx)
        self.delivery(tx)
        self.settlement(tx)
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode("utf-8") + b"\n"

    # --- document ------------------------------------------------------------------------

    def context(self, root: ET.Element) -> None:
        ctx = _el(root, RSM, "ExchangedDocumentContext")
        guideline = (
            einvoice.XRECHNUNG_CII
            if einvoice.cii_profile(self.inv) == "xrechnung"
            else einvoice.EN16931_CII
        )
        ram(ram(ctx, "GuidelineSpecifiedDocumentContextParameter"), "ID", guideline)  # BT-24

    def header(self, root: ET.Element) -> None:
        inv = self.inv
        doc = _el(root, RSM, "ExchangedDocument")
        ram(doc, "ID", inv.number)  # BT-1
        ram(doc, "TypeCode", einvoice.document_type_code(inv))  # BT-3
        _date_time(doc, "IssueDateTime", inv.issue_date)  # BT-2
        for text in einvoice.document_notes(inv, preceding_room=1):  # BT-22
            ram(ram(doc, "IncludedNote"), "Content", text)

    # --- lines (BG-25) ---------------------------------------------------------------------

    def line(self, tx: ET.Element, number: int, item: LineItem, lt: LineTotal) -> None:
        el = ram(tx, "IncludedSupplyChainTradeLineItem")
        doc = ram(el, "AssociatedDocumentLineDocument")
        ram(doc, "LineID", str(number))  # BT-126
        if item.note:
            ram(ram(doc, "IncludedNote"), "Content", item.note)  # BT-127

        product = ram(el, "SpecifiedTradeProduct")
        if item.standard_id is not None:
            _id(product, "GlobalID", item.standard_id)  # BT-157
        if item.sku:
            ram(product, "SellerAssignedID", item.sku)  # BT-155
        if item.buyer_item_id:
            ram(product, "BuyerAssignedID", item.buyer_item_id)  # BT-156
        ram(product, "Name", item.description)  # BT-153

        # BR-27: the net price is never negative; a credit line's sign moves to the quantity
        price, quantity = einvoice.net_price_and_quantity(item)
        agreement = ram(el, "SpecifiedLineTradeAgreement")
        net = ram(agreement, "NetPriceProductTradePrice")
        ram(net, "ChargeAmount", decimal_text(price))  # BT-146

        code = unit_code(item)
        delivery = ram(el, "SpecifiedLineTradeDelivery")
        if code is None:  # an unknown unit text: BR-23 refuses the document
            ram(delivery, "BilledQuantity", decimal_text(quantity))
        else:
            ram(delivery, "BilledQuantity", decimal_text(quantity), unitCode=code)  # BT-129/130

        settlement = ram(el, "SpecifiedLineTradeSettlement")
        category = item.vat_category
        if category is not None:
            self.tax_category(settlement, "ApplicableTradeTax", category, item.tax_rate)
        if item.period is not None:
            _period(settlement, item.period)  # BG-26
        allowance = einvoice.line_allowance(item, lt, self.cur)
        if allowance is not None:
            self.allowance_charge(settlement, allowance)  # BG-27
        summation = ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
        ram(summation, "LineTotalAmount", self.money(lt.amount))  # BT-131

    def tax_category(
        self, parent: ET.Element, tag: str, category: str, rate: Decimal | None
    ) -> None:
        """A line's (BT-151, BT-152) or an allowance's/charge's VAT category and rate."""
        el = ram(parent, tag)
        ram(el, "TypeCode", "VAT")
        ram(el, "CategoryCode", category)
        written = einvoice.xml_rate(category, rate)
        if written is not None:
            ram(el, "RateApplicablePercent", decimal_text(written))

    # --- header agreement: references and the parties ----------------------------------------

    def agreement(self, tx: ET.Element) -> None:
        inv = self.inv
        el = ram(tx, "ApplicableHeaderTradeAgreement")
        if inv.buyer_reference:
            ram(el, "BuyerReference", inv.buyer_reference)  # BT-10
        self.party(el, "SellerTradeParty", inv.seller, seller=True)  # BG-4
        self.party(el, "BuyerTradeParty", inv.bill_to, seller=False)  # BG-7
        if inv.purchase_order:
            ram(ram(el, "BuyerOrderReferencedDocument"), "IssuerAssignedID", inv.purchase_order)
        if inv.contract:
            ram(ram(el, "ContractReferencedDocument"), "IssuerAssignedID", inv.contract)

    def party(self, parent: ET.Element, tag: str, party: Party, *, seller: bool) -> None:
        el = ram(parent, tag)
        ram(el, "Name", einvoice.party_name(party))  # BT-27 / BT-44
        if party.legal_id is not None:  # BT-30 / BT-47
            _id(ram(el, "SpecifiedLegalOrganization"), "ID", party.legal_id)
        contact = einvoice.party_contact(party)
        if contact is not None:  # BG-6 / BG-9
            c = ram(el, "DefinedTradeContact")
            if contact.name:
                ram(c, "PersonName", contact.name)
            if contact.phone:
                ram(ram(c, "TelephoneUniversalCommunication"), "CompleteNumber", contact.phone)
            if contact.email:
                ram(ram(c, "EmailURIUniversalCommunication"), "URIID", contact.email)
        _address(el, party)  # BG-5 / BG-8
        if party.electronic_address is not None:  # BT-34 / BT-49
            _id(ram(el, "URIUniversalCommunication"), "URIID", party.electronic_address)
        if party.vat_id:  # BT-31 / BT-48
            ram(ram(el, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")
        if seller and party.tax_id:  # BT-32
            tax = ram(el, "SpecifiedTaxRegistration")
            ram(tax, "ID", party.tax_id, schemeID=einvoice.SELLER_TAX_SCHEME)

    # --- header delivery (BG-13) -------------------------------------------------------------

    def delivery(self, tx: ET.Element) -> None:
        inv = self.inv
        el = ram(tx, "ApplicableHeaderTradeDelivery")
        if inv.ship_to is not None:
            ship = ram(el, "ShipToTradeParty")
            ram(ship, "Name", einvoice.party_name(inv.ship_to))  # BT-70
            _address(ship, inv.ship_to)  # BG-15
        if inv.delivery_date is not None:  # BT-72
            event = ram(el, "ActualDeliverySupplyChainEvent")
            _date_time(event, "OccurrenceDateTime", inv.delivery_date)

    # --- header settlement -------------------------------------------------------------------

    def settlement(self, tx: ET.Element) -> None:
        inv, totals = self.inv, self.totals
        el = ram(tx, "ApplicableHeaderTradeSettlement")
        if inv.payment is not None and inv.payment.reference:
            ram(el, "PaymentReference", inv.payment.reference)  # BT-83
        ram(el, "InvoiceCurrencyCode", self.cur)  # BT-5
        self.payment_means(el, inv.payment)  # BG-16
        for group in totals.groups:  # BG-23
            if group.category is None:  # an untaxed line without a category: BR-CO-04 refuses
                continue
            tax = ram(el, "ApplicableTradeTax")
            ram(tax, "CalculatedAmount", self.money(group.tax))  # BT-117
            ram(tax, "TypeCode", "VAT")
            exemption = einvoice.exemption(inv, group.category)
            if exemption is not None and exemption.reason:
                ram(tax, "ExemptionReason", exemption.reason)  # BT-120
            ram(tax, "BasisAmount", self.money(group.base))  # BT-116
            ram(tax, "CategoryCode", group.category)  # BT-118
            if exemption is not None and exemption.code:
                ram(tax, "ExemptionReasonCode", exemption.code)  # BT-121
            rate = einvoice.xml_rate(group.category, group.rate)
            if rate is not None:
                ram(tax, "RateApplicablePercent", decimal_text(rate))  # BT-119
        if inv.invoicing_period is not None:
            _period(el, inv.invoicing_period)  # BG-14
        self.allowances_and_charges(el)  # BG-20, BG-21
        if inv.payment_terms or inv.due_date is not None:
            terms = ram(el, "SpecifiedTradePaymentTerms")
            if inv.payment_terms:
                ram(terms, "Description", inv.payment_terms)  # BT-20
            if inv.due_date is not None:
                _date_time(terms, "DueDateDateTime", inv.due_date)  # BT-9
        self.summation(el)  # BG-22
        if inv.preceding_invoices:  # BG-3 (D16B: one)
            first = inv.preceding_invoices[0]
            ref = ram(el, "InvoiceReferencedDocument")
            ram(ref, "IssuerAssignedID", first.number)  # BT-25
            if first.issue_date is not None:  # BT-26
                _el(
                    ram(ref, "FormattedIssueDateTime"),
                    QDT,
                    "DateTimeString",
                    cii_date(first.issue_date),
                    format="102",
                )

    def payment_means(self, parent: ET.Element, payment: PaymentDetails | None) -> None:
        code = einvoice.payment_means_code(self.inv)
        el = ram(parent, "SpecifiedTradeSettlementPaymentMeans")
        ram(el, "TypeCode", code)  # BT-81
        if payment is None:
            return
        if code in einvoice.DIRECT_DEBIT_CODES:
            if payment.iban:  # BT-91
                debtor = ram(el, "PayerPartyDebtorFinancialAccount")
                ram(debtor, "IBANID", einvoice.normalized_iban(payment.iban))
            return
        if payment.iban or payment.account_number:
            account = ram(el, "PayeePartyCreditorFinancialAccount")
            if payment.iban:  # BT-84
                ram(account, "IBANID", einvoice.normalized_iban(payment.iban))
            if payment.account_holder:  # BT-85
                ram(account, "AccountName", payment.account_holder)
            if payment.account_number and not payment.iban:  # BT-84 (not an IBAN)
                ram(account, "ProprietaryID", payment.account_number)
        if payment.bic:  # BT-86
            ram(ram(el, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", payment.bic)

    def allowances_and_charges(self, parent: ET.Element) -> None:
        for ac in einvoice.document_allowances_charges(self.inv, self.totals):
            self.allowance_charge(parent, ac)

    def allowance_charge(self, parent: ET.Element, ac: einvoice.AllowanceCharge) -> None:
        """A document-level allowance (BG-20) or charge (BG-21), or a line allowance (BG-27)."""
        el = ram(parent, "SpecifiedTradeAllowanceCharge")
        _indicator(el, "ChargeIndicator", ac.charge)
        if ac.percent is not None and ac.base is not None:
            ram(el, "CalculationPercent", decimal_text(ac.percent))  # BT-94 / BT-138
            ram(el, "BasisAmount", self.money(ac.base))  # BT-93 / BT-137
        ram(el, "ActualAmount", self.money(ac.amount))  # BT-92 / BT-99 / BT-136
        ram(el, "ReasonCode", ac.reason_code)  # BT-98 / BT-105 / BT-140
        ram(el, "Reason", ac.reason)  # BT-97 / BT-104 / BT-139
        if ac.category is not None:  # BT-95/BT-96, BT-102/BT-103
            self.tax_category(el, "CategoryTradeTax", ac.category, ac.rate)

    def summation(self, parent: ET.Element) -> None:
        t = self.totals
        el = ram(parent, "SpecifiedTradeSettlementHeaderMonetarySummation")
        ram(el, "LineTotalAmount", self.money(t.subtotal))  # BT-106
        ram(el, "ChargeTotalAmount", self.money(t.shipping))  # BT-108
        ram(el, "AllowanceTotalAmount", self.money(t.discount))  # BT-107
        # BT-109, the total without VAT: the grand total less its VAT (subtotal - discount +
        # shipping, as totals computes it)
        ram(el, "TaxBasisTotalAmount", self.money(t.total - t.tax))
        ram(el, "TaxTotalAmount", self.money(t.tax), currencyID=self.cur)  # BT-110
        ram(el, "GrandTotalAmount", self.money(t.total))  # BT-112
        if t.amount_paid:
            ram(el, "TotalPrepaidAmount", self.money(t.amount_paid))  # BT-113
        ram(el, "DuePayableAmount", self.money(t.balance_due))  # BT-115
