"""What a credit note and a non-standard VAT category look like on paper: the last figure
of a credit note is what is credited, and a tax line names its category (reverse charge,
exempt...) beside the 0 %, in the PDF and in the workbook alike."""

from __future__ import annotations

import io
from decimal import Decimal as D
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader

from invoiceflow.domain.model import DocumentReference, Invoice, LineItem, TaxExemption
from invoiceflow.render.facturx import render_facturx
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.xlsx import render_xlsx
from support.einvoice_samples import german_b2b


def pdf_text(inv: Invoice) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages)


def workbook_text(inv: Invoice) -> str:
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))
    return "\n".join(
        str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value
    )


def test_a_credit_note_ends_with_the_amount_credited() -> None:
    note = german_b2b(
        document_type="credit_note",
        preceding_invoices=(DocumentReference("RE-2026-0001"),),
        amount_paid=D(0),
    )
    for text in (pdf_text(note), workbook_text(note)):
        assert "Amount credited" in text
        assert "Balance due" not in text
    invoice = german_b2b()
    assert "Balance due" in pdf_text(invoice)
    assert "Amount credited" not in workbook_text(invoice)


def test_a_reverse_charge_tax_line_says_so() -> None:
    inv = german_b2b(
        items=(LineItem("Beratung", D(2), D("100.00"), tax_category="AE", tax_rate=D(0)),),
        shipping=D(0),
        tax_exemptions=(TaxExemption("AE", "Reverse charge", "VATEX-EU-AE"),),
    )
    text = pdf_text(inv)
    assert "(reverse charge)" in text
    assert "(reverse charge)" in workbook_text(inv)
    assert "(reverse charge)" not in pdf_text(german_b2b())


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("invoice", "Invoice"),
        ("credit_note", "Credit note"),
        ("corrected", "Corrected invoice"),
    ],
)
def test_the_pdf_metadata_names_the_document_type(kind: str, name: str) -> None:
    """The title, subject and keywords (and so the Factur-X XMP dc:title and dc:description)
    name the document as its heading does: a credit note is not an "Invoice"."""
    inv = german_b2b(
        document_type=kind,
        preceding_invoices=() if kind == "invoice" else (DocumentReference("RE-2026-0001"),),
    )
    meta = PdfReader(io.BytesIO(render_pdf(inv))).metadata
    assert meta is not None
    assert meta.title == f"{name} {inv.number}"
    assert meta.subject is not None and meta.subject.startswith(f"{name} {inv.number} of ")
    assert str(meta["/Keywords"]) == f"{name.lower()}, {inv.number}"
    catalog: Any = PdfReader(io.BytesIO(render_facturx(inv))).root_object
    xmp = catalog["/Metadata"].get_object().get_data().decode()
    assert f'<rdf:li xml:lang="x-default">{name} {inv.number}</rdf:li>' in xmp
    if kind != "invoice":
        assert "Invoice " + inv.number not in xmp
