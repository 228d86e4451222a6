"""The Excel workbook of an invoice: ``render_xlsx(invoice) -> bytes``.

Two sheets:

* **Invoice**: the header (seller, invoice number, dates, Bill To / Ship To), the items table
  (styled header, frozen below it, autofilter, currency formats) and the totals, then notes,
  terms and payment details. Every derived figure is a live formula.
* **Tax**: one row per tax group of :func:`~invoiceflow.domain.totals.compute_totals` (same
  order: not taxed first, then ascending rates) with lines, discount share, shipping, base and
  tax, plus a total row.

Each formula lives in one place. The items' gross/discount/amount are on the Invoice sheet;
everything per rate (including the split of the invoice discount) is on the Tax sheet, and the
Invoice sheet's discount and tax lines refer to it. Every amount is ``ROUND(..., digits)`` with
the currency's minor digits, exactly as :mod:`invoiceflow.domain.money` states the policy, so
Excel and LibreOffice (whose ``ROUND`` is half away from zero, like ``ROUND_HALF_UP``) arrive
at the figures of ``compute_totals()``. Sums of already rounded amounts are wrapped in
``ROUND`` too: that changes no exact figure and removes binary floating-point noise.

A spreadsheet keeps 15 significant digits; an invoice with a number that needs more (or dates
Excel cannot show) cannot be rendered faithfully and raises :class:`RenderError`.

The output is byte-identical for the same invoice: document properties and the zip entries'
timestamps come from the issue date, never from the clock.

Speed: rows are streamed (openpyxl's write-only mode) and every cell style is built once per
workbook as a style array shared by all cells of that kind, so a line costs little more than
writing its values. Columns that no item uses (SKU, unit, line discounts) are left out.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.packaging.core import DocumentProperties
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import IllegalCharacterError
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.writer.excel import ExcelWriter

from invoiceflow.domain.model import Invoice, Party
from invoiceflow.domain.money import minor_digits
from invoiceflow.domain.totals import Totals, compute_totals
from invoiceflow.errors import Problem, RenderError

__all__ = ["MEDIA_TYPE", "render_xlsx"]

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

INVOICE_SHEET = "Invoice"
TAX_SHEET = "Tax"

#: Excel keeps 15 significant digits of a number
MAX_DIGITS = 15
#: the longest text a cell can hold
MAX_TEXT = 32767
#: rows in a worksheet
MAX_ROWS = 1_048_576

NAVY = "FF1F3864"
WHITE = "FFFFFFFF"
GREY = "FF595959"

_HEADER_FONT = Font(name="Calibri", size=11, bold=True, color=WHITE)
_HEADER_FILL = PatternFill(fill_type="solid", start_color=NAVY, end_color=NAVY)
_TITLE_FONT = Font(name="Calibri", size=18, bold=True, color=NAVY)
_BOLD = Font(name="Calibri", size=11, bold=True)
_SECTION_FONT = Font(name="Calibri", size=11, bold=True, color=NAVY)
_MUTED = Font(name="Calibri", size=11, color=GREY)
_TOTAL_FONT = Font(name="Calibri", size=12, bold=True)
_TOP_LINE = Border(top=Side(style="thin", color=NAVY))
_RIGHT = Alignment(horizontal="right")
_HEADER_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)
_DATE_FORMAT = "yyyy-mm-dd"
_BIDI_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c"))
_PAPER_LETTER, _PAPER_A4 = 1, 9  # ECMA-376 paper size codes
_LETTER_TERRITORIES = frozenset({"US", "CA", "MX", "PH", "CL", "CO", "VE", "GT", "PR"})


def render_xlsx(invoice: Invoice) -> bytes:
    """The invoice as an .xlsx workbook (bytes). Raises RenderError when it cannot be."""
    totals = compute_totals(invoice)
    _check_renderable(invoice, totals)
    try:
        return _Renderer(invoice, totals).render()
    except IllegalCharacterError as exc:  # guarded by _text; kept as a last line of defence
        raise RenderError("the invoice contains characters a workbook cannot hold") from exc


# --------------------------------------------------------------------------- checks


def _digits(value: Decimal) -> int:
    """Significant digits of a finite value (trailing zeros do not count)."""
    return len(value.normalize().as_tuple().digits) if value else 0


def _check_renderable(inv: Invoice, totals: Totals) -> None:
    problems: list[Problem] = []

    def number(pointer: str, value: Decimal | None, what: str) -> None:
        if value is None:
            return
        if not value.is_finite():
            problems.append(Problem(pointer, f"{what} is not a number"))
        elif _digits(value) > MAX_DIGITS:
            problems.append(Problem(pointer, f"{what} has more than {MAX_DIGITS} significant "
                                             "digits, which a spreadsheet cannot hold"))

    if len(inv.items) + 200 > MAX_ROWS:
        problems.append(Problem("/items", "too many items for one worksheet"))
    for i, (it, lt) in enumerate(zip(inv.items, totals.lines, strict=True)):
        p = f"/items/{i}"
        number(f"{p}/quantity", it.quantity, "the quantity")
        number(f"{p}/unit_price", it.unit_price, "the unit price")
        number(f"{p}/tax_rate", it.tax_rate, "the tax rate")
        if it.discount is not None:
            number(f"{p}/discount", it.discount.value, "the discount")
        number(p, lt.gross, "the line amount")
        number(p, lt.amount, "the line amount")
    number("/discount", inv.discount.value if inv.discount else None, "the discount")
    number("/shipping", inv.shipping, "the shipping")
    number("/shipping_tax_rate", inv.shipping_tax_rate, "the shipping tax rate")
    number("/amount_paid", inv.amount_paid, "the amount paid")
    for g in totals.groups:
        number("", g.lines, "a tax group's amount")
        number("", g.base, "a tax group's base")
    for name in ("subtotal", "discount", "tax", "total", "balance_due"):
        number("", getattr(totals, name), f"the {name.replace('_', ' ')}")
    for pointer, d in (("/issue_date", inv.issue_date), ("/due_date", inv.due_date)):
        if d is not None and d < date(1900, 3, 1):
            problems.append(Problem(pointer, "a spreadsheet cannot show dates before 1900-03-01"))
    if problems:
        raise RenderError("the invoice cannot be rendered as a workbook", problems)


# --------------------------------------------------------------------------- formats


@lru_cache(maxsize=256)
def _currency_affixes(currency: str, locale: str) -> tuple[str, str]:
    """The currency symbol as prefix or suffix, the way the invoice's locale writes it."""
    from babel import Locale, UnknownLocaleError
    from babel.numbers import get_currency_symbol

    try:
        loc = Locale.parse(locale)
        symbol = get_currency_symbol(currency, loc)
        pattern = loc.currency_formats["standard"].pattern.split(";")[0]
    except (UnknownLocaleError, ValueError, KeyError):
        symbol, pattern = currency, "¤\xa0#"
    symbol = symbol.translate(_BIDI_MARKS).replace('"', "").strip() or currency
    pattern = pattern.translate(_BIDI_MARKS)
    if pattern.startswith("¤"):
        spaced = pattern[1:2] in (" ", "\xa0") or (len(symbol) > 1 and symbol.isalpha())
        return symbol + ("\xa0" if spaced else ""), ""
    spaced = pattern[-2:-1] in (" ", "\xa0") or not pattern.endswith("¤")
    return "", ("\xa0" if spaced else "") + symbol


def _fixed(decimals: int) -> str:
    return "#,##0" + ("." + "0" * decimals if decimals > 0 else "")


def _money_format(digits: int, prefix: str, suffix: str, decimals: int | None = None) -> str:
    body = _fixed(digits if decimals is None else decimals)
    return (f'"{prefix}"' if prefix else "") + body + (f'"{suffix}"' if suffix else "")


def _percent_format(decimals: int) -> str:
    return ("0." + "0" * decimals if decimals else "0") + '"%"'


def _decimals(values: Iterable[Decimal | None]) -> int:
    """Decimals needed to show every value exactly (capped at 6)."""
    most = 0
    for v in values:
        if v is not None:
            exp = v.normalize().as_tuple().exponent
            if isinstance(exp, int) and -exp > most:
                most = -exp
    return min(most, 6)


def _rate_text(rate: Decimal) -> str:
    text = format(rate.normalize(), "f")
    return f"{text}%"


# --------------------------------------------------------------------------- zip


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed timestamp (reproducible output)."""

    def __init__(self, file: io.BytesIO, when: date) -> None:
        super().__init__(file, "w", zipfile.ZIP_DEFLATED)
        year = min(max(when.year, 1980), 2107)
        self._date_time = (year, when.month, when.day, 0, 0, 0)

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None,
                 compresslevel: Any = None) -> None:
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=self._date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename: Any, arcname: Any = None, compress_type: Any = None,
              compresslevel: Any = None) -> None:
        if isinstance(filename, io.BytesIO):  # a worksheet written by _MemoryWriter
            self.writestr(arcname, filename.getvalue())
            return
        with open(filename, "rb") as fh:
            data = fh.read()
        self.writestr(arcname or filename, data)


class _MemoryWriter(WorksheetWriter):
    """openpyxl's worksheet writer, streaming into memory instead of a temporary file."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws, out=io.BytesIO())

    def cleanup(self) -> None:
        pass


class _RowStream:
    """Streams the rows of one write-only worksheet straight to openpyxl's writer.

    Start it once the sheet's columns, panes and views are set (they come before the rows in
    the XML). ``append`` takes plain values and ready-made, already styled ``Cell`` objects;
    unlike ``WriteOnlyWorksheet.append`` it does not first try to bind every cell as a value
    (an exception per styled cell), which made rendering about twice as slow. When the
    workbook is saved, openpyxl closes the sheet: that ends sheetData here and writes the rest.
    """

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.writer = _MemoryWriter(ws)
        self.writer.write_top()
        self.xf = self.writer.xf.send(True)
        self._data = self.xf.element("sheetData")
        self._data.__enter__()
        self.row = 0
        ws._writer = self.writer
        ws._rows = self  # WriteOnlyWorksheet.close() calls close() on it

    def append(self, values: Iterable[Any]) -> None:
        self.row = r = self.row + 1
        cells = []
        for col, value in enumerate(values, 1):
            if value is None:
                continue
            if isinstance(value, Cell):
                value.row, value.column = r, col
                cells.append(value)
            else:
                cells.append(Cell(self.ws, row=r, column=col, value=value))
        self.writer.write_row(self.xf, cells, r)

    def close(self) -> None:
        self._data.__exit__(None, None, None)
        self.writer.xf.send(None)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Column:
    key: str
    title: str
    width: float


class _Renderer:
    def __init__(self, inv: Invoice, totals: Totals) -> None:
        self.inv = inv
        self.totals = totals
        self.d = minor_digits(inv.currency)
        self.wb = Workbook(write_only=True)
        self.ws = self.wb.create_sheet(INVOICE_SHEET)
        self.tax_ws = self.wb.create_sheet(TAX_SHEET)
        self._columns()
        self._styles()
        self._plan()

    # ----------------------------------------------------------------- columns & styles

    def _columns(self) -> None:
        items = self.inv.items
        has = {
            "sku": any(it.sku for it in items),
            "unit": any(it.unit for it in items),
            "dpct": any(it.discount and it.discount.kind == "percent" for it in items),
            "damt": any(it.discount and it.discount.kind == "amount" for it in items),
        }
        has["ldisc"] = has["dpct"] or has["damt"]
        longest = max((len(it.description) for it in items), default=0)
        money_w = self._money_width()
        spec = [
            ("desc", "Description", float(min(max(longest + 2, 28), 60)), True),
            ("sku", "SKU", 14.0, has["sku"]),
            ("qty", "Quantity", 11.0, True),
            ("unit", "Unit", 9.0, has["unit"]),
            ("price", "Unit price", money_w, True),
            ("rate", "Tax rate", 10.0, True),
            ("dpct", "Discount %", 11.0, has["dpct"]),
            ("damt", "Discount amount", money_w, has["damt"]),
            ("gross", "Gross", money_w, has["ldisc"]),
            ("ldisc", "Line discount", money_w, has["ldisc"]),
            ("amount", "Amount", money_w, True),
        ]
        self.cols = [_Column(k, t, w) for k, t, w, on in spec if on]
        self.ncols = len(self.cols)
        self.col = {c.key: i + 1 for i, c in enumerate(self.cols)}
        self.L = {k: get_column_letter(i) for k, i in self.col.items()}
        # the totals block: inputs | labels | values in the last three columns
        self.c_val = self.ncols
        self.c_label = self.ncols - 1
        self.widths = [c.width for c in self.cols]
        self.widths[self.c_label - 1] = max(self.widths[self.c_label - 1], 16.0)
        self.widths[self.c_val - 1] = max(self.widths[self.c_val - 1], 16.0)
        self.has = has

    def _money_width(self) -> float:
        t = self.totals
        figures = [t.subtotal, t.total, t.balance_due, t.amount_paid]
        figures += [it.unit_price for it in self.inv.items]
        biggest = max((abs(v) for v in figures), default=Decimal(0))
        text = f"{biggest:,.{self.d}f}"
        return float(max(13, len(text) + 6))

    def _styles(self) -> None:
        """Every cell style once, as a style array shared by all cells of that kind."""
        ws = self.ws
        inv = self.inv
        prefix, suffix = _currency_affixes(inv.currency, inv.babel_locale)
        money = _money_format(self.d, prefix, suffix)
        price_dec = max(self.d, _decimals(it.unit_price for it in inv.items))
        qty_dec = _decimals(it.quantity for it in inv.items)
        rates = [it.tax_rate for it in inv.items] + [inv.shipping_tax_rate]
        rate_dec = _decimals(rates)
        dpct_dec = _decimals(it.discount.value for it in inv.items
                             if it.discount and it.discount.kind == "percent")
        damt_dec = max(self.d, _decimals(it.discount.value for it in inv.items
                                         if it.discount and it.discount.kind == "amount"))
        pos = money.replace("#,##0", "-#,##0", 1) if not prefix else f'-{money}'
        discount_fmt = f"{pos};{money};{money}"

        def style(font: Font | None = None, fill: PatternFill | None = None,
                  fmt: str | None = None, align: Alignment | None = None,
                  border: Border | None = None) -> Any:
            cell = Cell(ws, row=1, column=1)
            if font is not None:
                cell.font = font
            if fill is not None:
                cell.fill = fill
            if fmt is not None:
                cell.number_format = fmt
            if align is not None:
                cell.alignment = align
            if border is not None:
                cell.border = border
            return cell._style

        self.s = {
            "header": style(_HEADER_FONT, _HEADER_FILL, align=_HEADER_ALIGN),
            "title": style(_TITLE_FONT),
            "bold": style(_BOLD),
            "section": style(_SECTION_FONT),
            "muted": style(_MUTED),
            "label": style(_BOLD, align=_RIGHT),
            "date": style(fmt=_DATE_FORMAT, align=Alignment(horizontal="left")),
            "text_right": style(align=_RIGHT),
            "money": style(fmt=money),
            "money_bold": style(_BOLD, fmt=money),
            "money_total": style(_TOTAL_FONT, fmt=money, border=_TOP_LINE),
            "label_total": style(_TOTAL_FONT, align=_RIGHT, border=_TOP_LINE),
            "discount": style(fmt=discount_fmt),
            "price": style(fmt=_money_format(self.d, prefix, suffix, price_dec)),
            "qty": style(fmt=_fixed(qty_dec)),
            "rate": style(fmt=_percent_format(rate_dec)),
            "rate_bold": style(_BOLD, fmt=_percent_format(rate_dec)),
            "dpct": style(fmt=_percent_format(dpct_dec)),
            "damt": style(fmt=_money_format(self.d, prefix, suffix, damt_dec)),
            "inv_dpct": style(fmt=_percent_format(_decimals(
                [inv.discount.value] if inv.discount else []))),
            "inv_damt": style(fmt=_money_format(self.d, prefix, suffix, max(self.d, _decimals(
                [inv.discount.value] if inv.discount else [])))),
        }

    def _cell(self, value: Any, style: str) -> Cell:
        cell = Cell(self.ws, row=1, column=1, value=value)
        cell._style = self.s[style]
        return cell

    def _tcell(self, value: Any, style: str) -> Cell:
        cell = Cell(self.tax_ws, row=1, column=1, value=value)
        cell._style = self.s[style]
        return cell

    def _text(self, value: str | None) -> Any:
        """User text as a plain string cell: never read as a formula or an error code."""
        if not value:
            return None
        if len(value) > MAX_TEXT:
            raise RenderError(f"a text of {len(value)} characters is longer than a cell holds")
        if ILLEGAL_CHARACTERS_RE.search(value):
            value = _clean(value)
            if not value:
                return None
        if value[0] in "=#":
            cell = Cell(self.ws, row=1, column=1, value=value)
            cell.data_type = "s"
            return cell
        return value

    # ----------------------------------------------------------------- the plan (row numbers)

    def _plan(self) -> None:
        """Decide every row of both sheets before anything is written."""
        inv, t = self.inv, self.totals
        self.seller_lines = _party_lines(inv.seller)
        self.meta: list[tuple[str, Any, str]] = [("Invoice number", inv.number, "text_right")]
        self.meta.append(("Issue date", inv.issue_date, "date"))
        if inv.due_date is not None:
            self.meta.append(("Due date", inv.due_date, "date"))
        if inv.payment_terms:
            self.meta.append(("Payment terms", inv.payment_terms, "text_right"))
        self.meta.append(("Currency", inv.currency, "text_right"))
        head = max(len(self.seller_lines), len(self.meta))
        self.r_seller = 3
        bill = _party_lines(inv.bill_to)
        ship = _party_lines(inv.ship_to) if inv.ship_to else []
        self.r_parties = self.r_seller + head + 1
        self.party_rows = max(len(bill), len(ship)) + 1
        self.bill, self.ship = bill, ship
        self.r_head = self.r_parties + self.party_rows + 1
        self.r_first = self.r_head + 1
        self.r_last = self.r_head + len(inv.items)
        # the totals block
        r = self.r_last + 2
        self.r_sub = r
        r += 1
        self.r_ldisc = 0
        if self.has["ldisc"]:
            self.r_ldisc, r = r, r + 1
        self.r_disc = 0
        if inv.discount is not None:
            self.r_disc, r = r, r + 1
        self.r_ship = 0
        if inv.shipping:
            self.r_ship, r = r, r + 1
        self.taxed = [(i, g) for i, g in enumerate(t.groups) if g.rate is not None]
        self.r_taxes = list(range(r, r + len(self.taxed)))
        r += len(self.taxed)
        self.r_total, self.r_paid, self.r_balance = r, r + 1, r + 2
        self.r_end_totals = self.r_balance
        # the Tax sheet: header, one row per group, total, then the discount input
        self.t_first = 2
        self.t_last = 1 + len(t.groups)
        self.t_total = self.t_last + 1
        self.t_param = self.t_total + 2 if inv.discount is not None else 0

    # ----------------------------------------------------------------- rendering

    def render(self) -> bytes:
        self._properties()
        self._invoice_sheet()
        self._tax_sheet()
        out = io.BytesIO()
        archive = _FixedTimeZip(out, self.inv.issue_date)
        ExcelWriter(self.wb, archive).save()
        return out.getvalue()

    def _properties(self) -> None:
        inv = self.inv
        when = datetime(inv.issue_date.year, inv.issue_date.month, inv.issue_date.day)
        buyer = inv.bill_to.company or inv.bill_to.name
        seller = inv.seller.company or inv.seller.name
        self.wb.properties = DocumentProperties(
            title=_clean(f"Invoice {inv.number}"),
            subject=_clean(f"Invoice {inv.number} from {seller} to {buyer}"),
            creator=_clean(inv.seller.name),
            lastModifiedBy=_clean(inv.seller.name),
            keywords=_clean(f"invoice, {inv.number}"),
            category="Invoice",
            description=_clean(f"Total {self.totals.total} {inv.currency}, balance due "
                               f"{self.totals.balance_due} {inv.currency}"),
            language=inv.locale,
            created=when,
            modified=when,
        )

    def _invoice_sheet(self) -> None:
        ws, inv = self.ws, self.inv
        last_letter = get_column_letter(self.ncols)
        for i, width in enumerate(self.widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = f"A{self.r_first}"
        ws.sheet_view.showGridLines = False
        ws.sheet_view.zoomScale = 100
        self.out = _RowStream(ws)

        self._row([self._cell(f"Invoice {inv.number}", "title")])
        self._row([])
        for i in range(max(len(self.seller_lines), len(self.meta))):
            row: list[Any] = [None] * self.ncols
            if i < len(self.seller_lines):
                text, st = self.seller_lines[i]
                row[0] = self._styled_text(text, st)
            if i < len(self.meta):
                label, value, st = self.meta[i]
                row[self.c_label - 1] = self._cell(label, "label")
                value = self._text(value) if isinstance(value, str) else value
                row[self.c_val - 1] = self._restyle(value, st)
            self._row(row)
        self._row([])
        ship_col = min(3, self.ncols - 1)
        heads: list[Any] = [None] * self.ncols
        heads[0] = self._cell("Bill To", "section")
        if self.ship:
            heads[ship_col - 1] = self._cell("Ship To", "section")
        self._row(heads)
        for i in range(self.party_rows - 1):
            row = [None] * self.ncols
            if i < len(self.bill):
                row[0] = self._styled_text(*self.bill[i])
            if i < len(self.ship):
                row[ship_col - 1] = self._styled_text(*self.ship[i])
            self._row(row)
        self._row([])
        self._row([self._cell(c.title, "header") for c in self.cols])
        self._item_rows()
        self._row([])
        self._totals_rows()
        self._footer_rows()

        ref = f"A{self.r_head}:{last_letter}{self.r_last}"
        ws.auto_filter.ref = ref
        ws.print_title_rows = f"{self.r_head}:{self.r_head}"
        ws.print_area = f"A1:{last_letter}{self.out.row}"
        setup = ws.page_setup
        setup.orientation = "landscape" if self.ncols > 6 else "portrait"
        setup.paperSize = (_PAPER_LETTER if _territory(inv.locale) in _LETTER_TERRITORIES
                           else _PAPER_A4)
        setup.fitToWidth = 1
        setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        ws.print_options.horizontalCentered = True
        ws.oddFooter.center.text = "Page &P of &N"
        ws.oddFooter.left.text = _clean(f"Invoice {inv.number}")[:100].replace("&", "&&")

    def _row(self, cells: Sequence[Any]) -> None:
        self.out.append(cells)

    def _styled_text(self, text: str, style: str) -> Any:
        value = self._text(text)
        if style == "plain" or value is None:
            return value
        return self._restyle(value, style)

    def _restyle(self, value: Any, style: str) -> Any:
        if isinstance(value, Cell):
            value._style = self.s[style]
            return value
        return self._cell(value, style)

    def _item_rows(self) -> None:
        L, d, has = self.L, self.d, self.has
        s = self.s
        ws = self.ws
        q, p, dp, da = L["qty"], L["price"], L.get("dpct"), L.get("damt")
        keys = [c.key for c in self.cols]
        r = self.r_first
        assert self.out.row + 1 == r, (self.out.row, r)
        for it in self.inv.items:
            raw = f"{q}{r}*{p}{r}"
            parts = []
            if dp:
                parts.append(f"{raw}*{dp}{r}/100")
            if da:
                parts.append(f"{da}{r}")
            disc = "+".join(parts)
            values = {
                "desc": self._text(it.description),
                "sku": self._text(it.sku),
                "qty": _styled(ws, it.quantity, s["qty"]),
                "unit": self._text(it.unit),
                "price": _styled(ws, it.unit_price, s["price"]),
                "rate": _styled(ws, it.tax_rate, s["rate"]) if it.tax_rate is not None else None,
            }
            if has["ldisc"]:
                dsc = it.discount
                values["dpct"] = (_styled(ws, dsc.value, s["dpct"])
                                  if dsc and dsc.kind == "percent" else None)
                values["damt"] = (_styled(ws, dsc.value, s["damt"])
                                  if dsc and dsc.kind == "amount" else None)
                values["gross"] = _styled(ws, f"=ROUND({raw},{d})", s["money"])
                values["ldisc"] = _styled(ws, f"=ROUND({disc},{d})", s["money"])
                amount = f"=ROUND({raw}-({disc}),{d})"
            else:
                amount = f"=ROUND({raw},{d})"
            values["amount"] = _styled(ws, amount, s["money"])
            self.out.append([values.get(k) for k in keys])
            r += 1

    def _item_range(self, key: str) -> str:
        col = self.L[key]
        return f"{INVOICE_SHEET}!${col}${self.r_first}:${col}${self.r_last}"

    def _totals_rows(self) -> None:
        d, V = self.d, get_column_letter(self.c_val)
        inv = self.inv
        amt = self.L["amount"]

        def line(label: str, formula: str, value_style: str = "money",
                 label_style: str = "label", extra: Any = None) -> None:
            row: list[Any] = [None] * self.ncols
            if extra is not None and self.c_label >= 2:
                row[self.c_label - 2] = extra
            row[self.c_label - 1] = self._cell(label, label_style)
            row[self.c_val - 1] = self._cell(formula, value_style)
            self._row(row)

        assert self.out.row + 1 == self.r_sub
        if self.inv.items:
            sub = f"=ROUND(SUM({amt}{self.r_first}:{amt}{self.r_last}),{d})"
        else:
            sub = "=0"
        line("Subtotal", sub)
        if self.r_ldisc:
            ld = self.L["ldisc"]
            line("incl. line discounts",
                 f"=ROUND(SUM({ld}{self.r_first}:{ld}{self.r_last}),{d})", "money")
        if self.r_disc:
            dsc = inv.discount
            assert dsc is not None
            label = ("Discount " + _rate_text(dsc.value)) if dsc.kind == "percent" else "Discount"
            line(label, f"={TAX_SHEET}!$C${self.t_total}", "discount")
        if self.r_ship:
            rate = inv.shipping_tax_rate
            label = "Shipping" if rate is None else f"Shipping (tax {_rate_text(rate)})"
            line(label, f"=ROUND({_num(inv.shipping)},{d})")
        for (idx, g), _r in zip(self.taxed, self.r_taxes, strict=True):
            assert g.rate is not None
            line(f"Tax {_rate_text(g.rate)}", f"={TAX_SHEET}!$F${self.t_first + idx}")
        total = f"{V}{self.r_sub}"
        if self.r_disc:
            total += f"-{V}{self.r_disc}"
        if self.r_ship:
            total += f"+{V}{self.r_ship}"
        total += f"+{TAX_SHEET}!$F${self.t_total}"
        line("Total", f"=ROUND({total},{d})", "money_total", "label_total")
        line("Amount paid", f"=ROUND({_num(inv.amount_paid)},{d})")
        line("Balance due", f"=ROUND({V}{self.r_total}-{V}{self.r_paid},{d})", "money_total",
             "label_total")

    def _footer_rows(self) -> None:
        inv = self.inv
        blocks: list[tuple[str, list[str]]] = []
        if inv.notes:
            blocks.append(("Notes", inv.notes.splitlines()))
        if inv.terms:
            blocks.append(("Terms", inv.terms.splitlines()))
        pay = inv.payment
        if pay is not None:
            pairs = [("Bank", pay.bank_name), ("Account holder", pay.account_holder),
                     ("Account number", pay.account_number), ("IBAN", pay.iban),
                     ("BIC", pay.bic), ("Reference", pay.reference)]
            lines = [f"{k}: {v}" for k, v in pairs if v]
            if lines:
                blocks.append(("Payment details", lines))
        for title, lines in blocks:
            self._row([])
            self._row([self._cell(title, "section")])
            for text in lines:
                self._row([self._text(text)])

    def _tax_sheet(self) -> None:
        ws, t, d = self.tax_ws, self.totals, self.d
        inv = self.inv
        widths = [12, 16, 16, 16, 16, 16, 12]
        for i, w in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = w
        ws.freeze_panes = "A2"
        out = _RowStream(ws)
        heads = ["Rate", "Lines", "Discount share", "Shipping", "Base", "Tax", ""]
        out.append([self._tcell(h, "header") for h in heads])
        rates = self._item_range("rate")
        amounts = self._item_range("amount")
        sub = f"{INVOICE_SHEET}!${get_column_letter(self.c_val)}${self.r_sub}"
        first, last, tot = self.t_first, self.t_last, self.t_total
        disc = inv.discount
        for i, g in enumerate(t.groups):
            r = first + i
            rate_cell: Any = (self._tcell(g.rate, "rate_bold") if g.rate is not None else None)
            if not inv.items:
                lines = "=0"
            elif g.rate is None:
                lines = f'=ROUND(SUMIF({rates},"",{amounts}),{d})'
            else:
                lines = f"=ROUND(SUMIF({rates},A{r},{amounts}),{d})"
            if disc is None:
                share: Any = 0
            elif disc.kind == "percent":
                share = f"=ROUND(B{r}*$B${self.t_param}/100,{d})"
            elif r < last:
                share = f"=IF({sub}=0,0,ROUND($C${tot}*B{r}/{sub},{d}))"
            elif first == last:
                share = f"=$C${tot}"
            else:
                share = f"=ROUND($C${tot}-SUM(C{first}:C{last - 1}),{d})"
            if self.r_ship and g.rate == inv.shipping_tax_rate:
                ship: Any = f"={INVOICE_SHEET}!${get_column_letter(self.c_val)}${self.r_ship}"
            else:
                ship = 0
            tax: Any = 0 if g.rate is None else f"=ROUND(E{r}*A{r}/100,{d})"
            out.append([
                rate_cell,
                self._tcell(lines, "money"),
                self._tcell(share, "money"),
                self._tcell(ship, "money"),
                self._tcell(f"=ROUND(B{r}-C{r}+D{r},{d})", "money"),
                self._tcell(tax, "money"),
                self._tcell("not taxed", "muted") if g.rate is None else None,
            ])
        if disc is not None and disc.kind == "amount":
            share_total = f"=IF({sub}=0,0,ROUND($B${self.t_param},{d}))"
        else:
            share_total = f"=ROUND(SUM(C{first}:C{last}),{d})" if t.groups else "=0"

        def total(col: str) -> str:
            return f"=ROUND(SUM({col}{first}:{col}{last}),{d})" if t.groups else "=0"

        out.append([
            self._tcell("Total", "label_total"),
            self._tcell(total("B"), "money_total"),
            self._tcell(share_total, "money_total"),
            self._tcell(total("D"), "money_total"),
            self._tcell(total("E"), "money_total"),
            self._tcell(total("F"), "money_total"),
        ])
        if disc is not None:
            out.append([])
            style = "inv_dpct" if disc.kind == "percent" else "inv_damt"
            label = ("Invoice discount (percent)" if disc.kind == "percent"
                     else "Invoice discount (amount)")
            out.append([self._tcell(label, "bold"), self._tcell(disc.value, style)])
        setup = ws.page_setup
        setup.orientation = "portrait"
        setup.fitToWidth = 1
        setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        ws.print_title_rows = "1:1"


def _styled(ws: Any, value: Any, style: Any) -> Cell:
    cell = Cell(ws, row=1, column=1, value=value)
    cell._style = style
    return cell


def _num(value: Decimal) -> str:
    text = format(value, "f")
    return f"({text})" if text.startswith("-") else text


def _clean(text: str) -> str:
    """Without the control characters a workbook cannot hold (they are invisible anyway)."""
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _territory(locale: str) -> str:
    parts = locale.replace("_", "-").split("-")
    return parts[-1].upper() if len(parts) > 1 else ""


def _party_lines(p: Party | None) -> list[tuple[str, str]]:
    if p is None:
        return []
    out: list[tuple[str, str]] = [(p.name, "bold")]
    if p.company:
        out.append((p.company, "plain"))
    out += [(line, "plain") for line in p.address if line]
    if p.email:
        out.append((f"Email: {p.email}", "plain"))
    if p.phone:
        out.append((f"Phone: {p.phone}", "plain"))
    if p.tax_id:
        out.append((f"Tax ID: {p.tax_id}", "plain"))
    return out

