"""The PDF, the workbook and the email of a document say the same things, because all three
take them from its view: for every example document (and the German example in a few other
languages), the same labels with the same signed figures in the totals, the same column
headings, the same dates (the workbook's date cells show what the PDF prints), the same
paper, and the email's total and due date as the PDF prints them."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader

from invoiceflow import emails
from invoiceflow.domain import parse_invoice
from invoiceflow.domain.model import Invoice
from invoiceflow.domain.totals import compute_totals
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.view import DocumentView, build_view
from invoiceflow.render.xlsx import excel_date_format, render_xlsx

EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"
#: documents made here (name -> JSON), beside the examples: inputs that come to nothing once
#: rounded (a 0 % discount, shipping and a payment of 0.004 EUR, a 0 % line discount), which
#: neither the PDF nor the workbook shows a row for
DOCUMENTS = {
    "rounds-to-nothing.json": {
        "number": "R-1",
        "issue_date": "2026-11-01",
        "due_date": "2026-11-30",
        "currency": "EUR",
        "locale": "en-US",
        "seller": {"name": "Seller Ltd"},
        "bill_to": {"name": "Buyer Inc"},
        "items": [
            {
                "description": "Widget",
                "quantity": "2",
                "unit_price": "10.00",
                "tax_rate": "19",
                "discount": {"percent": "0"},
            }
        ],
        "discount": {"percent": "0"},
        "shipping": "0.004",
        "amount_paid": "0.004",
    },
}
#: the PDF's page sizes (points) and the workbook's paper codes of each paper
PAPER = {"a4": ((595.28, 841.89), 9), "letter": ((612.0, 792.0), 1)}
LANGUAGES = ["en", "fr", "es", "el", "ja"]
CASES = (
    [(p.name, None) for p in sorted(EXAMPLES.glob("*.json"))]
    + [("eur-two-rates.json", lang) for lang in LANGUAGES]
    + [(name, None) for name in DOCUMENTS]
)


def _document(name: str, language: str | None) -> bytes:
    doc = dict(DOCUMENTS[name]) if name in DOCUMENTS else json.loads((EXAMPLES / name).read_text())
    if language is not None:
        doc["language"] = language
    return json.dumps(doc).encode()


def _flat(text: str) -> str:
    """Spaces as the extracted text has them; the PDF prints the fullwidth yen sign of ja-JP
    amounts as the ordinary one (the one its font has)."""
    text = text.replace("\u00a0", " ").replace("\u202f", " ").replace("\uffe5", "\u00a5")
    return " ".join(text.split())


def _show(value: date, number_format: str) -> str:
    """What a spreadsheet shows for a date cell in one of our (numeric) date formats."""
    codes = {"yyyy": f"{value.year:04d}", "mm": f"{value.month:02d}", "dd": f"{value.day:02d}"}
    codes |= {"m": str(value.month), "d": str(value.day)}
    out = []
    for token in re.findall(r'\\.|"[^"]*"|yyyy|mm|dd|m|d|.', number_format):
        if token.startswith("\\"):
            out.append(token[1:])
        elif token.startswith('"'):
            out.append(token[1:-1])
        else:
            out.append(codes.get(token, token))
    return "".join(out)


def _email(raw: bytes, inv: Invoice) -> str:
    ctx: Any = SimpleNamespace(
        settings=SimpleNamespace(public_base_url="http://x.test", mail_from="a@x.test"),
        docs=SimpleNamespace(read=lambda file_id: raw),
        repo=SimpleNamespace(get_artifact=lambda invoice_id, fmt: None),
    )
    record: Any = SimpleNamespace(
        id="i-1",
        number=inv.number,
        raw_file_id="raw",
        rendered_from="raw",
        formats=("pdf", "xlsx"),
        error=None,
    )
    return emails.ready_message(ctx, record, "to@x.test").text


def _workbook_totals(ws: Any) -> dict[str, Any]:
    """The totals block: label -> the figure beside it (cached values); an item's row (its
    description in column A) is none of them, though its category may stand beside its
    amount."""
    out = {}
    for row in ws.iter_rows():
        cells = [c for c in row if c.value is not None]
        if row[0].value is None and len(cells) >= 2 and isinstance(cells[-2].value, str):
            value = cells[-1].value
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[cells[-2].value] = value
    return out


@pytest.mark.parametrize(("name", "language"), CASES, ids=[f"{n}-{lang}" for n, lang in CASES])
def test_pdf_workbook_and_email_agree(name: str, language: str | None) -> None:
    raw = _document(name, language)
    inv = parse_invoice(raw).invoice
    view: DocumentView = build_view(inv, compute_totals(inv))
    pdf = PdfReader(io.BytesIO(render_pdf(inv)))
    text = _flat(" ".join(page.extract_text() for page in pdf.pages))
    book = render_xlsx(inv)
    wb = openpyxl.load_workbook(io.BytesIO(book), data_only=True)
    ws = wb["Invoice"]

    # the title and the totals: the same labels and signed figures in both
    assert _flat(view.title) in text
    assert ws["A1"].value == f"{view.name} {inv.number}"
    figures = _workbook_totals(ws)
    for row in view.totals_rows:
        assert f"{_flat(row.label)} {_flat(row.text)}" in text, row
        assert row.label in figures, (row.label, sorted(figures))
        # the same signed figure (a deduction is negative in both)
        assert Decimal(str(figures[row.label])) == row.amount, (row, figures[row.label])
    # and no row the view has not: nothing paid is no "Amount paid" row in either, a 0 %
    # discount no "Discount" row, shipping that rounds to nothing no "Shipping" row
    assert sorted(figures) == sorted(row.label for row in view.totals_rows)

    # the column headings of the items (description and amount: both formats have them)
    header = [
        c.value for c in next(r for r in ws.iter_rows() if r[0].value == view.headings["desc"])
    ]
    assert view.headings["amount"] in header
    assert _flat(view.headings["desc"]) in text and _flat(view.headings["amount"]) in text

    # the dates: the workbook's date cells are real dates that show what the PDF prints
    label_col = {c.value: c for row in ws.iter_rows(max_row=30) for c in row if c.value}
    for label, when in (
        (view.gettext("Issue date"), inv.issue_date),
        (view.gettext("Due date"), inv.due_date),
    ):
        if when is None:
            continue
        printed = view.date(when)
        assert f"{_flat(label)} {_flat(printed)}" in text
        cell = ws.cell(label_col[label].row, label_col[label].column + 1)
        assert cell.is_date and cell.value == datetime(when.year, when.month, when.day)
        assert cell.number_format == excel_date_format(view.date_pattern)
        assert _show(when, cell.number_format) == printed.replace("\u200f", "")

    # the paper of the locale, in both
    size, code = PAPER[view.paper]
    for page in pdf.pages:
        box = page.mediabox
        assert (round(float(box.width), 2), round(float(box.height), 2)) == size
    assert ws.page_setup.paperSize == code == wb["Tax"].page_setup.paperSize
    assert ws.page_setup.orientation == "portrait"

    # the email: the total and the due date as the PDF prints them
    mail = _email(raw, inv)
    total = view.total_row("total")
    assert total is not None
    assert f"{view.gettext('Total')}: {total.text}\n" in mail
    assert f"{_flat(view.gettext('Total'))} {_flat(total.text)}" in text
    if inv.due_date is not None:
        assert f"{view.gettext('Due date')}: {view.date(inv.due_date)}\n" in mail


def test_inputs_that_round_to_nothing_have_no_row_in_either() -> None:
    """A 0 % discount, shipping and a payment of 0.004 EUR: the PDF and the workbook both
    leave out the discount, shipping, line discount and payment rows."""
    inv = parse_invoice(_document("rounds-to-nothing.json", None)).invoice
    view = build_view(inv, compute_totals(inv))
    assert [row.key for row in view.totals_rows] == ["subtotal", "tax", "total", "balance"]
    text = _flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(inv))).pages))
    ws = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)), data_only=True)["Invoice"]
    labels = set(_workbook_totals(ws))
    for label in ("Amount paid", "Shipping", "incl. line discounts"):
        assert label not in text and label not in labels
    assert not any(label.startswith("Discount") for label in labels)


def test_the_cases_cover_every_example_and_several_languages() -> None:
    names = {name for name, _ in CASES}
    assert names == {p.name for p in EXAMPLES.glob("*.json")} | set(DOCUMENTS)
    assert len(names) >= 10
    languages = {build_view(inv, compute_totals(inv)).language for inv in _all()}
    assert {"en", "de", "fr", "ja", "el", "nl"} <= languages


def _all() -> list[Invoice]:
    return [parse_invoice(_document(name, lang)).invoice for name, lang in CASES]
