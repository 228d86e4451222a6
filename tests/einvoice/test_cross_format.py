"""Money in the e-invoice XML equals the PDF and the workbook to the last minor unit.

For every example in events/examples/invoices/ (old and new) that can be written as an
e-invoice (the native EN 16931 rules accept it for both syntaxes), the amounts are read back
from each output independently: the CII and the UBL with ElementTree, the PDF's text with pypdf,
the workbook's cached values with openpyxl (what a viewer that does not calculate shows; the
render tests prove elsewhere that those are what the formulas compute). Compared: every line
amount, the sum of line amounts, the invoice discount and shipping (document allowance and
charge totals), the base and tax of each VAT group, the tax total, the total, the amount paid
and the balance due."""

from __future__ import annotations

import io
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import openpyxl
import pytest
from pypdf import PdfReader

from invoiceflow.domain import parse_invoice
from invoiceflow.domain.einvoice import xml_rate
from invoiceflow.domain.en16931 import check
from invoiceflow.domain.model import Identifier, Invoice, Party, PostalAddress, TaxExemption
from invoiceflow.domain.money import minor_digits, minor_unit
from invoiceflow.domain.totals import TaxGroup, compute_totals
from invoiceflow.domain.units import code_for_name
from invoiceflow.render import localize
from invoiceflow.render.content import balance_label, tax_groups, tax_line_label
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.view import build_view
from invoiceflow.render.xlsx import render_xlsx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "events" / "examples" / "invoices"
#: the examples written for issue 10: every one of them must be among the e-invoices here
NEW_EINVOICES = {
    "be-peppol-ubl.json",
    "ch-qr-bill.json",
    "de-credit-note.json",
    "de-facturx-b2b.json",
    "de-xrechnung-b2g.json",
    "eu-reverse-charge.json",
    "export-outside-eu.json",
    "fr-facturx.json",
}

CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


@dataclass(frozen=True)
class VatGroup:
    category: str
    rate: Decimal | None
    base: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Figures:
    """The money of one invoice as one output states it."""

    lines: tuple[Decimal, ...]
    subtotal: Decimal  # BT-106
    allowances: Decimal  # BT-107: the invoice discount
    charges: Decimal  # BT-108: shipping
    groups: tuple[VatGroup, ...]  # BG-23, sorted
    tax: Decimal  # BT-110
    total: Decimal  # BT-112
    paid: Decimal  # BT-113
    due: Decimal  # BT-115


#: the older examples, given in memory what an e-invoice needs and they lack, none of it money:
#: structured addresses with a country, a seller VAT id where none is named, unit codes for
#: unit texts no code is known for, the exemption category ``E`` for untaxed lines and
#: shipping, a due date. They bring 0-decimal JPY, USD, GBP, 300 lines, untaxed lines and the
#: two foreign formats into the comparison. name -> (seller's, buyer's country)
UPGRADES = {
    "eur-two-rates.json": ("DE", "DE"),
    "invoice-generator.json": ("US", "US"),
    "jpy-no-decimals.json": ("JP", "US"),
    "legacy-flat.json": ("US", "US"),
    "long-300-lines.json": ("GB", "GB"),
    "minimal.json": ("DE", "DE"),
    "non-latin.json": ("GR", "RU"),
}
UPGRADED = "+einvoice"


def _with_address(party: Party, country: str, *, seller: bool = False) -> Party:
    return replace(
        party,
        address=(),
        postal=PostalAddress(country=country, lines=party.address[:1]),
        legal_id=party.legal_id or Identifier("REG-0001"),
        electronic_address=party.electronic_address
        or Identifier("4000001123452", "0088"),  # GS1's example GLN: Peppol has no EM
        vat_id=party.vat_id or (f"{country}999999999" if seller else None),
    )


def upgraded(inv: Invoice, seller: str, buyer: str) -> Invoice:
    items = tuple(
        replace(
            it,
            unit_code=it.unit_code or ("C62" if it.unit and not code_for_name(it.unit) else None),
            tax_category="E"
            if it.tax_rate is None and it.tax_category is None
            else it.tax_category,
        )
        for it in inv.items
    )
    untaxed_shipping = bool(inv.shipping) and inv.shipping_vat_category is None
    exempt = untaxed_shipping or any(it.tax_category == "E" for it in items)
    return replace(
        inv,
        seller=_with_address(inv.seller, seller, seller=True),
        bill_to=_with_address(inv.bill_to, buyer),
        ship_to=inv.ship_to and _with_address(inv.ship_to, buyer),
        items=items,
        shipping_tax_category="E" if untaxed_shipping else inv.shipping_tax_category,
        tax_exemptions=(TaxExemption("E", "Exempt"),) if exempt else inv.tax_exemptions,
        due_date=inv.due_date or inv.issue_date,
        # Peppol (UBL) asks for a buyer reference or an order reference (PEPPOL-EN16931-R003)
        purchase_order=inv.purchase_order or (None if inv.buyer_reference else "PO-1"),
    )


@cache
def examples() -> dict[str, Invoice]:
    """Every example, and the upgraded older ones (named ``NAME+einvoice``)."""
    found = {p.name: parse_invoice(p.read_bytes()).invoice for p in sorted(EXAMPLES.glob("*.json"))}
    for name, (seller, buyer) in UPGRADES.items():
        found[name + UPGRADED] = upgraded(found[name], seller, buyer)
    return found


#: upgraded examples Peppol refuses as UBL, and why: 7 x 1080.5 yen is written as 7564, which
#: PEPPOL-EN16931-R120 (line net amount = quantity x price within 0.02) refuses; EN 16931
#: and so the CII take it
NOT_PEPPOL = {
    "jpy-no-decimals.json" + "+einvoice": {"PEPPOL-EN16931-R120"},
    # meant for CII only: an email address (EM), which Peppol's scheme list lacks
    "de-xrechnung-b2g.json": {"PEPPOL-EN16931-CL008"},
    "de-facturx-b2b.json": {"PEPPOL-EN16931-CL008"},
}


@cache
def einvoice_examples() -> tuple[str, ...]:
    """The examples the rules let through as CII and, but for NOT_PEPPOL's reasons, as UBL."""
    return tuple(
        name
        for name, inv in examples().items()
        if not check(inv, "cii")
        and {p.rule for p in check(inv, "ubl")} == NOT_PEPPOL.get(name, set())
    )


def _dec(text: str | None) -> Decimal:
    assert text is not None
    return Decimal(text.strip())


def _one(root: ET.Element, path: str, ns: dict[str, str], default: str | None = None) -> Decimal:
    found = root.findall(path, ns)
    assert len(found) <= 1, path
    if not found:
        assert default is not None, f"{path} missing"
        return Decimal(default)
    return _dec(found[0].text)


def _rate(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _sorted_groups(groups: list[VatGroup]) -> tuple[VatGroup, ...]:
    return tuple(sorted(groups, key=lambda g: (g.category, g.rate or Decimal(0))))


def cii_figures(xml: bytes, currency: str) -> Figures:
    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    tx = "rsm:SupplyChainTradeTransaction"
    settlement = root.find(f"{tx}/ram:ApplicableHeaderTradeSettlement", CII)
    assert settlement is not None
    lines = tuple(
        _dec(e.text)
        for e in root.findall(
            f"{tx}/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement/"
            "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
            CII,
        )
    )
    groups = [
        VatGroup(
            category=(t.findtext("ram:CategoryCode", None, CII) or "").strip(),
            rate=_rate(t.findtext("ram:RateApplicablePercent", None, CII)),
            base=_dec(t.findtext("ram:BasisAmount", None, CII)),
            tax=_dec(t.findtext("ram:CalculatedAmount", None, CII)),
        )
        for t in settlement.findall("ram:ApplicableTradeTax", CII)
    ]
    s = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", CII)
    assert s is not None
    tax_totals = [
        e for e in s.findall("ram:TaxTotalAmount", CII) if e.get("currencyID") == currency
    ]
    assert len(tax_totals) == 1
    return Figures(
        lines=lines,
        subtotal=_one(s, "ram:LineTotalAmount", CII),
        allowances=_one(s, "ram:AllowanceTotalAmount", CII, "0"),
        charges=_one(s, "ram:ChargeTotalAmount", CII, "0"),
        groups=_sorted_groups(groups),
        tax=_dec(tax_totals[0].text),
        total=_one(s, "ram:GrandTotalAmount", CII),
        paid=_one(s, "ram:TotalPrepaidAmount", CII, "0"),
        due=_one(s, "ram:DuePayableAmount", CII),
    )


def ubl_figures(xml: bytes, currency: str) -> Figures:
    root = ET.fromstring(xml)  # noqa: S314 (our own output)
    line_tag = "cac:CreditNoteLine" if root.tag.endswith("}CreditNote") else "cac:InvoiceLine"
    lines = tuple(_dec(e.text) for e in root.findall(f"{line_tag}/cbc:LineExtensionAmount", UBL))
    tax_totals = [
        t
        for t in root.findall("cac:TaxTotal", UBL)
        if any(a.get("currencyID") == currency for a in t.findall("cbc:TaxAmount", UBL))
    ]
    assert len(tax_totals) == 1
    groups = [
        VatGroup(
            category=(st.findtext("cac:TaxCategory/cbc:ID", None, UBL) or "").strip(),
            rate=_rate(st.findtext("cac:TaxCategory/cbc:Percent", None, UBL)),
            base=_dec(st.findtext("cbc:TaxableAmount", None, UBL)),
            tax=_dec(st.findtext("cbc:TaxAmount", None, UBL)),
        )
        for st in tax_totals[0].findall("cac:TaxSubtotal", UBL)
    ]
    m = root.find("cac:LegalMonetaryTotal", UBL)
    assert m is not None
    return Figures(
        lines=lines,
        subtotal=_one(m, "cbc:LineExtensionAmount", UBL),
        allowances=_one(m, "cbc:AllowanceTotalAmount", UBL, "0"),
        charges=_one(m, "cbc:ChargeTotalAmount", UBL, "0"),
        groups=_sorted_groups(groups),
        tax=_one(tax_totals[0], "cbc:TaxAmount", UBL),
        total=_one(m, "cbc:TaxInclusiveAmount", UBL),
        paid=_one(m, "cbc:PrepaidAmount", UBL, "0"),
        due=_one(m, "cbc:PayableAmount", UBL),
    )


@cache
def xml_figures(name: str) -> tuple[Figures, Figures]:
    from invoiceflow.einvoice.cii import cii_xml
    from invoiceflow.einvoice.ubl import ubl_xml

    inv = examples()[name]
    return cii_figures(cii_xml(inv), inv.currency), ubl_figures(ubl_xml(inv), inv.currency)


# ----------------------------------------------------------------------------- readers


def _norm(text: str) -> str:
    """pypdf's text as one line (no-break spaces and line breaks as single spaces), in NFKC
    (the PDF prints a full-width yen sign as ¥)."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " ")).strip()


def _money(amount: Decimal, inv: Invoice) -> str:
    return _norm(localize.money(amount, inv))


def _cached_number(value: Any, currency: str, where: str) -> Decimal:
    assert isinstance(value, int | float) and not isinstance(value, bool), (where, value)
    number = Decimal(str(value))
    unit = minor_unit(currency)
    assert number.quantize(unit) == number, (where, value)  # no digits beyond the money's
    return number.quantize(unit)


class Workbook:
    """The figures of the workbook's Invoice and Tax sheets (cached values), found by the
    labels of the document's language (its view's)."""

    def __init__(self, data: bytes, inv: Invoice) -> None:
        formulas = openpyxl.load_workbook(io.BytesIO(data))
        values = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
        ws, self.vs = formulas["Invoice"], values["Invoice"]
        self.currency = inv.currency
        view = build_view(inv, compute_totals(inv))
        description, amount = view.headings["desc"], view.headings["amount"]
        head = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == description)
        cols = {ws.cell(head, c).value: c for c in range(1, ws.max_column + 1)}
        ncols = len([c for c in cols if c])
        self.first, self.amount_col = head + 1, cols[amount]
        #: label -> (row, is a tax line) of the totals block
        self.totals: dict[str, tuple[int, bool]] = {}
        for r in range(head + 1, ws.max_row + 1):
            label, value = ws.cell(r, ncols - 1).value, ws.cell(r, ncols).value
            if isinstance(label, str) and isinstance(value, str) and value.startswith("="):
                self.totals[label] = (r, bool(re.fullmatch(r"=Tax!\$F\$\d+", value)))
        self.ncols = ncols
        tax = values["Tax"]
        self.tax_rows: list[tuple[Decimal | None, Decimal, Decimal]] = []
        # a title row, an empty row and the header row, then one row per group
        for r in range(4, tax.max_row + 1):
            rate = tax.cell(r, 1).value
            if rate == view.gettext("Total"):
                break
            self.tax_rows.append(
                (
                    None if rate is None else Decimal(str(rate)),
                    self.number(tax.cell(r, 5).value, f"Tax!E{r}"),
                    self.number(tax.cell(r, 6).value, f"Tax!F{r}"),
                )
            )

    def number(self, value: Any, where: str) -> Decimal:
        return _cached_number(value, self.currency, where)

    def line(self, i: int) -> Decimal:
        r = self.first + i
        return self.number(self.vs.cell(r, self.amount_col).value, f"line {i}")

    def total(self, prefix: str) -> Decimal | None:
        found = [row for label, (row, _) in self.totals.items() if label.startswith(prefix)]
        assert len(found) <= 1, (prefix, self.totals)
        if not found:
            return None
        return self.number(self.vs.cell(found[0], self.ncols).value, prefix)

    def tax_lines(self) -> list[Decimal]:
        return sorted(
            self.number(self.vs.cell(row, self.ncols).value, label)
            for label, (row, is_tax) in self.totals.items()
            if is_tax
        )


def _printed_groups(inv: Invoice, fig: Figures) -> list[VatGroup]:
    """The XML's VAT groups that the PDF and the workbook print a tax line for: every group
    with a category or a rate (content.tax_groups; an older document's untaxed lines have
    their base on the Tax sheet only), at the rate the XML states (einvoice.xml_rate)."""
    shown = {(g.category, xml_rate(g.category, g.rate)) for g in tax_groups(compute_totals(inv))}
    printed = [g for g in fig.groups if (g.category, g.rate) in shown]
    assert len(printed) == len(shown), (shown, fig.groups)
    return printed


# ------------------------------------------------------------------------------- tests


def test_the_new_examples_are_all_e_invoices() -> None:
    assert NEW_EINVOICES <= set(einvoice_examples())


@pytest.mark.parametrize("name", sorted(UPGRADES))
def test_the_upgraded_examples_are_e_invoices_with_the_same_money(name: str) -> None:
    assert name + UPGRADED in einvoice_examples()

    def money(inv: Invoice) -> tuple[object, ...]:
        t = compute_totals(inv)
        return (
            [(lt.gross, lt.discount, lt.amount) for lt in t.lines],
            # an untaxed group is the exempt one at 0 % (the rate its e-invoice states)
            [(g.rate or 0, g.lines, g.discount, g.shipping, g.base, g.tax) for g in t.groups],
            (t.subtotal, t.discount, t.shipping, t.tax, t.total, t.amount_paid, t.balance_due),
        )

    assert money(examples()[name + UPGRADED]) == money(examples()[name])


def test_an_exempt_line_without_a_rate_and_exempt_shipping_at_0_are_one_breakdown() -> None:
    """Category E given no rate on the line and 0 % on the shipping is one tax group: one VAT
    breakdown in the CII and the UBL (BR-E-01 allows exactly one; both pass the official
    rules), one tax line in the PDF and the workbook."""
    import json

    from invoiceflow.domain.en16931 import require_conformance
    from invoiceflow.domain.model import to_json
    from invoiceflow.einvoice.cii import cii_xml
    from invoiceflow.einvoice.ubl import ubl_xml
    from support.einvoice_samples import german_b2b
    from support.official import fatal

    doc = to_json(german_b2b())
    doc["items"] = [
        {"description": "Kurs", "quantity": "1", "unit_price": "100.00", "tax_category": "E"}
    ]
    doc.update(shipping="5.00", shipping_tax_category="E", shipping_tax_rate="0")
    doc["tax_exemptions"] = {"E": {"reason": "Steuerfrei", "code": "VATEX-EU-132-1I"}}
    inv = parse_invoice(json.dumps(doc).encode()).invoice
    (group,) = compute_totals(inv).groups
    zero = Decimal(0)
    assert (group.category, group.rate, group.base, group.tax) == ("E", zero, Decimal(105), zero)

    outputs: list[tuple[Literal["cii", "ubl"], bytes, str]] = [
        (
            "cii",
            cii_xml(inv),
            f".//{{{CII['ram']}}}ApplicableHeaderTradeSettlement/"
            f"{{{CII['ram']}}}ApplicableTradeTax",
        ),
        ("ubl", ubl_xml(inv), f"{{{UBL['cac']}}}TaxTotal/{{{UBL['cac']}}}TaxSubtotal"),
    ]
    for syntax, xml, breakdowns in outputs:
        require_conformance(inv, syntax)
        assert [f"{a.id}: {a.text}" for a in fatal(xml, syntax)] == []
        assert len(ET.fromstring(xml).findall(breakdowns)) == 1  # noqa: S314 (our own output)

    view = build_view(inv, compute_totals(inv))
    (tax_row,) = [row for row in view.totals_rows if row.key == "tax"]
    label = _norm(tax_line_label(group, inv))
    assert _norm(tax_row.label) == label
    text = _norm(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages))
    assert text.count(label) == 1
    book = Workbook(render_xlsx(inv), inv)
    assert len(book.tax_rows) == 1 and len(book.tax_lines()) == 1


def test_three_decimal_currencies_are_never_e_invoices() -> None:
    inv = examples()["kwd-three-decimals.json"]
    assert minor_digits(inv.currency) == 3
    assert check(inv, "cii") and check(inv, "ubl")  # BR-DEC: at most 2 decimals
    assert "kwd-three-decimals.json" not in einvoice_examples()


@pytest.mark.parametrize("name", sorted(NEW_EINVOICES))
def test_cii_and_ubl_state_the_same_money(name: str) -> None:
    cii, ubl = xml_figures(name)
    assert cii == ubl


def _names() -> list[str]:
    # computed at collection; the tests above prove the new and upgraded ones are all here
    return sorted(set(einvoice_examples()) | NEW_EINVOICES | {name + UPGRADED for name in UPGRADES})


@pytest.mark.parametrize("name", _names())
def test_xml_money_equals_the_pdf_text(name: str) -> None:
    inv = examples()[name]
    fig, _ = xml_figures(name)
    text = _norm(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages))

    # the line amounts, in order (each is the last cell of its row)
    at = 0
    for i, amount in enumerate(fig.lines):
        found = text.find(_money(amount, inv), at)
        assert found >= 0, (i, amount)
        at = found + 1

    view = build_view(inv, compute_totals(inv))  # the labels, in the document's language
    label = view.gettext
    subtotal = label("Subtotal")
    assert f"{subtotal} {_money(fig.subtotal, inv)}" in text
    if fig.allowances:
        discount = re.escape(label("Discount"))
        assert re.search(
            rf"{discount}( \([^)]*\))? {re.escape(_money(-fig.allowances, inv))}", text
        )
    else:
        assert label("Discount") not in text.split(subtotal, 1)[1]
    if fig.charges:
        shipping = view.total_row("shipping")
        assert shipping is not None
        assert f"{_norm(shipping.label)} {_money(fig.charges, inv)}" in text
    for g in _printed_groups(inv, fig):
        like = TaxGroup(
            rate=g.rate,
            lines=g.base,
            discount=Decimal(0),
            shipping=Decimal(0),
            base=g.base,
            tax=g.tax,
            category=g.category,
        )
        line = f"{_norm(tax_line_label(like, inv))} {_money(g.tax, inv)}"
        assert line in text, (line, g)
    assert f"{label('Total')} {_money(fig.total, inv)}" in text
    if fig.paid:
        assert f"{label('Amount paid')} {_money(-fig.paid, inv)}" in text
    assert f"{balance_label(inv)} {_money(fig.due, inv)}" in text


@pytest.mark.parametrize("name", _names())
def test_xml_money_equals_the_workbook(name: str) -> None:
    inv = examples()[name]
    fig, _ = xml_figures(name)
    wb = Workbook(render_xlsx(inv), inv)
    label = build_view(inv, compute_totals(inv)).gettext

    assert [wb.line(i) for i in range(len(fig.lines))] == list(fig.lines)
    assert wb.total(label("Subtotal")) == fig.subtotal
    # deductions are negative figures (one sign convention with the PDF)
    assert (wb.total(label("Discount")) or Decimal(0)) == -fig.allowances
    assert (wb.total(label("Shipping")) or Decimal(0)) == fig.charges
    # each VAT group's base and tax on the Tax sheet; the tax lines of the totals block
    assert sorted((g.rate or Decimal(0), g.base, g.tax) for g in fig.groups) == sorted(
        (rate or Decimal(0), base, tax) for rate, base, tax in wb.tax_rows
    )
    assert wb.tax_lines() == sorted(g.tax for g in _printed_groups(inv, fig))
    assert sum((tax for _, _, tax in wb.tax_rows), Decimal(0)) == fig.tax
    assert wb.total(label("Total")) == fig.total
    assert (wb.total(label("Amount paid")) or Decimal(0)) == -fig.paid
    assert wb.total(balance_label(inv)) == fig.due


def test_the_readers_see_a_rounding_difference() -> None:
    """The comparison is to the minor unit: a figure one cent off is noticed."""
    name = "de-facturx-b2b.json"
    inv = examples()[name]
    fig, _ = xml_figures(name)
    off = replace(fig, total=fig.total + minor_unit(inv.currency))
    wb = Workbook(render_xlsx(inv), inv)
    assert wb.total("Gesamtbetrag") != off.total
    text = _norm(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages))
    assert f"Gesamtbetrag {_money(off.total, inv)}" not in text
