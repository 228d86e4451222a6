"""The UBL writer (Peppol BIS Billing 3.0 Invoice and CreditNote), validated with the official
EN 16931 UBL Schematron: zero fatal assertions for every document, and the money in the XML is
exactly what compute_totals says."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from invoiceflow.domain import einvoice
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
from invoiceflow.domain.money import round_money
from invoiceflow.domain.totals import compute_totals
from invoiceflow.einvoice.common import amount
from invoiceflow.einvoice.ubl import CAC_NS, CBC_NS, CREDIT_NOTE_NS, INVOICE_NS, ubl_xml
from support.einvoice_samples import buyer_de, german_b2b, seller_de
from support.official import assertions, fatal

D = Decimal
NS = {"cac": CAC_NS, "cbc": CBC_NS, "inv": INVOICE_NS, "cn": CREDIT_NOTE_NS}


# -- documents ------------------------------------------------------------------------------


def belgian_peppol() -> Invoice:
    """A Belgian B2B invoice as sent over Peppol: enterprise numbers (ICD 0208) as electronic
    addresses and legal ids, 21 % and 6 %, a buyer reference and an order reference."""
    seller = Party(
        name="Atelier Lumière SRL",
        postal=PostalAddress(
            country="BE",
            lines=("Rue de la Loi 16", "Boîte 3"),
            city="Bruxelles",
            postal_code="1000",
        ),
        vat_id="BE0123456749",
        legal_id=Identifier("0123456749", "0208"),
        electronic_address=Identifier("0123456749", "0208"),
        contact=Contact("Claire Dubois", "+32 2 123 45 67", "claire@lumiere.example"),
    )
    buyer = Party(
        name="Brouwerij Van Dijk",
        company="Brouwerij Van Dijk NV",
        postal=PostalAddress(
            country="BE",
            lines=("Markt 1",),
            city="Gent",
            postal_code="9000",
            subdivision="Oost-Vlaanderen",
        ),
        vat_id="BE0987654394",
        legal_id=Identifier("0987654394", "0208"),
        electronic_address=Identifier("0987654394", "0208"),
    )
    return Invoice(
        number="2026/0117",
        issue_date=date(2026, 11, 27),
        due_date=date(2026, 12, 27),
        currency="EUR",
        locale="fr-BE",
        seller=seller,
        bill_to=buyer,
        buyer_reference="PO-BVD-2211",
        purchase_order="BVD-2211",
        contract="FW-2026-04",
        invoicing_period=Period(date(2026, 11, 1), date(2026, 11, 30)),
        items=(
            LineItem(
                description="Éclairage de scène, location mensuelle",
                quantity=D("1"),
                unit_code="MON",
                unit_price=D("1450.00"),
                tax_rate=D("21"),
                sku="LOC-SCN-01",
                buyer_item_id="BVD-7781",
                note="Contrat cadre FW-2026-04",
            ),
            LineItem(
                description="Brochures imprimées",
                quantity=D("500"),
                unit_code="C62",
                unit_price=D("0.385"),
                tax_rate=D("6"),
                standard_id=Identifier("5412345000013", "0160"),
            ),
        ),
        payment=PaymentDetails(
            account_holder="Atelier Lumière SRL",
            iban="BE71 0961 2345 6769",
            bic="GKCCBEBB",
            reference="+++090/9337/55493+++",
        ),
        payment_terms="30 jours fin de mois",
    )


def credit_note() -> Invoice:
    """A credit note for part of an earlier invoice, with a due date for the refund."""
    return german_b2b(
        number="GS-2026-0007",
        document_type="credit_note",
        preceding_invoices=(DocumentReference("RE-2026-0042", date(2026, 11, 24)),),
        items=(
            LineItem(
                description="Rücksendung: Kochbuch",
                quantity=D("3"),
                unit="Stk.",
                unit_price=D("24.90"),
                tax_rate=D("7"),
                sku="NL-1001",
            ),
        ),
        shipping=D(0),
        shipping_tax_rate=None,
        amount_paid=D(0),
        payment_terms=None,
        notes="Gutschrift zu RE-2026-0042",
    )


def exempt(category: str, reason: str, code: str) -> TaxExemption:
    return TaxExemption(category, reason, code)


def with_category(category: str) -> Invoice:
    """The German sample with every line (and shipping) in one VAT category, with what the
    category's BR-x rules ask for."""
    rates: dict[str, Decimal | None] = {
        "S": D("19"),
        "Z": D("0"),
        "E": None,
        "AE": None,
        "K": None,
        "G": None,
        "O": None,
        "L": D("7"),
        "M": D("4"),
    }
    base = german_b2b()
    items = tuple(replace(it, tax_category=category, tax_rate=rates[category]) for it in base.items)
    changes: dict[str, Any] = {
        "items": items,
        "shipping_tax_category": category,
        "shipping_tax_rate": rates[category],
    }
    exemptions = {
        "E": exempt("E", "Steuerfrei nach § 4 Nr. 14 UStG", "VATEX-EU-132-1B"),
        "AE": exempt("AE", "Reverse charge", "VATEX-EU-AE"),
        "K": exempt("K", "Intra-community supply", "VATEX-EU-IC"),
        "G": exempt("G", "Export outside the EU", "VATEX-EU-G"),
        "O": exempt("O", "Not subject to VAT", "VATEX-EU-O"),
    }
    if category in exemptions:
        changes["tax_exemptions"] = (exemptions[category],)
    if category in ("AE", "K"):
        # an intra-EU buyer with a VAT id; K also needs the deliver-to country (BR-IC-12)
        buyer = replace(
            buyer_de(),
            postal=PostalAddress(
                country="AT", lines=("Graben 1",), city="Wien", postal_code="1010"
            ),
            vat_id="ATU12345678",
        )
        changes["bill_to"] = buyer
        changes["ship_to"] = replace(buyer, name="Lager Wien", company=None)
    if category == "G":
        changes["bill_to"] = replace(
            buyer_de(),
            postal=PostalAddress(
                country="CH", lines=("Bahnhofstr. 1",), city="Zürich", postal_code="8001"
            ),
            vat_id=None,
        )
    if category == "O":
        # outside the scope of VAT: no VAT id anywhere (BR-O-02..04)
        changes["seller"] = replace(seller_de(), vat_id=None)
        changes["bill_to"] = replace(buyer_de(), vat_id=None)
    return replace(base, **changes)


def many_lines(n: int = 300) -> Invoice:
    items = tuple(
        LineItem(
            description=f"Artikel {i}",
            quantity=D(i % 7 + 1),
            unit_code="C62",
            unit_price=D("3.33") + D(i) / 100,
            tax_rate=D("19") if i % 3 else D("7"),
            sku=f"SKU-{i:04d}",
            discount=Discount("percent", D("2.5")) if i % 10 == 0 else None,
        )
        for i in range(1, n + 1)
    )
    return german_b2b(items=items, discount=Discount("percent", D("3")))


def line_discounts() -> Invoice:
    base = german_b2b()
    items = (
        replace(base.items[0], discount=Discount("percent", D("12.5"))),
        replace(base.items[1], discount=Discount("amount", D("15.00"))),
        # 3 x 3.335 = 10.005, 50 % of it: the gross (10.01) less the amount (5.00) is the
        # allowance, so quantity x price - allowance is the line amount to the cent
        LineItem(
            description="Lesezeichen",
            quantity=D("3"),
            unit_code="C62",
            unit_price=D("3.335"),
            tax_rate=D("19"),
            discount=Discount("percent", D("50")),
        ),
        base.items[2],
    )
    return replace(base, items=items)


def negative_lines() -> Invoice:
    base = german_b2b()
    items = (
        *base.items,
        LineItem(
            description="Rücknahme Bildband (beschädigt)",
            quantity=D("-2"),
            unit_code="C62",
            unit_price=D("39.95"),
            tax_rate=D("7"),
            credit=True,
        ),
        LineItem(
            description="Gutschrift Layoutkorrektur",
            quantity=D("1.5"),
            unit_code="HUR",
            unit_price=D("-68.00"),
            tax_rate=D("19"),
            credit=True,
        ),
    )
    return replace(base, items=items)


def yen() -> Invoice:
    base = german_b2b()
    items = tuple(replace(it, unit_price=D(int(it.unit_price * 150))) for it in base.items)
    return replace(
        base,
        currency="JPY",
        items=items,
        shipping=D("2800"),
        amount_paid=D("15000"),
        discount=Discount("amount", D("1001")),
    )


DOCUMENTS: dict[str, Callable[[], Invoice]] = {
    "german-b2b": german_b2b,
    "belgian-peppol": belgian_peppol,
    "credit-note": credit_note,
    "corrected": lambda: german_b2b(
        document_type="corrected",
        preceding_invoices=(DocumentReference("RE-2026-0041", date(2026, 11, 20)),),
    ),
    "xrechnung-style": lambda: german_b2b(
        buyer_reference="04011000-12345-67",
        contract="V-2026-1",
        notes="Danke!",
        terms="Es gelten unsere AGB.",
    ),
    "discount-percent": lambda: german_b2b(discount=Discount("percent", D("5"))),
    "discount-amount": lambda: german_b2b(discount=Discount("amount", D("33.33"))),
    "no-shipping": lambda: german_b2b(shipping=D(0), shipping_tax_rate=None),
    "shipping-own-rate": lambda: german_b2b(shipping_tax_rate=D("7")),
    "line-discounts": line_discounts,
    "negative-lines": negative_lines,
    "jpy": yen,
    "eur-fractional-prices": lambda: german_b2b(
        items=(
            LineItem(
                description="Druckminuten",
                quantity=D("1234.5"),
                unit_code="MIN",
                unit_price=D("0.0125"),
                tax_rate=D("19"),
            ),
        )
    ),
    "ship-to": lambda: german_b2b(
        ship_to=Party(
            name="Filiale Nord",
            postal=PostalAddress(
                country="DE",
                lines=("Nordstr. 5", "Hof 2", "Tor 3"),
                city="Kiel",
                postal_code="24103",
                subdivision="SH",
            ),
        ),
        invoicing_period=Period(date(2026, 11, 1), date(2026, 11, 30)),
    ),
}

CATEGORIES = ["S", "Z", "E", "AE", "K", "G", "O", "L", "M"]


# -- reading the XML back -------------------------------------------------------------------


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml)


def texts(node: Any, path: str) -> list[str]:
    return [e.text for e in node.xpath(path, namespaces=NS)]


def one(node: Any, path: str) -> str:
    found = texts(node, path)
    assert len(found) == 1, (path, found)
    return found[0]


def assert_money_matches(inv: Invoice, xml: bytes) -> None:
    """Every amount in the XML is compute_totals' figure, formatted with the currency's
    minor digits and carrying the document currency."""
    t = compute_totals(inv)
    cur = inv.currency
    root = parse(xml)
    assert set(root.xpath("//@currencyID")) == {cur}
    m = "cac:LegalMonetaryTotal/cbc:"
    assert one(root, m + "LineExtensionAmount") == amount(t.subtotal, cur)
    assert one(root, m + "TaxExclusiveAmount") == amount(t.subtotal - t.discount + t.shipping, cur)
    assert one(root, m + "TaxInclusiveAmount") == amount(t.total, cur)
    assert one(root, m + "PayableAmount") == amount(t.balance_due, cur)
    assert texts(root, m + "AllowanceTotalAmount") == (
        [amount(t.discount, cur)] if t.discount else []
    )
    assert texts(root, m + "ChargeTotalAmount") == ([amount(t.shipping, cur)] if t.shipping else [])
    assert texts(root, m + "PrepaidAmount") == (
        [amount(t.amount_paid, cur)] if t.amount_paid else []
    )
    assert one(root, "cac:TaxTotal/cbc:TaxAmount") == amount(t.tax, cur)
    subtotals = root.xpath("cac:TaxTotal/cac:TaxSubtotal", namespaces=NS)
    assert len(subtotals) == len(t.groups)
    for sub, g in zip(subtotals, t.groups, strict=True):
        assert one(sub, "cbc:TaxableAmount") == amount(g.base, cur)
        assert one(sub, "cbc:TaxAmount") == amount(g.tax, cur)
        assert one(sub, "cac:TaxCategory/cbc:ID") == g.category
        rate = einvoice.xml_rate(g.category, g.rate)
        percents = texts(sub, "cac:TaxCategory/cbc:Percent")
        assert [D(p) for p in percents] == ([] if rate is None else [rate])
    allowances = root.xpath("cac:AllowanceCharge[cbc:ChargeIndicator='false']", namespaces=NS)
    charges = root.xpath("cac:AllowanceCharge[cbc:ChargeIndicator='true']", namespaces=NS)
    assert [one(a, "cbc:Amount") for a in allowances] == [
        amount(g.discount, cur) for g in t.groups if g.discount
    ]
    assert [one(c, "cbc:Amount") for c in charges] == [
        amount(g.shipping, cur) for g in t.groups if g.shipping
    ]
    line_tag = "cac:CreditNoteLine" if inv.document_type == "credit_note" else "cac:InvoiceLine"
    lines = root.xpath(line_tag, namespaces=NS)
    assert len(lines) == len(t.lines)
    for node, lt in zip(lines, t.lines, strict=True):
        assert one(node, "cbc:LineExtensionAmount") == amount(lt.amount, cur)
        line_allowances = texts(node, "cac:AllowanceCharge/cbc:Amount")
        expected = [amount(lt.gross - lt.amount, cur)] if lt.gross != lt.amount else []
        assert line_allowances == expected


def assert_peppol_consistency(xml: bytes) -> None:
    """What Peppol BIS 3.0 adds on top of EN 16931 and a writer can get wrong by itself (its
    Schematron is not in ../shared): no empty element (PEPPOL-EN16931-R008), at most one
    document note (R002), allowance amount = base x percentage / 100 within 0.02 (R040), both
    or neither of base and percentage (R041/R042), line amount = quantity x price - line
    allowances within 0.02 (R120)."""
    root = parse(xml)
    for node in root.iter():
        assert len(node) or (node.text or "").strip(), etree.QName(node).localname
    assert len(texts(root, "cbc:Note")) <= 1
    for ac in root.xpath("//cac:AllowanceCharge", namespaces=NS):
        base = texts(ac, "cbc:BaseAmount")
        factor = texts(ac, "cbc:MultiplierFactorNumeric")
        assert len(base) == len(factor)
        if base:
            expected = D(base[0]) * D(factor[0]) / 100
            assert abs(D(one(ac, "cbc:Amount")) - expected) <= D("0.02")
    lines = root.xpath("cac:InvoiceLine | cac:CreditNoteLine", namespaces=NS)
    for line in lines:
        quantity = D(one(line, "cbc:InvoicedQuantity | cbc:CreditedQuantity"))
        price = D(one(line, "cac:Price/cbc:PriceAmount"))
        assert price >= 0  # BR-27
        allowances = sum((D(a) for a in texts(line, "cac:AllowanceCharge/cbc:Amount")), D(0))
        net = D(one(line, "cbc:LineExtensionAmount"))
        assert abs(quantity * price - allowances - net) <= D("0.02")


def assert_valid(inv: Invoice) -> bytes:
    """The official EN 16931 rules pass the UBL, its money is compute_totals', Peppol's
    consistency rules hold, and the native check (EN 16931 and the Peppol rules it knows)
    passes the document: render_ubl would write it."""
    from invoiceflow.domain.en16931 import check

    assert [(p.rule, p.pointer) for p in check(inv, "ubl")] == []
    xml = ubl_xml(inv)
    failed = fatal(xml, "ubl")
    assert failed == [], "\n".join(f"{a.id}: {a.text} at {a.location}" for a in failed)
    assert_money_matches(inv, xml)
    assert_peppol_consistency(xml)
    return xml


# -- the official rules ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_pass_the_official_rules(name: str) -> None:
    assert_valid(DOCUMENTS[name]())


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_vat_category_passes_the_official_rules(category: str) -> None:
    inv = with_category(category)
    xml = assert_valid(inv)
    root = parse(xml)
    assert set(texts(root, "//cac:ClassifiedTaxCategory/cbc:ID")) == {category}
    assert set(texts(root, "//cac:TaxSubtotal/cac:TaxCategory/cbc:ID")) == {category}
    ex = einvoice.exemption(inv, category)
    codes = texts(root, "//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReasonCode")
    assert codes == ([ex.code] if ex is not None else [])


def test_the_german_sample_raises_not_even_a_warning() -> None:
    xml = assert_valid(german_b2b())
    assert assertions(xml, "ubl") == []


def test_a_300_line_invoice_passes() -> None:
    inv = many_lines()
    xml = assert_valid(inv)
    assert len(parse(xml).xpath("cac:InvoiceLine", namespaces=NS)) == 300


# -- the mapping ----------------------------------------------------------------------------


def test_header_and_parties() -> None:
    inv = belgian_peppol()
    root = parse(assert_valid(inv))
    assert root.tag == f"{{{INVOICE_NS}}}Invoice"
    assert one(root, "cbc:CustomizationID") == einvoice.PEPPOL_UBL
    assert one(root, "cbc:ProfileID") == einvoice.PEPPOL_PROFILE
    assert one(root, "cbc:InvoiceTypeCode") == "380"
    assert one(root, "cbc:DueDate") == "2026-12-27"
    assert one(root, "cbc:BuyerReference") == "PO-BVD-2211"
    assert one(root, "cac:OrderReference/cbc:ID") == "BVD-2211"
    assert one(root, "cac:ContractDocumentReference/cbc:ID") == "FW-2026-04"
    assert one(root, "cac:InvoicePeriod/cbc:StartDate") == "2026-11-01"
    seller = root.xpath("cac:AccountingSupplierParty/cac:Party", namespaces=NS)[0]
    endpoint = seller.xpath("cbc:EndpointID", namespaces=NS)[0]
    assert (endpoint.text, endpoint.get("schemeID")) == ("0123456749", "0208")
    assert one(seller, "cac:PostalAddress/cbc:StreetName") == "Rue de la Loi 16"
    assert one(seller, "cac:PostalAddress/cbc:AdditionalStreetName") == "Boîte 3"
    assert one(seller, "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID") == (
        "BE0123456749"
    )
    legal = seller.xpath("cac:PartyLegalEntity/cbc:CompanyID", namespaces=NS)[0]
    assert (legal.text, legal.get("schemeID")) == ("0123456749", "0208")
    assert one(seller, "cac:Contact/cbc:Name") == "Claire Dubois"
    buyer = root.xpath("cac:AccountingCustomerParty/cac:Party", namespaces=NS)[0]
    assert one(buyer, "cac:PartyLegalEntity/cbc:RegistrationName") == "Brouwerij Van Dijk NV"
    # a name other than the company's is the contact person's, as in CII (no trading name)
    assert texts(buyer, "cac:PartyName/cbc:Name") == []
    assert one(buyer, "cac:Contact/cbc:Name") == "Brouwerij Van Dijk"
    assert one(buyer, "cac:PostalAddress/cbc:CountrySubentity") == "Oost-Vlaanderen"
    means = root.xpath("cac:PaymentMeans", namespaces=NS)[0]
    assert one(means, "cbc:PaymentMeansCode") == "58"
    assert one(means, "cbc:PaymentID") == "+++090/9337/55493+++"
    assert one(means, "cac:PayeeFinancialAccount/cbc:ID") == "BE71096123456769"
    assert one(means, "cac:PayeeFinancialAccount/cbc:Name") == "Atelier Lumière SRL"
    assert one(means, "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID") == (
        "GKCCBEBB"
    )
    assert one(root, "cac:PaymentTerms/cbc:Note") == "30 jours fin de mois"


def test_seller_tax_registration_is_a_non_vat_tax_scheme() -> None:
    root = parse(ubl_xml(german_b2b()))
    seller = root.xpath("cac:AccountingSupplierParty/cac:Party", namespaces=NS)[0]
    assert one(seller, "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='FC']/cbc:CompanyID") == (
        "22/815/08154"
    )


def test_lines() -> None:
    inv = belgian_peppol()
    root = parse(ubl_xml(inv))
    first, second = root.xpath("cac:InvoiceLine", namespaces=NS)
    assert one(first, "cbc:Note") == "Contrat cadre FW-2026-04"
    qty = first.xpath("cbc:InvoicedQuantity", namespaces=NS)[0]
    assert (qty.text, qty.get("unitCode")) == ("1", "MON")
    assert one(first, "cac:Item/cbc:Name") == "Éclairage de scène, location mensuelle"
    assert one(first, "cac:Item/cac:BuyersItemIdentification/cbc:ID") == "BVD-7781"
    assert one(first, "cac:Item/cac:SellersItemIdentification/cbc:ID") == "LOC-SCN-01"
    gtin = second.xpath("cac:Item/cac:StandardItemIdentification/cbc:ID", namespaces=NS)[0]
    assert (gtin.text, gtin.get("schemeID")) == ("5412345000013", "0160")
    assert one(second, "cac:Price/cbc:PriceAmount") == "0.385"
    assert one(first, "cac:Price/cbc:PriceAmount") == "1450.00"
    assert one(second, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent") == "6"


def test_line_discount_is_gross_less_amount() -> None:
    inv = line_discounts()
    root = parse(assert_valid(inv))
    lines = root.xpath("cac:InvoiceLine", namespaces=NS)
    t = compute_totals(inv)
    pct = lines[0].xpath("cac:AllowanceCharge", namespaces=NS)[0]
    assert one(pct, "cbc:MultiplierFactorNumeric") == "12.5"
    assert one(pct, "cbc:BaseAmount") == amount(t.lines[0].gross, "EUR")
    assert one(pct, "cbc:AllowanceChargeReasonCode") == "95"
    fixed = lines[1].xpath("cac:AllowanceCharge", namespaces=NS)[0]
    assert one(fixed, "cbc:Amount") == "15.00"
    assert texts(fixed, "cbc:MultiplierFactorNumeric") == []
    # 10.005 rounds to a gross of 10.01; the amount is round(5.0025) = 5.00: allowance 5.01
    odd = lines[2].xpath("cac:AllowanceCharge", namespaces=NS)[0]
    assert (one(odd, "cbc:BaseAmount"), one(odd, "cbc:Amount")) == ("10.01", "5.01")
    assert one(lines[2], "cbc:LineExtensionAmount") == "5.00"


def test_negative_price_moves_its_sign_to_the_quantity() -> None:
    inv = negative_lines()
    root = parse(assert_valid(inv))
    lines = root.xpath("cac:InvoiceLine", namespaces=NS)
    assert one(lines[3], "cbc:InvoicedQuantity") == "-2"
    assert one(lines[3], "cac:Price/cbc:PriceAmount") == "39.95"
    assert one(lines[4], "cbc:InvoicedQuantity") == "-1.5"
    assert one(lines[4], "cac:Price/cbc:PriceAmount") == "68.00"
    assert one(lines[4], "cbc:LineExtensionAmount") == "-102.00"


def test_an_amount_discount_reduces_a_credit_line() -> None:
    """A line discount given as an amount takes the sign of a credit line (-1 x 10.00 less
    4.00 is -6.00, not -14.00), written as an allowance of gross - amount (-4.00)."""
    base = german_b2b()
    credit = LineItem(
        "Rücknahme",
        D("-1"),
        D("10.00"),
        tax_rate=D("19"),
        credit=True,
        unit_code="C62",
        discount=Discount("amount", D("4.00")),
    )
    root = parse(assert_valid(replace(base, items=(*base.items, credit))))
    line = root.xpath("cac:InvoiceLine", namespaces=NS)[-1]
    assert one(line, "cbc:LineExtensionAmount") == "-6.00"
    assert one(line, "cac:AllowanceCharge/cbc:Amount") == "-4.00"


def test_credit_note_root_lines_and_reference() -> None:
    inv = credit_note()
    root = parse(assert_valid(inv))
    assert root.tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    assert one(root, "cbc:CreditNoteTypeCode") == "381"
    assert texts(root, "cbc:InvoiceTypeCode") == []
    assert texts(root, "cbc:DueDate") == []  # no such element in a UBL credit note
    assert one(root, "cac:PaymentMeans/cbc:PaymentDueDate") == "2026-12-08"
    ref = "cac:BillingReference/cac:InvoiceDocumentReference/"
    assert (one(root, ref + "cbc:ID"), one(root, ref + "cbc:IssueDate")) == (
        "RE-2026-0042",
        "2026-11-24",
    )
    assert root.xpath("cac:InvoiceLine", namespaces=NS) == []
    line = root.xpath("cac:CreditNoteLine", namespaces=NS)[0]
    qty = line.xpath("cbc:CreditedQuantity", namespaces=NS)[0]
    assert (qty.text, qty.get("unitCode")) == ("3", "C62")
    assert one(line, "cbc:LineExtensionAmount") == "74.70"  # credit notes carry positive sums
    assert one(root, "cbc:Note") == "Gutschrift zu RE-2026-0042"


def test_corrected_invoice_is_an_invoice_with_type_384() -> None:
    root = parse(ubl_xml(DOCUMENTS["corrected"]()))
    assert root.tag == f"{{{INVOICE_NS}}}Invoice"
    assert one(root, "cbc:InvoiceTypeCode") == "384"
    assert one(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == ("RE-2026-0041")


def test_invoice_discount_is_one_allowance_per_tax_group() -> None:
    inv = german_b2b(discount=Discount("percent", D("5")))
    root = parse(assert_valid(inv))
    allowances = root.xpath("cac:AllowanceCharge[cbc:ChargeIndicator='false']", namespaces=NS)
    t = compute_totals(inv)
    assert len(allowances) == 2
    for node, g in zip(allowances, t.groups, strict=True):
        assert one(node, "cbc:AllowanceChargeReasonCode") == "95"
        assert one(node, "cbc:AllowanceChargeReason") == "Discount"
        assert one(node, "cbc:MultiplierFactorNumeric") == "5"
        assert one(node, "cbc:BaseAmount") == amount(g.lines, "EUR")
        assert D(one(node, "cac:TaxCategory/cbc:Percent")) == g.rate
    charge = root.xpath("cac:AllowanceCharge[cbc:ChargeIndicator='true']", namespaces=NS)[0]
    assert one(charge, "cbc:AllowanceChargeReasonCode") == "FC"
    assert one(charge, "cbc:AllowanceChargeReason") == "Shipping"


def test_yen_amounts_have_no_decimals() -> None:
    inv = yen()
    root = parse(assert_valid(inv))
    for text in texts(root, "//*[@currencyID]"):
        assert "." not in text, text
    assert one(root, "cac:PaymentMeans/cbc:PaymentMeansCode") == "30"  # an IBAN, not EUR
    assert round_money(D(one(root, "cac:TaxTotal/cbc:TaxAmount")), "JPY") == (
        compute_totals(inv).tax
    )


def test_ship_to_and_third_address_line() -> None:
    root = parse(assert_valid(DOCUMENTS["ship-to"]()))
    delivery = root.xpath("cac:Delivery", namespaces=NS)[0]
    assert one(delivery, "cbc:ActualDeliveryDate") == "2026-11-20"
    address = delivery.xpath("cac:DeliveryLocation/cac:Address", namespaces=NS)[0]
    assert one(address, "cac:AddressLine/cbc:Line") == "Tor 3"
    assert one(address, "cbc:CountrySubentity") == "SH"
    assert one(delivery, "cac:DeliveryParty/cac:PartyName/cbc:Name") == "Filiale Nord"


def test_notes_and_terms_share_the_one_document_note() -> None:
    root = parse(ubl_xml(DOCUMENTS["xrechnung-style"]()))
    assert texts(root, "cbc:Note") == ["Danke!\n\nEs gelten unsere AGB."]


# -- the bytes ------------------------------------------------------------------------------


def test_bytes_are_deterministic_utf8_with_a_declaration() -> None:
    xml = ubl_xml(belgian_peppol())
    assert xml == ubl_xml(belgian_peppol())
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice ')
    assert "Éclairage".encode() in xml


#: the UBL 2.1 schema order of the children this writer writes, per element (from
#: UBL-Invoice-2.1.xsd, UBL-CreditNote-2.1.xsd and UBL-CommonAggregateComponents-2.1.xsd)
ORDER: dict[str, list[str]] = {
    "Invoice": [
        "CustomizationID",
        "ProfileID",
        "ID",
        "IssueDate",
        "DueDate",
        "InvoiceTypeCode",
        "Note",
        "DocumentCurrencyCode",
        "BuyerReference",
        "InvoicePeriod",
        "OrderReference",
        "BillingReference",
        "ContractDocumentReference",
        "AccountingSupplierParty",
        "AccountingCustomerParty",
        "Delivery",
        "PaymentMeans",
        "PaymentTerms",
        "AllowanceCharge",
        "TaxTotal",
        "LegalMonetaryTotal",
        "InvoiceLine",
    ],
    "CreditNote": [
        "CustomizationID",
        "ProfileID",
        "ID",
        "IssueDate",
        "CreditNoteTypeCode",
        "Note",
        "DocumentCurrencyCode",
        "BuyerReference",
        "InvoicePeriod",
        "OrderReference",
        "BillingReference",
        "ContractDocumentReference",
        "AccountingSupplierParty",
        "AccountingCustomerParty",
        "Delivery",
        "PaymentMeans",
        "PaymentTerms",
        "AllowanceCharge",
        "TaxTotal",
        "LegalMonetaryTotal",
        "CreditNoteLine",
    ],
    "Party": [
        "EndpointID",
        "PartyIdentification",
        "PartyName",
        "PostalAddress",
        "PartyTaxScheme",
        "PartyLegalEntity",
        "Contact",
    ],
    "PostalAddress": [
        "StreetName",
        "AdditionalStreetName",
        "CityName",
        "PostalZone",
        "CountrySubentity",
        "AddressLine",
        "Country",
    ],
    "PartyTaxScheme": ["CompanyID", "TaxScheme"],
    "PartyLegalEntity": ["RegistrationName", "CompanyID"],
    "Contact": ["Name", "Telephone", "ElectronicMail"],
    "Delivery": ["ActualDeliveryDate", "DeliveryLocation", "DeliveryParty"],
    "PaymentMeans": ["PaymentMeansCode", "PaymentDueDate", "PaymentID", "PayeeFinancialAccount"],
    "PayeeFinancialAccount": ["ID", "Name", "FinancialInstitutionBranch"],
    "AllowanceCharge": [
        "ChargeIndicator",
        "AllowanceChargeReasonCode",
        "AllowanceChargeReason",
        "MultiplierFactorNumeric",
        "Amount",
        "BaseAmount",
        "TaxCategory",
    ],
    "TaxTotal": ["TaxAmount", "TaxSubtotal"],
    "TaxSubtotal": ["TaxableAmount", "TaxAmount", "TaxCategory"],
    "TaxCategory": ["ID", "Percent", "TaxExemptionReasonCode", "TaxExemptionReason", "TaxScheme"],
    "LegalMonetaryTotal": [
        "LineExtensionAmount",
        "TaxExclusiveAmount",
        "TaxInclusiveAmount",
        "AllowanceTotalAmount",
        "ChargeTotalAmount",
        "PrepaidAmount",
        "PayableAmount",
    ],
    "InvoiceLine": [
        "ID",
        "Note",
        "InvoicedQuantity",
        "LineExtensionAmount",
        "InvoicePeriod",
        "AllowanceCharge",
        "Item",
        "Price",
    ],
    "CreditNoteLine": [
        "ID",
        "Note",
        "CreditedQuantity",
        "LineExtensionAmount",
        "InvoicePeriod",
        "AllowanceCharge",
        "Item",
        "Price",
    ],
    "Item": [
        "Name",
        "BuyersItemIdentification",
        "SellersItemIdentification",
        "StandardItemIdentification",
        "ClassifiedTaxCategory",
    ],
    "InvoicePeriod": ["StartDate", "EndDate"],
}
ORDER["Address"] = ORDER["PostalAddress"]
ORDER["ClassifiedTaxCategory"] = ORDER["TaxCategory"]


@pytest.mark.parametrize(
    "name", ["belgian-peppol", "credit-note", "line-discounts", "ship-to", "xrechnung-style"]
)
def test_children_follow_the_schema_order(name: str) -> None:
    root = parse(ubl_xml(DOCUMENTS[name]()))
    for node in root.iter():
        local = etree.QName(node).localname
        if local not in ORDER:
            continue
        order = ORDER[local]
        children = [etree.QName(c).localname for c in node]
        assert all(c in order for c in children), (local, children)
        positions = [order.index(c) for c in children]
        assert positions == sorted(positions), (local, children)


def test_render_ubl_checks_the_rules_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from invoiceflow.domain import en16931
    from invoiceflow.einvoice.ubl import render_ubl
    from invoiceflow.errors import BusinessRuleViolation, Problem

    assert render_ubl(german_b2b()) == ubl_xml(german_b2b())
    seen: list[str] = []

    def broken(invoice: Invoice, syntax: str) -> list[Problem]:
        seen.append(syntax)
        return [Problem("/seller", "The seller has no name.", "BR-06")]

    monkeypatch.setattr(en16931, "check", broken)
    with pytest.raises(BusinessRuleViolation):
        render_ubl(german_b2b())
    assert seen == ["ubl"]


def test_random_documents_pass_with_the_money_of_compute_totals() -> None:
    """Seeded random documents: fractional and negative quantities, negative prices, line and
    invoice discounts of both kinds, shipping, several rates, EUR, USD and JPY, invoices and
    credit notes."""
    rng = random.Random(20261130)  # noqa: S311 (reproducible test data)
    for n in range(40):
        cur = rng.choice(["EUR", "USD", "JPY"])
        items = []
        for i in range(rng.randint(1, 8)):
            quantity = D(rng.randint(-3, 50) or 1) / rng.choice([1, 2, 4, 1000])
            if cur == "JPY":
                # Peppol's R120 allows 0.02 between quantity x price and the line amount,
                # which a JPY amount (whole yen) keeps only for whole quantities
                quantity = quantity.to_integral_value() or D(1)
            price = D(rng.randint(-500, 100000)) / rng.choice([1, 100, 1000])
            if cur == "JPY":
                price = price.to_integral_value()
            line_discount = rng.choice(
                [
                    None,
                    Discount("percent", D(rng.randint(1, 99)) / 2),
                    Discount("amount", D(rng.randint(1, 500)) / 100),
                ]
            )
            items.append(
                LineItem(
                    description=f"Position {i}",
                    quantity=quantity,
                    unit_price=price,
                    unit_code="C62",
                    tax_rate=rng.choice([D("19"), D("7"), D("0"), D("5.5")]),
                    discount=line_discount,
                    credit=quantity < 0 or price < 0,
                )
            )
        shipping = rng.choice([D(0), D("4.95"), D("18.50")])
        inv = german_b2b(
            number=f"R-{n}",
            currency=cur,
            items=tuple(items),
            discount=rng.choice(
                [
                    None,
                    Discount("percent", D(rng.randint(1, 30))),
                    Discount("amount", D(rng.randint(1, 5000)) / 100),
                ]
            ),
            shipping=shipping,
            shipping_tax_rate=D("19") if shipping else None,
            amount_paid=D(0) if cur == "JPY" else D("100.00"),
            document_type=rng.choice(["invoice", "credit_note"]),
        )
        assert_valid(inv)


def _broken(name: str) -> Invoice:
    base = german_b2b()
    first = base.items[0]
    if name == "BR-08":  # no seller postal address
        return replace(base, seller=replace(seller_de(), postal=None))
    if name == "BR-E-10":  # exempt without a reason
        return replace(with_category("E"), tax_exemptions=())
    if name == "BR-AE-02":  # reverse charge without the buyer's VAT id
        ae = with_category("AE")
        return replace(ae, bill_to=replace(ae.bill_to, vat_id=None))
    if name == "BR-O-02":  # outside the scope of VAT, but the seller names a VAT id
        return replace(with_category("O"), seller=seller_de())
    if name == "BR-IC-11":  # intra-community supply without a delivery date or period
        return replace(with_category("K"), delivery_date=None)
    if name == "BR-62":  # an electronic address without its scheme
        return replace(base, seller=replace(seller_de(), electronic_address=Identifier("x@y.z")))
    if name == "BR-23":  # a unit name with no Rec 20 code
        return replace(base, items=(replace(first, unit="Bündel"),))
    if name == "BR-S-05":  # standard rate at 0 %
        return replace(base, items=(replace(first, tax_category="S", tax_rate=D(0)),))
    if name == "BR-Z-05":  # zero rated with a rate
        return replace(base, items=(replace(first, tax_category="Z"),))
    if name == "BR-29":  # an invoicing period that ends before it starts
        return replace(base, invoicing_period=Period(date(2026, 11, 30), date(2026, 11, 1)))
    if name == "BR-64":  # a standard item id without its scheme
        return replace(base, items=(replace(first, standard_id=Identifier("4012345678901")),))
    if name == "BR-CO-04":  # a line without a VAT category
        return replace(base, items=(replace(first, tax_rate=None),))
    raise AssertionError(name)


@pytest.mark.parametrize(
    "rule",
    [
        "BR-08",
        "BR-E-10",
        "BR-AE-02",
        "BR-O-02",
        "BR-IC-11",
        "BR-62",
        "BR-23",
        "BR-S-05",
        "BR-Z-05",
        "BR-29",
        "BR-64",
        "BR-CO-04",
    ],
)
def test_a_broken_document_is_written_as_it_is_and_the_official_rule_sees_it(rule: str) -> None:
    """ubl_xml checks nothing (render_ubl does): what it writes for a document that breaks a
    rule is refused by the official Schematron with that rule's id, the id the native check
    must report for the same document."""
    reported = {a.id for a in fatal(ubl_xml(_broken(rule)), "ubl")}
    assert rule in reported, reported


def test_a_percentage_that_does_not_give_the_amount_is_left_out() -> None:
    """In JPY, 7 % of 2,179 yen is 152.53: the allowance is 153 yen, which Peppol's R040
    (0.02) would not accept beside the percentage; the amount alone is written. In EUR the
    percentage stays."""
    item = LineItem(
        description="Kalender",
        quantity=D("1"),
        unit_code="C62",
        unit_price=D("2179"),
        tax_rate=D("10"),
    )
    inv = german_b2b(
        currency="JPY",
        items=(item,),
        discount=Discount("percent", D("7")),
        shipping=D(0),
        shipping_tax_rate=None,
        amount_paid=D(0),
    )
    root = parse(assert_valid(inv))
    allowance = root.xpath("cac:AllowanceCharge", namespaces=NS)[0]
    assert one(allowance, "cbc:Amount") == "153"
    assert texts(allowance, "cbc:MultiplierFactorNumeric") == []
    assert texts(allowance, "cbc:BaseAmount") == []
    eur = parse(assert_valid(replace(inv, currency="EUR")))
    allowance = eur.xpath("cac:AllowanceCharge", namespaces=NS)[0]
    assert one(allowance, "cbc:Amount") == "152.53"
    assert one(allowance, "cbc:MultiplierFactorNumeric") == "7"


def test_a_plain_v1_document_is_written_and_refused_by_the_official_rules() -> None:
    """A document with none of the e-invoice fields (free address lines, no VAT category, an
    unknown unit) does not crash the writer; the official rules refuse what it writes, as the
    native check refuses the document before render_ubl writes anything."""
    inv = Invoice(
        number="1",
        issue_date=date(2026, 1, 1),
        currency="USD",
        seller=Party(name="A", address=("1 Main St",), email="a@example.com"),
        bill_to=Party(name="B", company="B Inc"),
        items=(
            LineItem(description="x", quantity=D(1), unit_price=D("9.99"), unit="widgets"),
            LineItem(description="y", quantity=D(2), unit_price=D("5"), tax_rate=D("8.875")),
        ),
        discount=Discount("amount", D("1")),
        shipping=D("5"),
        payment=PaymentDetails(account_number="123"),
    )
    reported = {a.id for a in fatal(ubl_xml(inv), "ubl")}
    assert {"BR-08", "BR-10", "BR-23", "BR-CO-04"} <= reported


# -- one mapping: the CII and UBL writers say the same -----------------------------------------


def _same_mapping_cases() -> dict[str, Invoice]:
    base = line_discounts()
    seller = replace(
        base.seller,
        company="Nordlicht Verlag GmbH",
        name="Anna Schmidt",
        contact=None,
        postal=PostalAddress(
            "DE", ("Hafenstraße 12", "", "Haus B", "3. OG", "Zimmer 7"), "Hamburg", "20457"
        ),
    )
    return {
        "discounts-and-four-address-lines": replace(
            base,
            seller=seller,
            notes="Danke!",
            terms="Es gelten unsere AGB.",
            discount=Discount("percent", D("3")),
        ),
        "negative-lines": negative_lines(),
        "direct-debit": german_b2b(
            payment=PaymentDetails(iban="DE89 3704 0044 0532 0130 00", means_code="59")
        ),
        "yen-percentages": replace(yen(), discount=Discount("percent", D("3"))),
    }


def _cii_facts(xml: bytes) -> dict[str, object]:
    import xml.etree.ElementTree as ET

    from invoiceflow.einvoice.cii import NAMESPACES as N

    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    tx = "rsm:SupplyChainTradeTransaction"
    seller = root.find(f"{tx}/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty", N)
    assert seller is not None
    settlement = f"{tx}/ram:ApplicableHeaderTradeSettlement"

    def allowance(el: ET.Element) -> tuple[str | None, ...]:
        return tuple(
            el.findtext(p, None, N)
            for p in (
                "ram:ChargeIndicator/udt:Indicator",
                "ram:ActualAmount",
                "ram:CalculationPercent",
                "ram:BasisAmount",
                "ram:ReasonCode",
                "ram:CategoryTradeTax/ram:CategoryCode",
            )
        )

    lines = root.findall(f"{tx}/ram:IncludedSupplyChainTradeLineItem", N)
    means = root.find(f"{settlement}/ram:SpecifiedTradeSettlementPaymentMeans", N)
    assert means is not None
    contact = "ram:DefinedTradeContact/"
    return {
        "name": seller.findtext("ram:Name", None, N),
        "contact": seller.findtext(f"{contact}ram:PersonName", None, N),
        "email": seller.findtext(f"{contact}ram:EmailURIUniversalCommunication/ram:URIID", None, N),
        "street": [
            seller.findtext(f"ram:PostalTradeAddress/ram:{tag}", None, N)
            for tag in ("LineOne", "LineTwo", "LineThree")
        ],
        "tax id": [
            (el.text, el.get("schemeID"))
            for el in seller.findall("ram:SpecifiedTaxRegistration/ram:ID", N)
        ],
        "note": "\n\n".join(
            el.text or ""
            for el in root.findall("rsm:ExchangedDocument/ram:IncludedNote/ram:Content", N)
        ),
        "lines": [
            (
                line.findtext("ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", None, N),
                line.findtext(
                    "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
                    None,
                    N,
                ),
                [
                    allowance(a)
                    for a in line.findall(
                        "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge", N
                    )
                ],
            )
            for line in lines
        ],
        "document allowances": [
            allowance(a) for a in root.findall(f"{settlement}/ram:SpecifiedTradeAllowanceCharge", N)
        ],
        "tax groups": [
            el.findtext("ram:CategoryCode", None, N)
            for el in root.findall(f"{settlement}/ram:ApplicableTradeTax", N)
        ],
        "means": means.findtext("ram:TypeCode", None, N),
        "payee account": means.findtext(
            "ram:PayeePartyCreditorFinancialAccount/ram:IBANID", None, N
        ),
        "debited account": means.findtext(
            "ram:PayerPartyDebtorFinancialAccount/ram:IBANID", None, N
        ),
    }


def _ubl_facts(xml: bytes) -> dict[str, object]:
    root = parse(xml)
    seller = root.xpath("cac:AccountingSupplierParty/cac:Party", namespaces=NS)[0]

    def first(node: Any, path: str) -> str | None:
        found = texts(node, path)
        return found[0] if found else None

    def allowance(el: Any) -> tuple[str | None, ...]:
        return tuple(
            first(el, p)
            for p in (
                "cbc:ChargeIndicator",
                "cbc:Amount",
                "cbc:MultiplierFactorNumeric",
                "cbc:BaseAmount",
                "cbc:AllowanceChargeReasonCode",
                "cac:TaxCategory/cbc:ID",
            )
        )

    address = "cac:PostalAddress/"
    means = root.xpath("cac:PaymentMeans", namespaces=NS)[0]
    return {
        "name": one(seller, "cac:PartyLegalEntity/cbc:RegistrationName"),
        "contact": first(seller, "cac:Contact/cbc:Name"),
        "email": first(seller, "cac:Contact/cbc:ElectronicMail"),
        "street": [
            first(seller, f"{address}{p}")
            for p in ("cbc:StreetName", "cbc:AdditionalStreetName", "cac:AddressLine/cbc:Line")
        ],
        "tax id": [
            (one(s, "cbc:CompanyID"), one(s, "cac:TaxScheme/cbc:ID").replace("VAT", "VA"))
            for s in seller.xpath("cac:PartyTaxScheme", namespaces=NS)
        ],
        "note": first(root, "cbc:Note") or "",
        "lines": [
            (
                one(line, "cbc:InvoicedQuantity | cbc:CreditedQuantity"),
                one(line, "cac:Price/cbc:PriceAmount"),
                [allowance(a) for a in line.xpath("cac:AllowanceCharge", namespaces=NS)],
            )
            for line in root.xpath("cac:InvoiceLine | cac:CreditNoteLine", namespaces=NS)
        ],
        "document allowances": [
            allowance(a) for a in root.xpath("cac:AllowanceCharge", namespaces=NS)
        ],
        "tax groups": texts(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID"),
        "means": one(means, "cbc:PaymentMeansCode"),
        "payee account": first(means, "cac:PayeeFinancialAccount/cbc:ID"),
        "debited account": first(means, "cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID"),
    }


def _same_price(text: str | None) -> str | None:
    """CII writes a price as plain decimal text, UBL with at least the currency's digits."""
    return None if text is None else str(D(text).normalize())


@pytest.mark.parametrize("name", list(_same_mapping_cases()))
def test_both_writers_write_the_same_mapping(name: str) -> None:
    """Names, contact, street lines, the BT-32 scheme, notes, net prices and quantities
    (BR-27), line and document allowances (percentage only when it gives the amount), the
    tax breakdown and the account of a direct debit: one decision (domain.einvoice), the
    same facts in both syntaxes."""
    from invoiceflow.einvoice.cii import cii_xml

    inv = _same_mapping_cases()[name]
    assert fatal(cii_xml(inv), "cii") == []
    assert fatal(ubl_xml(inv), "ubl") == []
    cii, ubl = _cii_facts(cii_xml(inv)), _ubl_facts(ubl_xml(inv))
    for facts in (cii, ubl):
        facts["lines"] = [
            (_same_price(q), _same_price(p), a)
            for q, p, a in facts["lines"]  # type: ignore[attr-defined]
        ]
    assert cii == ubl
    if name == "direct-debit":
        assert ubl["debited account"] == "DE89370400440532013000"
        assert ubl["payee account"] is None
    if name == "discounts-and-four-address-lines":
        assert ubl["street"] == ["Hafenstraße 12", "Haus B", "3. OG, Zimmer 7"]
        assert ubl["contact"] == "Anna Schmidt"
