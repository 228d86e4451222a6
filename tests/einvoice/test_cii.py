"""The CII writer (EN 16931 and XRechnung 3.0), held to the official CEN/TC 434 artefacts: the
compiled EN 16931 Schematron (zero fatal assertions) and the CII D16B XML Schema (zero
errors), for every VAT category, credit notes, 0- and 2-decimal currencies, allowances and
charges, line discounts, credit lines, 300 lines and the shipped examples; the money in the
XML is the money of :func:`compute_totals`. XRechnung documents also pass KoSIT's BR-DE rules
(their Schematron sources, compiled here), and Factur-X's own EN 16931 schema accepts the
XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from invoiceflow.domain import einvoice, parse_invoice
from invoiceflow.domain.model import (
    Contact,
    Discount,
    DocumentReference,
    Identifier,
    Invoice,
    LineItem,
    Party,
    PaymentDetails,
    Period,
    PostalAddress,
    TaxExemption,
)
from invoiceflow.domain.money import minor_digits
from invoiceflow.domain.totals import compute_totals
from invoiceflow.einvoice.cii import NAMESPACES, cii_xml, render_cii
from invoiceflow.einvoice.common import amount
from support.einvoice_samples import buyer_de, german_b2b, seller_de
from support.official import cii_schema_errors, fatal
from support.xrechnung import assertions as xrechnung_assertions

EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"
LEITWEG_ID = "04011000-12345-67"

NS = {**NAMESPACES}
HEADER = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
SUMMATION = f"{HEADER}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def assert_valid(xml: bytes) -> None:
    """Zero XSD errors and zero fatal EN 16931 assertions (each failure listed in full)."""
    assert cii_schema_errors(xml) == []
    failed = [f"{a.id}: {a.text} at {a.location}" for a in fatal(xml, "cii")]
    assert failed == []


def texts(root: ET.Element, path: str) -> list[str]:
    return [el.text or "" for el in root.findall(path, NS)]


def text(root: ET.Element, path: str) -> str:
    found = texts(root, path)
    assert len(found) == 1, (path, found)
    return found[0]


def assert_money_matches_totals(inv: Invoice, xml: bytes) -> None:
    """Every amount in the XML is the one compute_totals gives, in the currency's digits."""
    t = compute_totals(inv)
    cur = inv.currency

    def m(value: D) -> str:
        return amount(value, cur)

    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    lines = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS)
    assert len(lines) == len(t.lines)
    for line, lt in zip(lines, t.lines, strict=True):
        settlement = "ram:SpecifiedLineTradeSettlement"
        assert text(
            line,
            f"{settlement}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        ) == m(lt.amount)
        allowances = texts(line, f"{settlement}/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount")
        assert allowances == ([m(lt.gross - lt.amount)] if lt.gross != lt.amount else [])
    assert text(root, f"{SUMMATION}/ram:LineTotalAmount") == m(t.subtotal)
    assert text(root, f"{SUMMATION}/ram:AllowanceTotalAmount") == m(t.discount)
    assert text(root, f"{SUMMATION}/ram:ChargeTotalAmount") == m(t.shipping)
    assert text(root, f"{SUMMATION}/ram:TaxBasisTotalAmount") == m(
        sum((g.base for g in t.groups), D(0))
    )
    assert text(root, f"{SUMMATION}/ram:TaxTotalAmount") == m(t.tax)
    assert text(root, f"{SUMMATION}/ram:GrandTotalAmount") == m(t.total)
    assert texts(root, f"{SUMMATION}/ram:TotalPrepaidAmount") == (
        [m(t.amount_paid)] if t.amount_paid else []
    )
    assert text(root, f"{SUMMATION}/ram:DuePayableAmount") == m(t.balance_due)
    groups = root.findall(f"{HEADER}/ram:ApplicableTradeTax", NS)
    assert [
        (text(g, "ram:CategoryCode"), text(g, "ram:BasisAmount"), text(g, "ram:CalculatedAmount"))
        for g in groups
    ] == [(g.category, m(g.base), m(g.tax)) for g in t.groups]
    charges = root.findall(f"{HEADER}/ram:SpecifiedTradeAllowanceCharge", NS)
    discounts = [
        text(c, "ram:ActualAmount")
        for c in charges
        if text(c, "ram:ChargeIndicator/udt:Indicator") == "false"
    ]
    assert discounts == [m(g.discount) for g in t.groups if g.discount]
    shipping = [
        text(c, "ram:ActualAmount")
        for c in charges
        if text(c, "ram:ChargeIndicator/udt:Indicator") == "true"
    ]
    assert shipping == ([m(t.shipping)] if t.shipping else [])
    # every amount has exactly the currency's digits (BR-DEC-*: at most 2)
    digits = minor_digits(cur)
    for el in root.iter():
        if el.tag.endswith("Amount") and not el.tag.endswith("}ChargeAmount") and el.text:
            frac = el.text.partition(".")[2]
            assert len(frac) == digits, (el.tag, el.text)


def check(inv: Invoice) -> bytes:
    xml = cii_xml(inv)
    assert_valid(xml)
    assert_money_matches_totals(inv, xml)
    return xml


def root_of(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 (our own output)


# --- the German B2B sample and its XRechnung variant ----------------------------------------


def test_german_b2b_passes_every_en16931_rule() -> None:
    xml = check(german_b2b())
    root = root_of(xml)
    assert (
        text(
            root,
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        )
        == einvoice.EN16931_CII
    )
    assert text(root, "rsm:ExchangedDocument/ram:TypeCode") == "380"
    agreement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
    seller = f"{agreement}/ram:SellerTradeParty"
    assert texts(root, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID") == [
        "DE123456789",
        "22/815/08154",
    ]
    assert text(root, f"{seller}/ram:URIUniversalCommunication/ram:URIID") == "DE123456789"
    assert text(root, f"{seller}/ram:PostalTradeAddress/ram:CountryID") == "DE"
    assert (
        text(
            root,
            f"{HEADER}/ram:SpecifiedTradeSettlementPaymentMeans/"
            "ram:PayeePartyCreditorFinancialAccount/ram:IBANID",
        )
        == "DE89370400440532013000"
    )
    assert text(root, f"{HEADER}/ram:PaymentReference") == "RE-2026-0042"
    assert text(root, f"{agreement}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == (
        "PO-7781"
    )
    # the units: "Stk." is a piece, "Std." an hour, C62 as given
    assert [el.get("unitCode") for el in root.iter(f"{{{NS['ram']}}}BilledQuantity")] == [
        "C62",
        "C62",
        "HUR",
    ]


def test_xrechnung_variant_names_the_xrechnung_guideline_and_passes_en16931() -> None:
    inv = german_b2b(buyer_reference=LEITWEG_ID)
    assert einvoice.cii_profile(inv) == "xrechnung"
    root = root_of(check(inv))
    assert (
        text(
            root,
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        )
        == einvoice.XRECHNUNG_CII
    )
    assert (
        text(
            root,
            "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerReference",
        )
        == LEITWEG_ID
    )


XRECHNUNG_CASES = {
    "sample": german_b2b(),
    "discount-and-shipping": german_b2b(discount=Discount("percent", D("3"))),
    "credit-note": german_b2b(
        document_type="credit_note",
        preceding_invoices=(DocumentReference("RE-2026-0041", date(2026, 11, 2)),),
        amount_paid=D(0),
    ),
    "reverse-charge": german_b2b(
        items=tuple(replace(it, tax_category="AE", tax_rate=None) for it in german_b2b().items),
        shipping_tax_category="AE",
        shipping_tax_rate=None,
        tax_exemptions=(TaxExemption("AE", "Reverse charge", "VATEX-EU-AE"),),
        bill_to=Party(
            name="Librairie Dupont SARL",
            postal=PostalAddress("FR", ("12 rue de la Paix",), "Paris", "75002"),
            vat_id="FR12345678901",
            electronic_address=Identifier("factures@dupont.example", "EM"),
        ),
    ),
}


@pytest.mark.parametrize("case", list(XRECHNUNG_CASES))
def test_xrechnung_passes_every_br_de_rule(case: str) -> None:
    inv = replace(XRECHNUNG_CASES[case], buyer_reference=LEITWEG_ID)
    xml = check(inv)
    assert xrechnung_assertions(xml) == []  # not even a warning


def test_the_xrechnung_schematron_is_really_checked() -> None:
    # the plain EN 16931 invoice has no buyer reference and names the EN 16931 guideline
    failed = xrechnung_assertions(cii_xml(german_b2b()))
    assert [(a.id, a.flag) for a in failed] == [
        ("BR-DE-15", "fatal"),
        ("BR-DE-21", "warning"),
    ]


def test_every_field_is_written_where_en16931_puts_it() -> None:
    inv = german_b2b(
        notes="Vielen Dank für Ihren Auftrag!",
        terms="Es gelten unsere AGB.",
        contract="RV-2026-7",
        invoicing_period=Period(date(2026, 11, 1), date(2026, 11, 30)),
        ship_to=Party(
            name="Lager Süd",
            postal=PostalAddress("DE", ("Industriestraße 8",), "Garching", "85748", "BY"),
        ),
        items=(
            LineItem(
                description="Kochbuch",
                quantity=D("3"),
                unit_price=D("24.90"),
                tax_rate=D("7"),
                sku="NL-1001",
                buyer_item_id="MUE-55",
                standard_id=Identifier("4012345678901", "0160"),
                note="Vorbestellung",
                period=Period(date(2026, 11, 2), date(2026, 11, 3)),
            ),
        ),
    )
    root = root_of(check(inv))
    assert texts(root, "rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [
        "Vielen Dank für Ihren Auftrag!",
        "Es gelten unsere AGB.",
    ]
    tx = "rsm:SupplyChainTradeTransaction"
    line = f"{tx}/ram:IncludedSupplyChainTradeLineItem"
    assert text(
        root, f"{line}/ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content"
    ) == ("Vorbestellung")
    product = root.find(f"{line}/ram:SpecifiedTradeProduct", NS)
    assert product is not None
    assert [(el.tag.split("}")[1], el.text, el.get("schemeID")) for el in product] == [
        ("GlobalID", "4012345678901", "0160"),
        ("SellerAssignedID", "NL-1001", None),
        ("BuyerAssignedID", "MUE-55", None),
        ("Name", "Kochbuch", None),
    ]
    assert texts(
        root,
        f"{line}/ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod//udt:DateTimeString",
    ) == ["20261102", "20261103"]
    assert texts(root, f"{HEADER}/ram:BillingSpecifiedPeriod//udt:DateTimeString") == [
        "20261101",
        "20261130",
    ]
    agreement = f"{tx}/ram:ApplicableHeaderTradeAgreement"
    assert text(root, f"{agreement}/ram:ContractReferencedDocument/ram:IssuerAssignedID") == (
        "RV-2026-7"
    )
    ship = f"{tx}/ram:ApplicableHeaderTradeDelivery/ram:ShipToTradeParty"
    assert text(root, f"{ship}/ram:Name") == "Lager Süd"
    assert text(root, f"{ship}/ram:PostalTradeAddress/ram:CountrySubDivisionName") == "BY"
    assert (
        text(
            root,
            f"{tx}/ram:ApplicableHeaderTradeDelivery/ram:ActualDeliverySupplyChainEvent/"
            "ram:OccurrenceDateTime/udt:DateTimeString",
        )
        == "20261120"
    )
    terms = f"{HEADER}/ram:SpecifiedTradePaymentTerms"
    assert text(root, f"{terms}/ram:Description") == "14 Tage netto"
    assert text(root, f"{terms}/ram:DueDateDateTime/udt:DateTimeString") == "20261208"


def test_a_company_with_a_person_names_the_person_as_contact() -> None:
    party = Party(name="Jane Doe", company="ACME Ltd", email="jane@acme.example", phone="+1 555")
    assert einvoice.party_contact(party) == Contact("Jane Doe", "+1 555", "jane@acme.example")
    assert einvoice.party_contact(Party(name="ACME Ltd")) is None
    given = Party(name="ACME", contact=Contact(name="Desk"), email="a@acme.example")
    assert einvoice.party_contact(given) == Contact("Desk", None, "a@acme.example")


# --- credit notes, corrections ----------------------------------------------------------------


def test_credit_note_refers_to_the_preceding_invoice() -> None:
    inv = german_b2b(
        number="GS-2026-0007",
        document_type="credit_note",
        preceding_invoices=(DocumentReference("RE-2026-0042", date(2026, 11, 24)),),
        amount_paid=D(0),
    )
    root = root_of(check(inv))
    assert text(root, "rsm:ExchangedDocument/ram:TypeCode") == "381"
    ref = f"{HEADER}/ram:InvoiceReferencedDocument"
    assert text(root, f"{ref}/ram:IssuerAssignedID") == "RE-2026-0042"
    assert text(root, f"{ref}/ram:FormattedIssueDateTime/qdt:DateTimeString") == "20261124"
    # credit notes carry positive amounts
    assert not text(root, f"{SUMMATION}/ram:DuePayableAmount").startswith("-")


def test_corrected_invoice_with_several_preceding_invoices_keeps_them_all() -> None:
    inv = german_b2b(
        document_type="corrected",
        preceding_invoices=(
            DocumentReference("RE-2026-0040", date(2026, 11, 2)),
            DocumentReference("RE-2026-0041"),
        ),
    )
    root = root_of(check(inv))
    assert text(root, "rsm:ExchangedDocument/ram:TypeCode") == "384"
    assert text(root, f"{HEADER}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == (
        "RE-2026-0040"
    )
    assert texts(root, "rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [
        "Preceding invoices: RE-2026-0040 (2026-11-02), RE-2026-0041"
    ]


# --- every VAT category -----------------------------------------------------------------------


def buyer_fr() -> Party:
    return Party(
        name="Librairie Dupont SARL",
        postal=PostalAddress("FR", ("12 rue de la Paix",), "Paris", "75002"),
        vat_id="FR12345678901",
        electronic_address=Identifier("factures@dupont.example", "EM"),
    )


def buyer_ch() -> Party:
    return Party(
        name="Buchhaus Zürich AG",
        postal=PostalAddress("CH", ("Bahnhofstrasse 1",), "Zürich", "8001"),
        electronic_address=Identifier("kreditoren@buchhaus.example", "EM"),
    )


def with_category(
    inv: Invoice, category: str, rate: D | None, reason: str | None = None, code: str | None = None
) -> Invoice:
    """Every line and the shipping in one VAT category (and its exemption reason)."""
    items = tuple(replace(it, tax_category=category, tax_rate=rate) for it in inv.items)
    exemptions = () if reason is None else (TaxExemption(category, reason, code),)
    return replace(
        inv,
        items=items,
        shipping_tax_category=category,
        shipping_tax_rate=rate,
        tax_exemptions=exemptions,
    )


def category_cases() -> dict[str, Invoice]:
    base = german_b2b(discount=Discount("percent", D("2")))
    seller_without_vat = replace(seller_de(), vat_id=None)
    return {
        "S": with_category(base, "S", D("19")),
        "Z": with_category(base, "Z", D("0")),
        "E": with_category(base, "E", None, "Steuerfrei nach § 4 Nr. 21 UStG", "VATEX-EU-132-1I"),
        "AE": replace(
            with_category(base, "AE", None, "Reverse charge", "VATEX-EU-AE"), bill_to=buyer_fr()
        ),
        "K": replace(
            with_category(base, "K", None, "Intra-community supply", "VATEX-EU-IC"),
            bill_to=buyer_fr(),
            ship_to=Party(name="Entrepôt Dupont", postal=PostalAddress("FR", city="Lyon")),
        ),
        "G": replace(
            with_category(base, "G", None, "Export outside the EU", "VATEX-EU-G"),
            bill_to=buyer_ch(),
        ),
        "O": replace(
            with_category(base, "O", None, "Not subject to VAT", "VATEX-EU-O"),
            seller=seller_without_vat,
            bill_to=replace(buyer_de(), vat_id=None),
        ),
        "L": with_category(base, "L", D("7")),
        "M": with_category(base, "M", D("4")),
    }


CATEGORY_CASES = category_cases()


@pytest.mark.parametrize("category", list(CATEGORY_CASES))
def test_every_vat_category_passes(category: str) -> None:
    inv = CATEGORY_CASES[category]
    root = root_of(check(inv))
    assert set(texts(root, f"{HEADER}/ram:ApplicableTradeTax/ram:CategoryCode")) == {category}
    rates = texts(root, f"{HEADER}/ram:ApplicableTradeTax/ram:RateApplicablePercent")
    if category == "O":
        assert rates == []  # BR-O-05: no rate at all
    exemption = einvoice.exemption(inv, category)
    if exemption is not None:
        assert texts(root, f"{HEADER}/ram:ApplicableTradeTax/ram:ExemptionReasonCode") == [
            exemption.code
        ]


def test_mixed_categories_in_one_invoice() -> None:
    inv = german_b2b(
        items=(
            *german_b2b().items,
            LineItem("Versandkarton", D("2"), D("1.50"), tax_category="Z", tax_rate=D("0")),
            LineItem("Seminar", D("1"), D("300"), tax_category="E"),
        ),
        discount=Discount("amount", D("50.00")),
        tax_exemptions=(TaxExemption("E", "Steuerfrei nach § 4 Nr. 21 UStG"),),
    )
    root = root_of(check(inv))
    assert texts(root, f"{HEADER}/ram:ApplicableTradeTax/ram:CategoryCode") == [
        "E",
        "Z",
        "S",
        "S",
    ]


# --- currencies, allowances, charges ------------------------------------------------------------


def jpy_invoice(**changes: object) -> Invoice:
    items = tuple(
        replace(it, unit_price=(it.unit_price * 100).quantize(D(1))) for it in german_b2b().items
    )
    return german_b2b(
        currency="JPY",
        items=items,
        shipping=D("1850"),
        amount_paid=D("10000"),
        payment=PaymentDetails(iban="DE89 3704 0044 0532 0130 00", bic="COBADEFFXXX"),
        **changes,
    )


@pytest.mark.parametrize(
    "discount",
    [None, Discount("percent", D("3")), Discount("amount", D("1234"))],
    ids=["none", "percent", "amount"],
)
def test_jpy_has_no_decimals(discount: Discount | None) -> None:
    inv = jpy_invoice(discount=discount)
    root = root_of(check(inv))
    assert "." not in text(root, f"{SUMMATION}/ram:GrandTotalAmount")
    # not EUR with an IBAN: a credit transfer (30), not a SEPA one (58)
    assert text(root, f"{HEADER}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "30"


@pytest.mark.parametrize(
    ("discount", "shipping"),
    [
        (None, D(0)),
        (None, D("18.50")),
        (Discount("percent", D("3")), D(0)),
        (Discount("percent", D("3")), D("18.50")),
        (Discount("amount", D("100.00")), D(0)),
        (Discount("amount", D("100.01")), D("18.50")),
    ],
    ids=["plain", "shipping", "percent", "percent+shipping", "amount", "amount+shipping"],
)
def test_invoice_discount_and_shipping(discount: Discount | None, shipping: D) -> None:
    inv = german_b2b(discount=discount, shipping=shipping)
    root = root_of(check(inv))
    charges = root.findall(f"{HEADER}/ram:SpecifiedTradeAllowanceCharge", NS)
    for c in charges:
        if text(c, "ram:ChargeIndicator/udt:Indicator") == "false":
            assert (text(c, "ram:ReasonCode"), text(c, "ram:Reason")) == ("95", "Discount")
            assert texts(c, "ram:CalculationPercent") == (
                ["3"] if discount is not None and discount.kind == "percent" else []
            )
        else:
            assert (text(c, "ram:ReasonCode"), text(c, "ram:Reason")) == ("FC", "Shipping")


def test_line_discounts_in_percent_and_amount() -> None:
    inv = german_b2b(
        items=(
            LineItem(
                "A", D("10"), D("39.90"), tax_rate=D("7"), discount=Discount("percent", D("15"))
            ),
            # 15 % of 399.50 is 59.925: the line amount is round(399.50 - 59.925) = 339.58, so
            # the allowance is 399.50 - 339.58 = 59.92 (and 15 % of 399.50 is not written)
            LineItem(
                "A2", D("10"), D("39.95"), tax_rate=D("7"), discount=Discount("percent", D("15"))
            ),
            LineItem(
                "B", D("1"), D("149.00"), tax_rate=D("19"), discount=Discount("amount", D("20"))
            ),
            # a price with more digits than the currency: the percentage is not written when
            # it does not give the allowance exactly
            LineItem(
                "C", D("3"), D("0.125"), tax_rate=D("19"), discount=Discount("percent", D("10"))
            ),
            LineItem(
                "D", D("7"), D("1.99"), tax_rate=D("19"), discount=Discount("percent", D("0"))
            ),
        ),
        discount=Discount("percent", D("3")),
    )
    root = root_of(check(inv))
    lines = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS)
    allowance = "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge"
    assert texts(lines[0], f"{allowance}/ram:ActualAmount") == ["59.85"]
    assert texts(lines[0], f"{allowance}/ram:CalculationPercent") == ["15"]
    assert texts(lines[0], f"{allowance}/ram:BasisAmount") == ["399.00"]
    assert texts(lines[1], f"{allowance}/ram:ActualAmount") == ["59.92"]
    assert texts(lines[1], f"{allowance}/ram:CalculationPercent") == []
    assert texts(lines[2], f"{allowance}/ram:ActualAmount") == ["20.00"]
    assert texts(lines[2], f"{allowance}/ram:CalculationPercent") == []
    assert texts(lines[4], f"{allowance}/ram:ActualAmount") == []  # 0 %: no allowance


def test_negative_credit_lines() -> None:
    inv = german_b2b(
        items=(
            *german_b2b().items,
            LineItem("Gutschrift Remission", D("1"), D("-49.80"), tax_rate=D("7"), credit=True),
            LineItem("Rücknahme", D("-2"), D("24.90"), tax_rate=D("7"), credit=True),
        ),
        discount=Discount("percent", D("3")),
    )
    root = root_of(check(inv))
    lines = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS)
    # BR-27: the net price is never negative; the sign is in the quantity
    assert [
        (
            text(
                li, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount"
            ),
            text(li, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"),
        )
        for li in lines[3:]
    ] == [("49.8", "-1"), ("24.9", "-2")]


def test_an_amount_discount_reduces_a_credit_line() -> None:
    """A line discount given as an amount takes the sign of a credit line (-1 x 10.00 less
    4.00 is -6.00, not -14.00): the allowance is gross - amount (-4.00), so price x quantity
    - allowance = line amount, and the official rules pass."""
    credit = LineItem(
        "Rücknahme",
        D("-1"),
        D("10.00"),
        tax_rate=D("19"),
        credit=True,
        discount=Discount("amount", D("4.00")),
    )
    inv = german_b2b(items=(*german_b2b().items, credit))
    lines = root_of(check(inv)).findall(
        "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS
    )
    settlement = "ram:SpecifiedLineTradeSettlement"
    assert (
        text(
            lines[-1],
            f"{settlement}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        )
        == "-6.00"
    )
    assert texts(lines[-1], f"{settlement}/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount") == [
        "-4.00"
    ]


def test_three_hundred_lines() -> None:
    items = tuple(
        LineItem(
            f"Artikel {n}",
            D(n % 7 + 1),
            D(f"{n % 50 + 1}.{n % 100:02d}"),
            tax_rate=D("7") if n % 3 else D("19"),
            unit_code="HUR" if n % 5 == 0 else None,
            discount=Discount("percent", D("5")) if n % 11 == 0 else None,
        )
        for n in range(1, 301)
    )
    inv = german_b2b(items=items, discount=Discount("amount", D("99.99")))
    root = root_of(check(inv))
    assert len(root.findall(".//ram:IncludedSupplyChainTradeLineItem", NS)) == 300


# --- the shipped examples ---------------------------------------------------------------------

#: what each example lacks to be an e-invoice: the parties' countries (its currency's)
EXAMPLE_COUNTRIES = {
    "eur-two-rates.json": ("DE", "DE"),
    "invoice-generator.json": ("US", "US"),
    "jpy-no-decimals.json": ("JP", "US"),
    "kwd-three-decimals.json": ("KW", "KW"),
    "legacy-flat.json": ("US", "US"),
    "long-300-lines.json": ("GB", "GB"),
    "minimal.json": ("DE", "DE"),
    "non-latin.json": ("GR", "RU"),
}


def upgraded(party: Party, country: str, *, seller: bool) -> Party:
    """A party with a structured address (its lines kept), a VAT id for a seller who names
    none, and an electronic address."""
    lines = tuple(party.address[:3]) or ("Street 1",)
    return replace(
        party,
        address=(),
        postal=PostalAddress(country, lines, city="City"),
        vat_id=(party.vat_id or f"{country}123456789") if seller else party.vat_id,
        electronic_address=Identifier(f"{country.lower()}@example.com", "EM"),
    )


def as_einvoice(inv: Invoice, seller_country: str, buyer_country: str) -> Invoice:
    """What an e-invoice needs and a plain example lacks: countries, a VAT id, unit codes for
    unknown unit texts, an exemption for the untaxed lines and shipping, a due date."""
    items = tuple(
        replace(
            it,
            unit_code=it.unit_code if it.unit is None or it.unit_code else "C62",
            tax_category="E" if it.tax_rate is None else it.tax_category,
        )
        for it in inv.items
    )
    untaxed_shipping = bool(inv.shipping) and inv.shipping_vat_category is None
    needs_exemption = untaxed_shipping or any(it.tax_category == "E" for it in items)
    return replace(
        inv,
        seller=upgraded(inv.seller, seller_country, seller=True),
        bill_to=upgraded(inv.bill_to, buyer_country, seller=False),
        ship_to=None if inv.ship_to is None else upgraded(inv.ship_to, buyer_country, seller=False),
        items=items,
        shipping_tax_category="E" if untaxed_shipping else inv.shipping_tax_category,
        due_date=inv.due_date or inv.issue_date,
        tax_exemptions=(TaxExemption("E", "Exempt"),) if needs_exemption else (),
    )


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_the_examples_as_einvoices(name: str) -> None:
    """Every example: an e-invoice example as it is; a plain one upgraded in memory with what
    it lacks (its parties' countries from EXAMPLE_COUNTRIES); a 3-decimal currency (KWD) is
    no EN 16931 invoice, and the official decimal rules say so."""
    inv = parse_invoice((EXAMPLES / name).read_bytes()).invoice
    if inv.seller.postal is None:
        assert name in EXAMPLE_COUNTRIES, f"{name}: name its parties' countries"
        inv = as_einvoice(inv, *EXAMPLE_COUNTRIES[name])
    if minor_digits(inv.currency) > 2:
        xml = cii_xml(inv)
        assert cii_schema_errors(xml) == []
        assert {a.id for a in fatal(xml, "cii")} >= {"BR-DEC-09", "BR-DEC-12"}
    else:
        check(inv)


# --- the Factur-X profile's schema -------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["sample", "xrechnung", "credit-note", *CATEGORY_CASES],
)
def test_the_factur_x_en16931_schema_accepts_it(case: str) -> None:
    """The same XML goes into the Factur-X PDF: Factur-X's own EN 16931 profile schema (a
    subset of D16B) accepts it too."""
    from facturx import xml_check_xsd

    inv = {
        "sample": german_b2b(),
        "xrechnung": german_b2b(buyer_reference=LEITWEG_ID),
        "credit-note": german_b2b(
            document_type="credit_note",
            preceding_invoices=(DocumentReference("RE-2026-0041"),),
        ),
    }.get(case) or CATEGORY_CASES[case]
    assert xml_check_xsd(cii_xml(inv), flavor="factur-x", level="en16931") is True


# --- the bytes ------------------------------------------------------------------------------


def test_deterministic_utf8_with_declaration() -> None:
    inv = german_b2b(buyer_reference=LEITWEG_ID)
    first = cii_xml(inv)
    assert first == cii_xml(german_b2b(buyer_reference=LEITWEG_ID))
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<rsm:CrossIndustryInvoice')
    assert "Müller & Söhne".encode() not in first  # escaped
    assert "Müller &amp; Söhne OHG".encode() in first


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (D("12.5"), "EUR", "12.50"),
        (D("1250"), "JPY", "1250"),
        (D("-0.00"), "EUR", "0.00"),
        (D("-0"), "JPY", "0"),
        (D("-3.10"), "EUR", "-3.10"),
    ],
)
def test_amounts_have_the_currency_digits(value: D, currency: str, text: str) -> None:
    assert amount(value, currency) == text


def test_render_cii_checks_then_writes() -> None:
    inv = german_b2b(buyer_reference=LEITWEG_ID)
    assert render_cii(inv) == cii_xml(inv)
