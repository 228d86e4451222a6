"""What both renderers print about parties, payment and paper comes from one function each,
and the PDF and the workbook agree on it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader

from invoiceflow.domain.model import Invoice, Party, PaymentDetails
from invoiceflow.render import localize
from invoiceflow.render.content import party_details, party_title, payment_fields
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.xlsx import render_xlsx

Factory = Callable[..., Invoice]


def test_party_title_and_details() -> None:
    full = Party(
        name="Jane Roe",
        company="Acme GmbH",
        address=("Main St 1", "", "10115 Berlin"),
        email="jane@acme.example",
        phone="+49 30 1234",
        tax_id="DE123456789",
    )
    assert party_title(full) == "Acme GmbH"
    assert party_details(full) == [
        "Jane Roe",
        "Main St 1",
        "10115 Berlin",
        "jane@acme.example",
        "+49 30 1234",
        "Tax ID: DE123456789",
    ]
    person = Party(name="Jane Roe")
    assert party_title(person) == "Jane Roe" and party_details(person) == []
    same = Party(name="Acme", company="Acme", address=("Main St 1",))
    assert party_details(same) == ["Main St 1"]


def test_payment_fields_keep_their_order_and_leave_out_empty_ones() -> None:
    every = PaymentDetails(
        bank_name="Bank",
        account_holder="Holder",
        account_number="123",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        reference="INV-1",
    )
    assert [label for label, _ in payment_fields(every)] == [
        "Bank",
        "Account holder",
        "Account number",
        "IBAN",
        "BIC",
        "Reference",
    ]
    assert payment_fields(PaymentDetails(iban="DE89", reference="")) == [("IBAN", "DE89")]


@pytest.mark.parametrize(
    ("locale", "paper"),
    [
        ("en-US", "letter"),
        ("es-CL", "letter"),
        ("fil-PH", "letter"),
        ("es-PA", "letter"),
        ("en-GB", "a4"),
        ("de-DE", "a4"),
        ("en", "a4"),
    ],
)
def test_both_renderers_print_on_the_locales_paper(
    sample_invoice: Factory, locale: str, paper: str
) -> None:
    inv = sample_invoice(locale=locale, logo=None, n_items=2)
    assert localize.paper_size(inv) == paper
    box = PdfReader(io.BytesIO(render_pdf(inv))).pages[0].mediabox
    size = (round(float(box.width)), round(float(box.height)))
    assert size == {"letter": (612, 792), "a4": (595, 842)}[paper]
    sheet: Any = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))["Invoice"]
    assert sheet.page_setup.paperSize == {"letter": 1, "a4": 9}[paper]


def test_both_renderers_print_the_same_party_and_payment_lines(sample_invoice: Factory) -> None:
    inv = sample_invoice(logo=None, n_items=1)
    assert inv.payment is not None and inv.ship_to is not None
    pdf_text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages)
    sheet: Any = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))["Invoice"]
    cells = {c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)}
    for party in (inv.seller, inv.bill_to, inv.ship_to):
        for line in [party_title(party), *party_details(party)]:
            assert line in cells
            assert line in pdf_text
    for label, value in payment_fields(inv.payment):
        assert f"{label}: {value}" in cells
        assert value in pdf_text
