"""Rendering: the product's PDF and XLSX against baselines rendered in the same run.

Baselines (all get the same rows, the same invoice model, and are timed from the model to
the bytes, like the product's renderers). What each leaves out is also in the report
(``LEAVES_OUT``), so a ratio is never read as "the same work, done slower":

* **bare ReportLab** (``bare_reportlab``): the item rows (``#``, SKU, description, quantity
  + unit, unit price, tax rate, amount) in platypus ``Table`` objects of :data:`CHUNK` rows each
  (header row repeated), in the same embedded TTF font (DejaVu Sans) on A4, descriptions that
  do not fit their column as ``Paragraph``, everything else plain strings. Chunked because
  one platypus ``Table`` of every row re-splits the remaining rows on every page (quadratic):
  against that, a 1,000-line ratio would mostly measure ReportLab's default table splitting,
  not the product. That single table is still timed, for reference
  (``bare_reportlab_single``), without a target.
* **bare openpyxl**: a write-only workbook (openpyxl's fast mode) with one sheet holding a
  header row and the same rows as plain values (numbers as numbers).
* **openpyxl, same content** (``openpyxl_same_content``): the product's workbook content
  (blocks, styles, a formula per line amount, totals as formulas, the Tax sheet with a SUMIF
  per rate) written with openpyxl's public API in write-only mode: what XLSX costs done
  plainly with openpyxl. Reported as a ratio (``xlsx_vs_openpyxl_same_content``), no target.
* **WeasyPrint**: an equivalent HTML invoice (header blocks, the items table, totals, notes,
  payment details, "Page N of M", the same font) rendered to PDF, which is what many people
  would pick instead. Only for 10 and 1,000 lines (it is slow).

**Parse and validate** (``parse``): ``parse_invoice`` of the document's JSON bytes (JSON
Schema, the model, the rules), timed with the renderers, as a fraction of the PDF's time.

Repetitions are interleaved (one run of each variant, then the next round), after one
untimed warm-up of each, so drift hits every variant alike; each figure is the median. Each
size records how busy the machine was while it was measured (``load``).
"""

from __future__ import annotations

import gc
import html
import io
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import (
    Load,
    Target,
    invoice_document,
    log,
    median,
    ms,
    parse,
    ratio,
    verdict,
)

SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (10, 100)
WEASYPRINT_SIZES = (10, 1000)
#: repetitions per size in a full run (the 10,000-line runs take seconds each)
FULL_REPS = {10: 15, 100: 11, 1000: 7, 10000: 3}
WEASY_REPS = {10: 7, 1000: 3}

TARGETS = {
    "pdf_10": Target(
        "render.pdf_vs_bare_reportlab.10",
        "render",
        "PDF at 10 lines / bare ReportLab table",
        "<=",
        2.0,
        "x",
    ),
    "pdf_1000": Target(
        "render.pdf_vs_bare_reportlab.1000",
        "render",
        "PDF at 1,000 lines / bare ReportLab table",
        "<=",
        2.0,
        "x",
    ),
    "xlsx_10": Target(
        "render.xlsx_vs_bare_openpyxl.10",
        "render",
        "XLSX at 10 lines / bare openpyxl sheet",
        "<=",
        1.5,
        "x",
    ),
    "xlsx_1000": Target(
        "render.xlsx_vs_bare_openpyxl.1000",
        "render",
        "XLSX at 1,000 lines / bare openpyxl sheet",
        "<=",
        1.5,
        "x",
    ),
    "parse_1000": Target(
        "render.parse_vs_pdf.1000",
        "render",
        "Parse + validate / PDF render, 1,000 lines",
        "<=",
        0.1,
        "",
    ),
    "weasy_1000": Target(
        "render.weasyprint_vs_pdf.1000",
        "render",
        "WeasyPrint time / PDF time at 1,000 lines",
        ">=",
        8.0,
        "x",
    ),
}


# ----------------------------------------------------------------------------- baselines

#: rows per platypus Table in the bare ReportLab baseline (splitting stays linear)
CHUNK = 30

#: what each baseline does not do that the product's renderer does
LEAVES_OUT = {
    "bare_reportlab": (
        "only the items table: no seller/bill-to/ship-to blocks, logo, meta table, totals, "
        "tax breakdown, notes, payment details, 'Page N of M' footer, zebra rows, locale "
        "formatting (Babel) of money, quantities, dates and percents"
    ),
    "bare_reportlab_single": "as bare_reportlab, in one Table (ReportLab's default splitting)",
    "bare_openpyxl": (
        "only the item rows as plain values: no styles (fonts, fills, borders, number "
        "formats), column widths, header block, formulas (line amounts, totals), totals "
        "rows, Tax sheet, document properties; write-only mode"
    ),
    "openpyxl_same_content": (
        "the same blocks, styles, formulas, totals and Tax sheet with openpyxl's public API "
        "(write-only mode); left out: locale-formatted labels and number formats (CLDR "
        "patterns per locale), right-to-left sheets, discount/shipping/paid rows and the "
        "discount split per rate, ship-to, notes, terms, payment details, the logo, "
        "cached formula values, print settings and the workbook check"
    ),
    "weasyprint": "nothing visible: an equivalent HTML invoice (a different engine)",
}

_BARE_FONT = "BenchDejaVu"
_BARE_FONT_BOLD = "BenchDejaVu-Bold"
_TWO = Decimal("0.01")


def _fonts_dir() -> Path:
    from invoiceflow.render.pdf import FONTS_DIR

    return Path(FONTS_DIR)


def _register_bare_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if _BARE_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(_BARE_FONT, str(_fonts_dir() / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(_BARE_FONT_BOLD, str(_fonts_dir() / "DejaVuSans-Bold.ttf")))


def _plain_rows(invoice: Any) -> list[list[Any]]:
    """The item rows as a bare table would hold them: numbers as plain values."""
    rows = []
    for n, it in enumerate(invoice.items, 1):
        amount = (it.quantity * it.unit_price).quantize(_TWO)
        rows.append(
            [
                n,
                it.sku or "",
                it.description,
                f"{it.quantity} {it.unit or ''}".strip(),
                it.unit_price,
                it.tax_rate,
                amount,
            ]
        )
    return rows


HEADER = ["#", "SKU", "Description", "Qty", "Unit price", "Tax %", "Amount"]


def bare_reportlab(invoice: Any, chunk: int | None = CHUNK) -> bytes:
    """The items as platypus Tables of ``chunk`` rows (``None``: one Table of every row)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    _register_bare_fonts()
    widths = [10 * mm, 22 * mm, 68 * mm, 20 * mm, 18 * mm, 12 * mm, 24 * mm]
    desc_room = widths[2] - 12
    para_style = ParagraphStyle("bare", fontName=_BARE_FONT, fontSize=8.5, leading=10.5)
    data: list[list[Any]] = [HEADER]
    for n, sku, desc, qty, price, tax, amount in _plain_rows(invoice):
        cell: Any = desc
        if stringWidth(desc, _BARE_FONT, 8.5) > desc_room:
            cell = Paragraph(html.escape(desc), para_style)
        data.append(
            [
                str(n),
                sku,
                cell,
                qty,
                f"{price:,.2f}",
                "" if tax is None else f"{tax}",
                f"{amount:,.2f}",
            ]
        )
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), _BARE_FONT, 8.5),
            ("FONT", (0, 0), (-1, 0), _BARE_FONT_BOLD, 8.5),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
        ]
    )
    body = data[1:]
    step = chunk or max(len(body), 1)
    tables = [
        Table([HEADER, *body[i : i + step]], colWidths=widths, repeatRows=1, style=style)
        for i in range(0, max(len(body), 1), step)
    ]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=20 * mm,
        invariant=1,
    )
    doc.build(tables)
    return buf.getvalue()


def bare_reportlab_single(invoice: Any) -> bytes:
    return bare_reportlab(invoice, None)


def bare_openpyxl(invoice: Any) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Invoice")
    ws.append(HEADER)
    for row in _plain_rows(invoice):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def openpyxl_same_content(invoice: Any) -> bytes:
    """The product's workbook content written with openpyxl's public API (write-only mode, its
    fast path): an Invoice sheet with a title, the meta and party blocks, styled item rows
    (fonts, fill, borders, number formats, wrapped descriptions, column widths, frozen
    header), a ROUND formula per line amount, totals rows as formulas that refer to a Tax
    sheet with one SUMIF row per rate. What it still leaves out: ``LEAVES_OUT``."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    from invoiceflow.domain import compute_totals
    from invoiceflow.render.content import party_details, party_title

    t = compute_totals(invoice)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Invoice")
    tax = wb.create_sheet("Tax")
    bold, title = Font(bold=True), Font(bold=True, size=16, color="1F3A5F")
    head_font, head_fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F3A5F")
    zebra = PatternFill("solid", fgColor="EEF2F7")
    thin = Border(bottom=Side(style="thin", color="C9D1DC"))
    wrap = Alignment(wrap_text=True, vertical="top")
    money = "#,##0.00"
    for col, width in zip("ABCDEFGH", (5, 12, 48, 10, 8, 12, 8, 14), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A12"

    def cell(sheet: Any, value: Any, **style: Any) -> Any:
        c = WriteOnlyCell(sheet, value=value)
        for key, v in style.items():
            setattr(c, key, v)
        return c

    ws.append([cell(ws, "INVOICE", font=title)])
    ws.append([cell(ws, party_title(invoice.seller), font=bold)])
    ws.append(["Invoice no.", invoice.number])
    ws.append(["Issue date", cell(ws, invoice.issue_date, number_format="yyyy-mm-dd")])
    ws.append(
        ["Due date", cell(ws, invoice.due_date, number_format="yyyy-mm-dd")]
        if invoice.due_date
        else []
    )
    ws.append(["Currency", invoice.currency])
    bill = [party_title(invoice.bill_to), *party_details(invoice.bill_to)]
    ws.append(["Bill to", ", ".join(bill)[:250]])
    ws.append([", ".join(party_details(invoice.seller))[:250]])
    ws.append([])
    ws.append([])
    ws.append(
        [cell(ws, h, font=head_font, fill=head_fill) for h in [*HEADER[:4], "Unit", *HEADER[4:]]]
    )
    first = 12
    for n, it in enumerate(invoice.items):
        r = first + n
        style: dict[str, Any] = {"border": thin}
        if n % 2:
            style["fill"] = zebra
        ws.append(
            [
                cell(ws, n + 1, **style),
                cell(ws, it.sku or "", **style),
                cell(ws, it.description, alignment=wrap, **style),
                cell(ws, it.quantity, number_format="0.###", **style),
                cell(ws, it.unit or "", **style),
                cell(ws, it.unit_price, number_format=money, **style),
                cell(
                    ws,
                    None if it.tax_rate is None else it.tax_rate / 100,
                    number_format="0.0%",
                    **style,
                ),
                cell(ws, f"=ROUND(D{r}*F{r},2)", number_format=money, **style),
            ]
        )
    last = first + len(invoice.items) - 1
    ws.append([])
    groups = len(t.tax_breakdown)
    totals = [
        ("Subtotal", f"=SUM(H{first}:H{last})"),
        ("Tax", f"=SUM(Tax!D3:D{2 + groups})"),
        ("Total", f"=H{last + 2}+H{last + 3}"),
        ("Balance due", f"=H{last + 4}"),
    ]
    for label, formula in totals:
        ws.append(
            [None] * 6
            + [cell(ws, label, font=bold), cell(ws, formula, font=bold, number_format=money)]
        )
    tax.append([cell(tax, f"Invoice {invoice.number}: tax", font=title)])
    tax.append([cell(tax, h, font=head_font, fill=head_fill) for h in ("Rate", "Net", "", "Tax")])
    for i, g in enumerate(t.tax_breakdown):
        r = 3 + i
        rate = None if g.rate is None else g.rate / 100
        tax.append(
            [
                cell(tax, rate, number_format="0.0%"),
                cell(
                    tax,
                    f"=SUMIF(Invoice!G{first}:G{last},A{r},Invoice!H{first}:H{last})",
                    number_format=money,
                ),
                None,
                cell(tax, f"=ROUND(B{r}*A{r},2)", number_format=money),
            ]
        )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


_CSS = """
@font-face { font-family: "Bench Sans"; src: url("%(regular)s"); }
@font-face { font-family: "Bench Sans"; font-weight: bold; src: url("%(bold)s"); }
@page { size: A4; margin: 16mm 18mm 20mm 18mm;
  @bottom-center { content: "Invoice %(number)s \\00b7 Page " counter(page) " of "
                   counter(pages); font: 7.5pt "Bench Sans"; color: #5B6675; } }
body { font: 9pt/1.3 "Bench Sans"; color: #1E2329; }
.top { display: flex; justify-content: space-between; }
.company { font-weight: bold; font-size: 16pt; color: #1F3A5F; }
h1 { font-size: 24pt; color: #1F3A5F; text-align: right; margin: 0 0 6pt 0; }
.meta td { padding: 1pt 0 1pt 8pt; text-align: right; }
.panels { display: flex; gap: 8mm; margin: 7mm 0; }
.panel { flex: 1; border: 0.75pt solid #C9D1DC; }
.panel h2 { background: #E3E9F1; color: #1F3A5F; font-size: 7.5pt; margin: 0; padding: 4pt 7pt; }
.panel p { margin: 0; padding: 4pt 7pt 6pt 7pt; }
table.items { width: 100%%; border-collapse: collapse; font-size: 8.5pt; }
table.items th { background: #1F3A5F; color: white; text-align: left; padding: 4pt 5pt; }
table.items td { padding: 4pt 5pt; vertical-align: top; }
table.items tr:nth-child(even) td { background: #EEF2F7; }
table.items .num { text-align: right; white-space: nowrap; }
table.totals { margin: 5mm 0 0 auto; border-collapse: collapse; }
table.totals td { padding: 3pt 5pt; }
table.totals td.v { text-align: right; font-weight: bold; }
table.totals tr.due td { background: #1F3A5F; color: white; font-weight: bold; }
.small { font-size: 8pt; color: #5B6675; }
"""


def _party_html(title: str, party: Any) -> str:
    from invoiceflow.render.content import party_details, party_title

    if party is None:
        return ""
    body = "<br>".join(html.escape(line) for line in [party_title(party), *party_details(party)])
    return f'<div class="panel"><h2>{title}</h2><p>{body}</p></div>'


def weasyprint_html(invoice: Any) -> str:
    """The invoice as HTML for WeasyPrint: what the PDF shows, with locale formatting."""
    from invoiceflow.domain import compute_totals
    from invoiceflow.render import localize
    from invoiceflow.render.content import (
        party_details,
        party_title,
        payment_fields,
        tax_line_label,
    )

    t = compute_totals(invoice)
    inv = invoice
    fonts = _fonts_dir()
    css = _CSS % {
        "regular": (fonts / "DejaVuSans.ttf").as_uri(),
        "bold": (fonts / "DejaVuSans-Bold.ttf").as_uri(),
        "number": html.escape(inv.number),
    }
    esc = html.escape
    seller = inv.seller
    logo = (
        f'<img src="{inv.logo.data_uri()}" style="max-height:18mm;max-width:50mm">'
        if inv.logo
        else ""
    )
    meta = [("Invoice no.", inv.number), ("Issue date", localize.date(inv.issue_date, inv))]
    if inv.due_date:
        meta.append(("Due date", localize.date(inv.due_date, inv)))
    if inv.payment_terms:
        meta.append(("Terms", inv.payment_terms))
    meta.append(("Currency", inv.currency))
    rows = []
    for n, (it, lt) in enumerate(zip(inv.items, t.lines, strict=True), 1):
        qty = localize.quantity(it.quantity, inv) + (f" {it.unit}" if it.unit else "")
        tax = localize.percent(it.tax_rate, inv) if it.tax_rate is not None else "\u2013"
        rows.append(
            f'<tr><td class="num">{n}</td><td>{esc(it.sku or "")}</td>'
            f"<td>{esc(it.description)}</td><td class=num>{esc(qty)}</td>"
            f"<td class=num>{esc(localize.money(it.unit_price, inv))}</td>"
            f"<td class=num>{esc(tax)}</td>"
            f"<td class=num>{esc(localize.money(lt.amount, inv))}</td></tr>"
        )
    totals = [("Subtotal", localize.money(t.subtotal, inv), "")]
    if t.discount:
        totals.append(("Discount", localize.money(-t.discount, inv), ""))
    if t.shipping:
        totals.append(("Shipping", localize.money(t.shipping, inv), ""))
    totals += [(tax_line_label(g, inv), localize.money(g.tax, inv), "") for g in t.tax_breakdown]
    totals.append(("Total", localize.money(t.total, inv), ""))
    if t.amount_paid:
        totals.append(("Amount paid", localize.money(-t.amount_paid, inv), ""))
    totals.append(("Balance due", localize.money(t.balance_due, inv), "due"))
    closing = ""
    for head, text in (("Notes", inv.notes), ("Terms and conditions", inv.terms)):
        if text:
            closing += f"<h3>{head}</h3><p class=small>{esc(text)}</p>"
    if inv.payment:
        closing += (
            "<h3>Payment details</h3><p>"
            + "<br>".join(f"{k}: {esc(v)}" for k, v in payment_fields(inv.payment))
            + "</p>"
        )
    return (
        f"<!doctype html><html lang='{esc(inv.locale)}'><head><meta charset=utf-8>"
        f"<title>Invoice {esc(inv.number)}</title><style>{css}</style></head><body>"
        f"<div class=top><div>{logo}<div class=company>{esc(party_title(seller))}"
        f"</div><div class=small>{'<br>'.join(esc(a) for a in party_details(seller))}</div></div>"
        f"<div><h1>INVOICE</h1><table class=meta>"
        + "".join(f"<tr><td>{k}</td><td><b>{esc(v)}</b></td></tr>" for k, v in meta)
        + "</table></div></div>"
        f"<div class=panels>{_party_html('BILL TO', inv.bill_to)}"
        f"{_party_html('SHIP TO', inv.ship_to)}</div>"
        "<table class=items><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in HEADER[:5])
        + "<th>Tax</th><th>Amount</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "<table class=totals>"
        + "".join(
            f'<tr class="{k}"><td>{esc(a)}</td><td class=v>{esc(b)}</td></tr>' for a, b, k in totals
        )
        + f"</table>{closing}</body></html>"
    )


def weasyprint_pdf(invoice: Any) -> bytes:
    import weasyprint

    return bytes(weasyprint.HTML(string=weasyprint_html(invoice)).write_pdf())


def weasyprint_status() -> tuple[bool, str | None, str | None]:
    """(available, version, reason if not)."""
    try:
        import weasyprint
    except ImportError as exc:
        return (
            False,
            None,
            (
                f"weasyprint is not installed ({exc}); install it with "
                "`.venv/bin/pip install weasyprint` (needs Pango: "
                "`apt-get install -y libpango-1.0-0 libpangoft2-1.0-0`)"
            ),
        )
    except OSError as exc:  # Pango/HarfBuzz shared libraries missing
        return (
            False,
            None,
            (
                f"weasyprint cannot load its libraries ({exc}); install Pango: "
                "`apt-get install -y libpango-1.0-0 libpangoft2-1.0-0`"
            ),
        )
    try:
        weasyprint.HTML(string="<p>probe</p>").write_pdf()
    except Exception as exc:  # noqa: BLE001 - any failure makes the baseline unavailable
        return False, weasyprint.__version__, f"weasyprint fails to render: {exc!r}"
    return True, weasyprint.__version__, None


# ----------------------------------------------------------------------------- timing


def _time(fn: Callable[[Any], bytes], arg: Any) -> tuple[float, int]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn(arg)
    return time.perf_counter() - t0, len(out)


def run(quick: bool, profile_dir: Path | None = None) -> dict[str, Any]:
    from invoiceflow.domain import parse_invoice
    from invoiceflow.render.pdf import render_pdf
    from invoiceflow.render.xlsx import render_xlsx

    weasy_ok, weasy_version, weasy_reason = weasyprint_status()
    if quick and not weasy_ok:
        log(f"render: WeasyPrint baseline unavailable: {weasy_reason}")
    variants: dict[str, Callable[[Any], bytes]] = {
        "pdf": render_pdf,
        "xlsx": render_xlsx,
        "bare_reportlab": bare_reportlab,
        "bare_openpyxl": bare_openpyxl,
        "bare_reportlab_single": bare_reportlab_single,
        "openpyxl_same_content": openpyxl_same_content,
    }
    sizes = QUICK_SIZES if quick else SIZES
    results: list[dict[str, Any]] = []
    for lines in sizes:
        reps = 1 if quick else FULL_REPS[lines]
        load = Load()
        raw = json.dumps(invoice_document(lines)).encode()
        inv = parse(invoice_document(lines))

        def parse_raw(_: Any, raw: bytes = raw) -> bytes:
            parse_invoice(raw, max_bytes=1 << 40)
            return raw

        arg: dict[str, Any] = {"parse": raw}
        wanted = dict(variants)
        wanted["parse"] = parse_raw
        weasy_here = weasy_ok and lines in WEASYPRINT_SIZES and not (quick and lines > 100)
        if weasy_here:
            wanted["weasyprint"] = weasyprint_pdf
        reps_for = {name: reps for name in wanted}
        if weasy_here:
            reps_for["weasyprint"] = 1 if quick else WEASY_REPS[lines]
        runs: dict[str, list[float]] = {k: [] for k in wanted}
        sizes_out: dict[str, int] = {}
        for name, fn in wanted.items():  # warm-up (fonts, styles, imports, caches)
            _, sizes_out[name] = _time(fn, arg.get(name, inv))
        for rnd_ in range(max(reps_for.values())):
            for name, fn in wanted.items():
                if rnd_ < reps_for[name]:
                    runs[name].append(_time(fn, arg.get(name, inv))[0])
        med = {k: median(v) for k, v in runs.items()}
        row = {
            "lines": lines,
            "repetitions": {k: len(v) for k, v in runs.items()},
            "pdf_ms": ms(med["pdf"]),
            "xlsx_ms": ms(med["xlsx"]),
            "bare_reportlab_ms": ms(med["bare_reportlab"]),
            "bare_openpyxl_ms": ms(med["bare_openpyxl"]),
            "bare_reportlab_single_ms": ms(med["bare_reportlab_single"]),
            "openpyxl_same_content_ms": ms(med["openpyxl_same_content"]),
            "xlsx_vs_openpyxl_same_content": ratio(med["xlsx"], med["openpyxl_same_content"]),
            "parse_ms": ms(med["parse"]),
            "parse_vs_pdf": ratio(med["parse"], med["pdf"]),
            "weasyprint_ms": ms(med.get("weasyprint")),
            "pdf_vs_bare_reportlab": ratio(med["pdf"], med["bare_reportlab"]),
            "xlsx_vs_bare_openpyxl": ratio(med["xlsx"], med["bare_openpyxl"]),
            "weasyprint_vs_pdf": ratio(med.get("weasyprint"), med["pdf"]),
            "pdf_bytes": sizes_out["pdf"],
            "xlsx_bytes": sizes_out["xlsx"],
            "runs_ms": {k: [ms(x) for x in v] for k, v in runs.items()},
            "load": load.done(),
        }
        results.append(row)
        log(
            f"render {lines:>6} lines: pdf {row['pdf_ms']} ms ({row['pdf_vs_bare_reportlab']}x "
            f"bare), xlsx {row['xlsx_ms']} ms ({row['xlsx_vs_bare_openpyxl']}x bare), "
            f"weasyprint {row['weasyprint_ms']} ms, parse {row['parse_ms']} ms "
            f"({row['parse_vs_pdf']} of the PDF)"
        )
    if profile_dir is not None:
        _profile(profile_dir, render_pdf, render_xlsx)
    by_lines = {r["lines"]: r for r in results}

    def fig(lines: int, key: str) -> float | None:
        value = by_lines.get(lines, {}).get(key)
        return None if value is None else float(value)

    weasy_note = None if weasy_ok else weasy_reason
    targets = [
        verdict(TARGETS["pdf_10"], fig(10, "pdf_vs_bare_reportlab")),
        verdict(
            TARGETS["pdf_1000"],
            fig(1000, "pdf_vs_bare_reportlab"),
            None if 1000 in by_lines else "not measured in quick mode",
        ),
        verdict(TARGETS["xlsx_10"], fig(10, "xlsx_vs_bare_openpyxl")),
        verdict(
            TARGETS["xlsx_1000"],
            fig(1000, "xlsx_vs_bare_openpyxl"),
            None if 1000 in by_lines else "not measured in quick mode",
        ),
        verdict(
            TARGETS["parse_1000"],
            fig(1000, "parse_vs_pdf"),
            None if 1000 in by_lines else "not measured in quick mode",
        ),
        verdict(
            TARGETS["weasy_1000"],
            fig(1000, "weasyprint_vs_pdf"),
            weasy_note or (None if 1000 in by_lines else "not measured in quick mode"),
        ),
    ]
    return {
        "status": "ok",
        "document": "events/examples/invoices/long-300-lines.json, items cycled to N lines",
        "leaves_out": LEAVES_OUT,
        "chunk": CHUNK,
        "weasyprint": {"available": weasy_ok, "version": weasy_version, "reason": weasy_reason},
        "results": results,
        "targets": targets,
    }


def _profile(
    out: Path, render_pdf: Callable[[Any], bytes], render_xlsx: Callable[[Any], bytes]
) -> None:
    """pyinstrument profiles of both renderers at 1,000 lines (text), for the analysis."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        log("render: --profile needs pyinstrument (pip install pyinstrument)")
        return
    out.mkdir(parents=True, exist_ok=True)
    inv = parse(invoice_document(1000))
    for name, fn in (
        ("pdf", render_pdf),
        ("xlsx", render_xlsx),
        ("bare_reportlab", bare_reportlab),
        ("bare_openpyxl", bare_openpyxl),
    ):
        fn(inv)
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(3):
            fn(inv)
        profiler.stop()
        path = out / f"render-{name}-1000.txt"
        path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        log(f"render: profile written to {path}")
