"""The document's view (render.view): every word and figure a reader sees, decided once, in
the document's language; one sign convention for the totals; and the emails' texts."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader

from invoiceflow import emails
from invoiceflow.domain import parse_invoice
from invoiceflow.domain.model import Branding, Invoice
from invoiceflow.domain.totals import compute_totals
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.view import DocumentView, build_view
from invoiceflow.render.xlsx import render_xlsx
from support.einvoice_samples import german_b2b

EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"
NBSP = "\u00a0"


def view_of(inv: Invoice) -> DocumentView:
    return build_view(inv, compute_totals(inv))


def test_a_german_document_is_described_in_german() -> None:
    view = view_of(german_b2b())
    assert (view.language, view.direction, view.paper) == ("de", "ltr", "a4")
    assert view.name == "Rechnung" and view.title == "RECHNUNG"
    labels = [label for label, _ in view.meta]
    assert labels[:3] == ["Rechnungsnummer", "Ausstellungsdatum", "Fälligkeitsdatum"]
    assert labels[-1] == "Währung"
    assert view.bill_to.heading == "Rechnungsempfänger"
    assert view.headings["desc"] == "Beschreibung" and view.headings["price"] == "Einzelpreis"
    assert view.payment_heading == "Zahlungsinformationen"
    assert view.page_label(2, 3) == "Seite 2 von 3"
    assert view.tax_name == "MwSt." and view.date_pattern == "dd.MM.y"
    assert any(line.startswith("USt-IdNr.: ") for line in view.seller.lines)


def test_the_totals_add_up_down_the_column_with_deductions_negative(
    sample_invoice: Any,
) -> None:
    """One sign convention for every format: the discount, the line discounts (shown as
    included) and the amount paid are negative figures; the block adds up."""
    inv = sample_invoice(language=None)
    t = compute_totals(inv)
    view = view_of(inv)
    rows = {row.key: row for row in view.totals_rows}
    assert t.discount > 0 and t.amount_paid > 0 and t.line_discounts > 0
    assert rows["discount"].amount == -t.discount
    assert rows["paid"].amount == -t.amount_paid
    assert rows["line_discounts"].amount == -t.line_discounts
    assert rows["discount"].text.startswith("-")
    adds_up = sum(
        (
            r.amount
            for r in view.totals_rows
            if r.key in ("subtotal", "discount", "shipping", "tax")
        ),
        D(0),
    )
    assert adds_up == rows["total"].amount == t.total
    assert rows["total"].amount + rows["paid"].amount == view.balance.amount == t.balance_due
    assert view.balance.key == "balance" and view.balance.label == "Zu zahlender Betrag"
    assert rows["paid"].label == "Bereits bezahlt" and rows["paid"].text == f"-500,00{NBSP}€"
    # each row's text is its amount formatted for the locale
    for row in view.totals_rows:
        assert row.text == view.money(row.amount)


@pytest.mark.parametrize(
    ("language", "title", "last"),
    [
        ("en", "CREDIT NOTE", "Amount to be refunded"),
        ("de", "GUTSCHRIFT", "Zu erstattender Betrag"),
        ("es", "NOTA DE CRÉDITO", "Importe a reembolsar"),
        ("el", "ΠΙΣΤΩΤΙΚΟ ΤΙΜΟΛΟΓΙΟ", "Ποσό προς επιστροφή"),
        ("ja", "クレジットノート", "返金額"),
    ],
)
def test_a_credit_note_is_titled_as_one_and_ends_with_the_refund(
    language: str, title: str, last: str
) -> None:
    view = view_of(german_b2b(document_type="credit_note", language=language, amount_paid=D(0)))
    assert view.title == title
    assert view.balance.label == last


def test_payment_terms_of_several_lines_print_line_by_line() -> None:
    """Skonto lines (each ending with a line break, \r\n too): the PDF and the workbook show
    one line each, without an empty line after the last or any control character."""
    doc = json.loads((EXAMPLES / "de-xrechnung-b2g.json").read_text())
    doc["payment_terms"] = "#SKONTO#TAGE=7#PROZENT=3.00#\r\n#SKONTO#TAGE=14#PROZENT=2.00#\n"
    inv = parse_invoice(json.dumps(doc).encode()).invoice
    view = view_of(inv)
    lines = ["#SKONTO#TAGE=7#PROZENT=3.00#", "#SKONTO#TAGE=14#PROZENT=2.00#"]
    label = view.gettext("Payment terms")
    assert dict(view.meta)[label] == "\n".join(lines)

    # the PDF's narrow column wraps them further; both, one after the other, nothing else
    text = PdfReader(io.BytesIO(render_pdf(inv))).pages[0].extract_text()
    assert "".join(lines) in "".join(text.split())
    assert not any(ch in text for ch in "\r\x0b\x0c\x85\u2028")

    ws = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))["Invoice"]
    label_cell = next(c for row in ws.iter_rows() for c in row if c.value == label)
    cell = ws.cell(label_cell.row, label_cell.column + 1)
    assert cell.value == "\n".join(lines) and cell.alignment.wrap_text
    assert ws.row_dimensions[cell.row].height >= 30  # two lines of 15 points at least


def test_a_right_to_left_language() -> None:
    view = view_of(german_b2b(language="ar"))
    assert view.direction == "rtl" and view.name == "فاتورة"


@pytest.mark.parametrize(
    ("fields", "direction"),
    [
        # Persian and Urdu have no catalogue (their labels print English) but are written
        # right to left: the document is, in the PDF (which is mirrored) and the workbook
        ({"language": "fa"}, "rtl"),
        ({"locale": "ur-PK", "language": None}, "rtl"),
        ({"locale": "fa-IR", "language": "de"}, "ltr"),
        ({"language": "he"}, "rtl"),
        ({"language": "en"}, "ltr"),
    ],
)
def test_the_direction_is_the_documents_language_in_every_format(
    fields: dict[str, Any], direction: str
) -> None:
    from invoiceflow.render import scripts

    inv = german_b2b(**fields)
    assert view_of(inv).direction == direction
    assert scripts.right_to_left(inv) is (direction == "rtl")  # the PDF's mirroring
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))
    assert wb["Invoice"].sheet_view.rightToLeft is (direction == "rtl")
    assert wb["Tax"].sheet_view.rightToLeft is (direction == "rtl")


def test_the_paper_follows_the_locale_not_the_language() -> None:
    assert view_of(german_b2b(locale="es-CL", language="de")).paper == "letter"
    assert view_of(german_b2b(locale="en-US")).paper == "letter"
    assert view_of(german_b2b(locale="en-GB")).paper == "a4"


def test_lines_are_formatted_once() -> None:
    view = view_of(german_b2b())
    assert view.lines is view.lines
    first = view.lines[0]
    assert first.number == "1" and first.amount == view.money(view.totals.lines[0].amount)


def test_dates_are_the_locales_short_form_with_the_year_in_full() -> None:
    view = view_of(german_b2b(locale="en-US", language="en"))
    assert view.date(date(2026, 3, 5)) == "3/5/2026"
    assert dict(view.meta)["Issue date"] == view.date(view.invoice.issue_date)


# ------------------------------------------------------------------------------ emails


class _Docs:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, file_id: str) -> bytes | None:
        return self.files.get(file_id)


def _ctx(document: bytes | None) -> Any:
    files = {} if document is None else {"raw-1": document}
    return SimpleNamespace(
        settings=SimpleNamespace(
            public_base_url="http://invoices.test", mail_from="billing@invoiceflow.test"
        ),
        docs=_Docs(files),
        repo=SimpleNamespace(get_artifact=lambda invoice_id, fmt: None),
    )


def _record(number: str) -> Any:
    return SimpleNamespace(
        id="inv-1",
        number=number,
        raw_file_id="raw-1",
        rendered_from="raw-1",
        formats=("pdf",),
        error=None,
    )


def test_the_emails_of_a_french_credit_note() -> None:
    doc = json.loads((EXAMPLES / "fr-facturx.json").read_text())
    doc["document_type"] = "credit_note"
    doc["preceding_invoices"] = [{"number": "F2026-00001"}]
    inv = parse_invoice(json.dumps(doc)).invoice
    view = view_of(inv)
    ctx = _ctx(json.dumps(doc).encode())
    ready = emails.ready_message(ctx, _record(inv.number), "a@b.example")
    assert ready.subject == f"L'avoir {inv.number} est prêt"
    assert ready.text.startswith(f"Votre avoir {inv.number} est prêt.\n\n")
    total = view.total_row("total")
    assert total is not None
    # the total and the due date exactly as the PDF prints them
    assert f"Total: {total.text}\n" in ready.text
    if inv.due_date is not None:
        assert f"Date d'échéance: {view.date(inv.due_date)}\n" in ready.text
    failed = emails.failed_message(ctx, _record(inv.number), "a@b.example")
    assert failed.subject == f"L'avoir {inv.number} n'a pas pu être généré"
    assert "Motif: motif inconnu" in failed.text


def test_an_unreadable_document_gets_the_english_email() -> None:
    ctx = _ctx(b"{not json")
    ready = emails.ready_message(ctx, _record("X-1"), "a@b.example")
    assert ready.subject == "Invoice X-1 is ready"
    assert ready.text.startswith("Your invoice X-1 is ready.\n\nPDF: ")
    assert emails.failed_message(_ctx(None), _record("X-1"), "a@b.example").subject == (
        "Invoice X-1 could not be produced"
    )


def test_the_html_email_takes_the_accent_colour() -> None:
    doc = json.loads((EXAMPLES / "minimal.json").read_text())
    doc["branding"] = {"accent_color": "#C0392B"}
    inv = parse_invoice(json.dumps(doc)).invoice
    assert inv.branding == Branding(accent_color="#C0392B")
    html = emails.ready_message(_ctx(json.dumps(doc).encode()), _record(inv.number), "a@b.c").html
    assert f'<strong style="color:#C0392B">{inv.number}</strong>' in html
    assert 'style="color:#C0392B">PDF</a>' in html
    plain = emails.ready_message(
        _ctx((EXAMPLES / "minimal.json").read_bytes()), _record(inv.number), "a@b.c"
    ).html
    assert "style=" not in plain


def test_the_view_is_the_same_for_the_same_document() -> None:
    inv = german_b2b()
    first, second = view_of(inv), view_of(replace(inv))
    assert first.meta == second.meta and first.totals_rows == second.totals_rows


def test_the_workbook_takes_the_branding_and_the_direction() -> None:
    inv = german_b2b(branding=Branding(accent_color="#0A7E8C", footer="Nordlicht & Co · Kiel"))
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(inv)))
    ws = wb["Invoice"]
    assert ws["A1"].font.color.rgb == "FF0A7E8C"
    header = next(r for r in ws.iter_rows() if r[0].value == "Beschreibung")
    assert header[0].fill.start_color.rgb == "FF0A7E8C"
    assert ws.oddFooter.right.text == "Nordlicht && Co · Kiel"  # & escaped for the footer
    assert ws.oddFooter.center.text == "Seite &P von &N"
    assert not ws.sheet_view.rightToLeft
    plain = openpyxl.load_workbook(io.BytesIO(render_xlsx(german_b2b())))["Invoice"]
    assert plain["A1"].font.color.rgb == "FF1F3864" and not plain.oddFooter.right.text
    hebrew = openpyxl.load_workbook(io.BytesIO(render_xlsx(german_b2b(language="he"))))
    assert hebrew["Invoice"].sheet_view.rightToLeft and hebrew["Tax"].sheet_view.rightToLeft


def test_the_girocode_caption_is_in_the_documents_language() -> None:
    """In the language of the document: drawn by payqr where its one font can, else (Japanese
    needs the CJK font, Arabic right-to-left shaping) a paragraph beside the bare code."""

    def text(inv: Invoice) -> str:
        pages = PdfReader(io.BytesIO(render_pdf(inv))).pages
        return " ".join(" ".join(p.extract_text().split()) for p in pages)

    assert "Mit der Banking-App bezahlen" in text(german_b2b())
    assert "Payer avec une appli bancaire" in text(german_b2b(language="fr"))
    # scripts payqr's one font cannot draw: a paragraph beside the bare code (wrapped under
    # the 30 mm code: read with its line breaks and spaces taken out)
    import subprocess

    pdf = render_pdf(german_b2b(language="ja"))
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    flat = "".join(out.stdout.decode().split())
    assert "銀行アプリでお支払いください" in flat
    assert "Paywithabankingapp" not in flat
