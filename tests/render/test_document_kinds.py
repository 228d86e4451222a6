"""What a credit note and a non-standard VAT category look like on paper: the last figure
of a credit note is what is to be refunded, and a tax line names its category (reverse
charge, exempt...) beside the 0 %, in the PDF and in the workbook alike, in the document's
language (a German document prints German labels)."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader

from invoiceflow.domain.model import DocumentReference, Invoice, LineItem, TaxExemption
from invoiceflow.domain.parse import parse_invoice
from invoiceflow.domain.totals import compute_totals
from invoiceflow.einvoice.cii import cii_xml
from invoiceflow.render.facturx import render_facturx
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.view import build_view
from invoiceflow.render.xlsx import render_xlsx
from support.einvoice_samples import german_b2b


def pdf_text(inv: Invoice) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages)


def workbook_text(inv: Invoice) -> str:
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))
    return "\n".join(
        str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value
    )


@pytest.mark.parametrize(
    ("language", "title", "refund", "due"),
    [
        ("en", "CREDIT NOTE", "Amount to be refunded", "Balance due"),
        (None, "GUTSCHRIFT", "Zu erstattender Betrag", "Zu zahlender Betrag"),
        ("fr", "AVOIR", "Montant à rembourser", "Net à payer"),
    ],
)
def test_a_credit_note_ends_with_the_amount_to_be_refunded(
    language: str | None, title: str, refund: str, due: str
) -> None:
    note = german_b2b(
        document_type="credit_note",
        preceding_invoices=(DocumentReference("RE-2026-0001"),),
        amount_paid=D(0),
        language=language,
    )
    pdf = pdf_text(note)
    assert title in pdf
    for text in (pdf, workbook_text(note)):
        assert refund in text
        assert due not in text
    invoice = german_b2b(language=language)
    assert due in pdf_text(invoice)
    assert refund not in workbook_text(invoice)


@pytest.mark.parametrize("language", ["en", None, "fr"])
def test_the_workbooks_properties_speak_the_documents_language(language: str | None) -> None:
    """The workbook's description (document properties) names the last figure as the
    document does (a credit note's is to be refunded) and its subject is the PDF's, in the
    document's language: no English words on a German or French document."""
    note = german_b2b(
        document_type="credit_note",
        preceding_invoices=(DocumentReference("RE-2026-0001"),),
        amount_paid=D(0),
        language=language,
    )
    for document in (note, german_b2b(language=language)):
        view = build_view(document, compute_totals(document))
        total = view.total_row("total")
        assert total is not None
        props = openpyxl.load_workbook(io.BytesIO(render_xlsx(document))).properties
        assert props.description == (
            f"{total.label} {total.text}, {view.balance.label} {view.balance.text}"
        )
        assert props.subject == view.subject
        assert view.subject in pdf_text_metadata(document)
        if language != "en":
            assert "balance due" not in props.description.lower()
            assert " from " not in props.subject and " to " not in props.subject


def pdf_text_metadata(inv: Invoice) -> str:
    metadata = PdfReader(io.BytesIO(render_pdf(inv))).metadata
    assert metadata is not None
    return str(metadata.subject)


def test_a_reverse_charge_tax_line_says_so() -> None:
    inv = german_b2b(
        items=(LineItem("Beratung", D(2), D("100.00"), tax_category="AE", tax_rate=D(0)),),
        shipping=D(0),
        tax_exemptions=(TaxExemption("AE", "Reverse charge", "VATEX-EU-AE"),),
    )
    text = pdf_text(inv)
    note = "(Steuerschuldnerschaft des Leistungsempfängers)"
    assert note in _flat(text)
    assert note in workbook_text(inv)
    assert note not in _flat(pdf_text(german_b2b()))


@pytest.mark.parametrize(
    ("kind", "language", "name"),
    [
        ("invoice", "en", "Invoice"),
        ("credit_note", "en", "Credit note"),
        ("corrected", "en", "Corrected invoice"),
        ("invoice", None, "Rechnung"),
        ("credit_note", None, "Gutschrift"),
        ("corrected", None, "Korrigierte Rechnung"),
    ],
)
def test_the_pdf_metadata_names_the_document_type(
    kind: str, language: str | None, name: str
) -> None:
    """The title, subject and keywords (and so the Factur-X XMP dc:title and dc:description)
    name the document as its heading does, in its language: a credit note is not an
    "Invoice"."""
    inv = german_b2b(
        document_type=kind,
        preceding_invoices=() if kind == "invoice" else (DocumentReference("RE-2026-0001"),),
        language=language,
    )
    meta = PdfReader(io.BytesIO(render_pdf(inv))).metadata
    assert meta is not None
    assert meta.title == f"{name} {inv.number}"
    assert meta.subject is not None and meta.subject.startswith(f"{name} {inv.number}, ")
    assert str(meta["/Keywords"]) == f"{name.lower()}, {inv.number}"
    catalog: Any = PdfReader(io.BytesIO(render_facturx(inv))).root_object
    xmp = catalog["/Metadata"].get_object().get_data().decode()
    assert f'<rdf:li xml:lang="x-default">{name} {inv.number}</rdf:li>' in xmp
    if kind != "invoice":
        assert "Invoice " + inv.number not in xmp
        assert f">Rechnung {inv.number}<" not in xmp


EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"
RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " "))


def _xml_vat_breakdown(inv: Invoice) -> list[tuple[str, str | None, str, str]]:
    """The CII's VAT breakdown (BG-23): (category, rate or None, base, tax) per group."""
    root = ET.fromstring(cii_xml(inv))  # noqa: S314 (our own output)
    settlement = next(root.iter(f"{RAM}ApplicableHeaderTradeSettlement"))
    out = []
    for tax in settlement.findall(f"{RAM}ApplicableTradeTax"):
        out.append(
            (
                tax.findtext(f"{RAM}CategoryCode") or "",
                tax.findtext(f"{RAM}RateApplicablePercent"),
                tax.findtext(f"{RAM}BasisAmount") or "",
                tax.findtext(f"{RAM}CalculatedAmount") or "",
            )
        )
    return out


def test_reverse_charge_without_rates_prints_its_tax_line() -> None:
    """The reverse-charge example with its lines' rates left out (category AE alone): the XML
    states the group at 0 %, and so does the PDF, with its base and its 0,00 of tax."""
    doc = json.loads((EXAMPLES / "eu-reverse-charge.json").read_text())
    for item in doc["items"]:
        assert item["tax_category"] == "AE"
        item.pop("tax_rate", None)
    inv = parse_invoice(json.dumps(doc)).invoice
    assert [(c, r, b, t) for c, r, b, t in _xml_vat_breakdown(inv)] == [
        ("AE", "0", "12840.00", "0.00")
    ]
    text = _flat(pdf_text(inv))
    assert "VAT 0% (reverse charge) on €12,840.00 €0.00" in text
    # the items table states the rate the XML states for each line
    assert text.count(" 0% ") >= len(inv.items)


def test_every_categorised_group_gets_a_tax_line() -> None:
    """Standard rate, exempt and reverse charge given without rates, and not subject to VAT:
    one tax line each, with the rate the XML writes (0 % for E and AE, none for O)."""
    inv = german_b2b(
        items=(
            LineItem("Beratung", D(2), D("100.00"), tax_rate=D(19)),
            LineItem("Schulung", D(1), D("300.00"), tax_category="E"),
            LineItem("Wartung", D(1), D("400.00"), tax_category="AE"),
            LineItem("Auslagen", D(1), D("50.00"), tax_category="O"),
        ),
        shipping=D(0),
        discount=None,
        amount_paid=D(0),
        tax_exemptions=(
            TaxExemption("E", "Exempt education", "VATEX-EU-132-1I"),
            TaxExemption("AE", "Reverse charge", "VATEX-EU-AE"),
            TaxExemption("O", "Not subject to VAT", "VATEX-EU-O"),
        ),
    )
    breakdown = {c: (r, b, t) for c, r, b, t in _xml_vat_breakdown(inv)}
    assert breakdown == {
        "S": ("19", "200.00", "38.00"),
        "E": ("0", "300.00", "0.00"),
        "AE": ("0", "400.00", "0.00"),
        "O": (None, "50.00", "0.00"),
    }
    text = _flat(pdf_text(inv))
    for line in (
        "MwSt. 19 % auf 200,00 € 38,00 €",
        "MwSt. 0 % (steuerbefreit) auf 300,00 € 0,00 €",
        "MwSt. 0 % (Steuerschuldnerschaft des Leistungsempfängers) auf 400,00 € 0,00 €",
        "Nicht der MwSt. unterliegend auf 50,00 € 0,00 €",
    ):
        assert line in text, line
    assert "unterliegend)" not in text


def test_untaxed_lines_of_an_older_document_get_no_tax_line() -> None:
    inv = german_b2b(
        items=(
            LineItem("Beratung", D(2), D("100.00"), tax_rate=D(19)),
            LineItem("Porto", D(1), D("5.00")),  # neither rate nor category
        ),
        shipping=D(0),
        discount=None,
        amount_paid=D(0),
    )
    text = _flat(pdf_text(inv))
    assert "MwSt. 19 % auf 200,00 € 38,00 €" in text
    assert "MwSt. 0 %" not in text and "Nicht der" not in text
