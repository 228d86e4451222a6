"""The Excel workbook of an invoice: ``render_xlsx(invoice) -> bytes``.

Two sheets:

* **Invoice**: the header (seller, invoice number, dates, Bill To / Ship To), the items table
  (styled header, frozen below it, autofilter, currency formats) and the totals, then notes,
  terms and payment details. Every derived figure is a live formula.
* **Tax**: a title row (the document's name and number), then one row per tax group of
  :func:`~invoiceflow.domain.totals.compute_totals` (same order: not taxed first, then
  ascending rates) with lines, discount share, shipping, base and tax, plus a total row.

Every word comes from the document's view (:func:`invoiceflow.render.view.build_view`), as
in the PDF: labels in the document's language (a right-to-left one turns the sheets right to
left), the same totals rows (a 0 % discount or shipping that rounds to nothing has none in
either) with the same signed figures (deductions are negative cells and the block adds up),
dates as real date cells whose number format is the view's date pattern
(:func:`excel_date_format`), amounts and quantities grouped as the locale's pattern groups
them, also where that is not by 3s (en-IN 12,34,567.89: :func:`_grouped`), the locale's
paper (portrait, one page wide), the branding's accent colour on the header row and title
and its footer text in the print footer.

Each formula lives in one place. The items' gross/discount/amount are on the Invoice sheet;
everything per rate (including the split of the invoice discount) is on the Tax sheet, and the
Invoice sheet's discount and tax lines refer to it. Every amount is ``ROUND(..., digits)`` with
the currency's minor digits, exactly as :mod:`invoiceflow.domain.money` states the policy, so
Excel and LibreOffice (whose ``ROUND`` is half away from zero, like ``ROUND_HALF_UP``) arrive
at the figures of ``compute_totals()``; a product (quantity x price, a percentage, a tax) is
first rounded to the decimals its exact value has (:func:`_round`), so the binary noise of a
large amount never tips a tie (LibreOffice rounded ``6320273454.789*50/100`` down). Sums of
already rounded amounts are wrapped in
``ROUND`` too: that changes no exact figure and removes binary floating-point noise.

Every formula cell also carries the figure of ``compute_totals()`` as its cached value (a
number), so viewers that do not calculate (file previews, ``data_only`` readers, pandas) show
the amounts; spreadsheets still recalculate the live formulas on load (``fullCalcOnLoad``).

A spreadsheet keeps 15 significant digits; an invoice with a number that needs more (or dates
Excel cannot show, or an unknown locale) cannot be rendered faithfully and raises
:class:`RenderError`. User text is always written as text (never as a formula or an error code);
control characters a workbook cannot hold are dropped.

The output is byte-identical for the same invoice: document properties and the zip entries'
timestamps come from the issue date, never from the clock.

Speed: openpyxl builds the workbook (styles, sheet settings, properties, packaging) but not
the cells: its per-cell element writer costs more than all the rest, so the rows, which hold
only a few kinds of cell (text, number, date, formula), are serialised by :class:`_Rows` and
put into the sheet openpyxl writes (:class:`_SheetWriter`, in memory). Each cell style is
built once per workbook and referenced by id. Columns that no item uses (SKU, unit, line
discounts) are left out. The stylesheet (``xl/styles.xml``), which openpyxl serialises through
its generic descriptors, is written once per distinct set of styles and reused
(:class:`_Writer`). ``_SheetWriter`` and ``_Writer`` lean on openpyxl 3.1 internals
(``WorksheetWriter``, ``WriteOnlyWorksheet._writer``, ``ExcelWriter.write_data``); the tests
read every workbook back and compare ``_Writer``'s bytes with openpyxl's own writer's, so a
change there shows up at once.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

# first: openpyxl without Pillow, which it would load for pictures (see there)
from invoiceflow.render import openpyxl_import  # noqa: F401

# isort: split
from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.packaging.core import DocumentProperties
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.colors import COLOR_INDEX
from openpyxl.styles.stylesheet import write_stylesheet
from openpyxl.styles.table import TableStyleList
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook._writer import WorkbookWriter
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.writer.excel import ExcelWriter
from openpyxl.writer.theme import theme_xml
from openpyxl.xml.constants import (
    ARC_APP,
    ARC_CORE,
    ARC_ROOT_RELS,
    ARC_STYLE,
    ARC_THEME,
    ARC_WORKBOOK,
    ARC_WORKBOOK_RELS,
)
from openpyxl.xml.functions import tostring

from invoiceflow.domain.model import Invoice
from invoiceflow.domain.money import minor_digits
from invoiceflow.domain.totals import TaxGroup, Totals, compute_totals, group_rate
from invoiceflow.errors import Problem, RenderError
from invoiceflow.records import record
from invoiceflow.render import localize
from invoiceflow.render.content import unit_label
from invoiceflow.render.contrast import INK_RGB, rgb_of, white_reads_better
from invoiceflow.render.view import DocumentView, PartyBlock, TotalKey, build_view

__all__ = ["render_xlsx"]


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

_BOLD = Font(name="Calibri", size=11, bold=True)
_SECTION_FONT = Font(name="Calibri", size=11, bold=True, color=NAVY)
_MUTED = Font(name="Calibri", size=11, color=GREY)
_TOTAL_FONT = Font(name="Calibri", size=12, bold=True)
_TOP_LINE = Border(top=Side(style="thin", color=NAVY))
_RIGHT = Alignment(horizontal="right")
_RIGHT_WRAP = Alignment(horizontal="right", wrap_text=True)
_WRAP = Alignment(wrap_text=True)
_HEADER_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)
_BIDI_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c"))
#: ECMA-376 paper size codes of localize.paper_size()
_PAPER_CODES = {"letter": 1, "a4": 9}


def render_xlsx(invoice: Invoice) -> bytes:
    """The invoice as an .xlsx workbook (bytes). Raises RenderError when it cannot be."""
    try:
        totals = compute_totals(invoice)
    except ArithmeticError as exc:  # e.g. a NaN that slipped past validation
        raise RenderError("the invoice's amounts cannot be computed") from exc
    _check_renderable(invoice, totals)
    return _Renderer(build_view(invoice, totals)).render()


# --------------------------------------------------------------------------- checks


def _digits(value: Decimal) -> int:
    """Significant digits of a finite value (trailing zeros do not count)."""
    n = len(value.as_tuple().digits)
    return n if n <= MAX_DIGITS else len(value.normalize().as_tuple().digits)


def _check_renderable(inv: Invoice, totals: Totals) -> None:
    problems: list[Problem] = []

    def number(pointer: str, value: Decimal | None, what: str) -> None:
        if value is None:
            return
        if not value.is_finite():
            problems.append(Problem(pointer, f"{what} is not a number"))
        elif _digits(value) > MAX_DIGITS:
            problems.append(
                Problem(
                    pointer,
                    f"{what} has more than {MAX_DIGITS} significant "
                    "digits, which a spreadsheet cannot hold",
                )
            )

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


def _currency_affixes(inv: Invoice) -> tuple[str, str]:
    """The currency symbol as prefix or suffix, the way the invoice's locale writes it (an
    unknown locale raises RenderError, as for the PDF)."""
    return _affixes(
        inv.currency,
        localize.currency_symbol(inv),
        localize.locale_of(inv).currency_formats["standard"].pattern,
    )


#: the figure in an amount as :func:`.localize.money` prints it: first digit to last
_FIGURE = re.compile(r"\d(?:.*\d)?", re.DOTALL)


def _around_figure(text: str) -> tuple[str, str] | None:
    """The text before and after the figure of a printed amount or rate, without bidi marks
    (None: no digit in it)."""
    text = text.translate(_BIDI_MARKS)
    figure = _FIGURE.search(text)
    return None if figure is None else (text[: figure.start()], text[figure.end() :])


def _section(body: str, prefix: str, suffix: str) -> str:
    """A number format's section: ``body`` between its literal prefix and suffix."""
    prefix, suffix = prefix.replace('"', ""), suffix.replace('"', "")
    return (f'"{prefix}"' if prefix else "") + body + (f'"{suffix}"' if suffix else "")


def _negative_affixes(inv: Invoice) -> tuple[str, str] | None:
    """The prefix and suffix of a negative amount where the locale does not print it as a
    minus before the positive amount (de-CH ``CHF-5.00``, nl ``€ -5,00``), as
    :func:`.localize.money` prints it; None where it does (a spreadsheet shows a negative
    number so from the positive section of its format)."""
    positive = localize.money(Decimal(1), inv).translate(_BIDI_MARKS)
    negative = localize.money(Decimal(-1), inv)
    if negative.translate(_BIDI_MARKS) == f"-{positive}":
        return None
    return _around_figure(negative)


@lru_cache(maxsize=256)
def _affixes(currency: str, symbol: str, pattern: str) -> tuple[str, str]:
    """The prefix or suffix of the money formats; a space between the sign and the digits
    where the pattern has one or CLDR's currency spacing asks for one
    (:func:`.localize.currency_spacing`: ``KWD 1,234.500``, but ``$1,234.50``)."""
    symbol = symbol.translate(_BIDI_MARKS).replace('"', "").strip() or currency
    pattern = pattern.split(";")[0].translate(_BIDI_MARKS)
    if pattern.startswith("¤"):
        sample = f"{symbol}1"
        spaced = (
            pattern[1:2] in (" ", "\xa0") or localize.currency_spacing(sample, symbol) != sample
        )
        return symbol + ("\xa0" if spaced else ""), ""
    spaced = pattern[-2:-1] in (" ", "\xa0") or not pattern.endswith("¤")
    return "", ("\xa0" if spaced else "") + symbol


#: LDML date fields (CLDR patterns) and their spreadsheet number-format codes
_DATE_FIELDS = {"d": "d", "dd": "dd", "M": "m", "MM": "mm", "y": "yyyy"}
_DATE_TOKEN = re.compile(r"'([^']*)'|(d+|M+|y+)|(.)", re.DOTALL)


@lru_cache(maxsize=64)
def excel_date_format(pattern: str) -> str:
    """A spreadsheet number format that shows a date as the CLDR ``pattern`` does (the
    numeric patterns of :func:`.localize.date_pattern`): ``dd.MM.y`` -> ``dd\\.mm\\.yyyy``.
    Every literal is escaped (a bare ``/`` would print the viewer's own date separator), bidi
    marks are dropped. A pattern with other fields (an era) gets ISO 8601."""
    out = []
    for quoted, field, literal in _DATE_TOKEN.findall(pattern.translate(_BIDI_MARKS)):
        if field:
            if field not in _DATE_FIELDS:  # an era (Latin's "d M y G"): ISO 8601 instead
                return "yyyy\\-mm\\-dd"
            out.append(_DATE_FIELDS[field])
        elif quoted or literal:
            text = quoted or literal
            out.append(f'"{text}"' if len(text) > 1 or not text.isascii() else f"\\{text}")
    return "".join(out)


@record
class _Grouping:
    """A CLDR pattern's digit grouping where a spreadsheet's ``#,##0`` cannot show it: the
    first group's size, the others' and the locale's group separator (en-IN ``#,##,##0.00``:
    3, 2, ``,`` for 12,34,567.89)."""

    primary: int
    secondary: int
    separator: str

    def start(self, separators: int) -> int:
        """The least whole number written with ``separators`` separators (a lakh, 1,00,000,
        has two)."""
        return int(10 ** (self.primary + (separators - 1) * self.secondary))

    def integer(self, separators: int) -> str:
        """The integer part of a format with that many separators, each a literal:
        ``##\\,##\\,##0``. A literal is shown whether digits stand left of it or not, so
        such a part is right only for the numbers written with exactly as many separators;
        :func:`_grouped` picks it by conditions."""
        sep = self.separator
        sep = f'"{sep}"' if len(sep) > 1 or not sep.isascii() else f"\\{sep}"
        first = "#" * (self.primary - 1) + "0"
        return sep.join(["#" * self.secondary] * separators + [first])


def _grouping(pattern: Any, locale: Any) -> _Grouping | None:
    """The grouping of a CLDR number pattern when it is not a spreadsheet's (groups of 3 with
    ``#,##0``): None for groups of 3 and for a pattern without grouping."""
    from babel.numbers import get_group_symbol

    primary, secondary = pattern.grouping
    if (primary, secondary) == (3, 3) or max(primary, secondary) >= 100:  # 1000: none
        return None
    return _Grouping(primary, secondary, get_group_symbol(locale))


def _band(figure: Decimal, grouping: _Grouping | None) -> int:
    """Which grouped format (:func:`_grouped`) shows ``figure``: the separators its integer
    part needs, at least 3 for a positive figure and 2 for a negative one, signed as the
    figure (0 where the spreadsheet's own grouping does, so those cells share one format)."""
    if grouping is None:
        return 0
    separators, whole = (2 if figure < 0 else 3), abs(int(figure))
    while whole >= grouping.start(separators + 1):
        separators += 1
    return -separators if figure < 0 else separators


def _grouped(body: str, grouping: _Grouping, band: int, prefix: str, suffix: str) -> str:
    """A format that groups the digits as CLDR's pattern does where ``#,##0`` cannot (en-IN:
    12,34,567.89), for a cell whose figure is in ``band`` (:func:`_band`).

    Its integer part needs one literal separator per group, and a literal shows whether
    digits stand left of it or not (``##\\,##0`` shows 5 as ``,5``), so one section is
    right for one count of separators, and a format has at most three sections, picked by
    two conditions. Every number a section does not fit (an edited input may change the
    figure) is shown by ``#,##0``: every digit and the sign, grouped by 3.

    Excel and LibreOffice show a negative number's minus sign alike in two places only: in
    the first section, where its condition is met by a positive number too (both put it),
    and in the second, where its condition only a negative number meets (neither puts it:
    the section writes it); LibreOffice puts none in the second and third sections, Excel
    one in the third. So a positive figure with ``n`` separators, or ``n - 1``, has its
    sections after ``#,##0`` for every number below the least of them, negative ones
    included; en-IN, below 100 crore:
    ``[<100000]#,##0.00;[>=10000000]##\\,##\\,##\\,##0.00;##\\,##\\,##0.00``. A
    negative figure has one section of its own, for its count of separators and the numbers
    beyond, after ``#,##0`` for every number above: ``[>-100000]#,##0.00;[<=-100000]
    -##\\,##\\,##0.00;#,##0.00`` (the third is for no number)."""
    top = abs(band)
    point = body.find(".")
    fraction = body[point:] if point >= 0 else ""
    plain = _section(body, prefix, suffix)
    upper = grouping.integer(top) + fraction
    if band < 0:
        least = grouping.start(top)
        negative = _section(upper, f"-{prefix}", suffix)
        return f"[>-{least}]{plain};[<=-{least}]{negative};{plain}"
    lower = _section(grouping.integer(top - 1) + fraction, prefix, suffix)
    upper = _section(upper, prefix, suffix)
    return f"[<{grouping.start(top - 1)}]{plain};[>={grouping.start(top)}]{upper};{lower}"


def _fixed(decimals: int, grouping: _Grouping | None = None, band: int = 0) -> str:
    """A number with ``decimals`` decimals, grouped as the locale's pattern has it."""
    body = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return body if grouping is None else _grouped(body, grouping, band, "", "")


def _money_format(
    digits: int,
    prefix: str,
    suffix: str,
    decimals: int = 0,
    negative: tuple[str, str] | None = None,
    grouping: _Grouping | None = None,
    band: int = 0,
) -> str:
    """A currency format with the currency's digits (or more, for unit prices); with a
    section for negative amounts when ``negative`` gives their prefix and suffix; grouped by
    ``grouping`` for a figure in ``band`` where the locale's grouping is not a spreadsheet's
    (:func:`_grouped`; no CLDR locale has both such a grouping and a negative pattern of its
    own, and a format could not have both)."""
    body = _fixed(max(digits, decimals))
    if grouping is not None:
        return _grouped(body, grouping, band, prefix, suffix)
    if negative is None:
        return _section(body, prefix, suffix)
    return f"{_section(body, prefix, suffix)};{_section(body, *negative)}"


def _percent_affixes(inv: Invoice) -> tuple[str, str]:
    """The text before and after a rate as :func:`.localize.percent` prints it (``19 %`` de,
    ``19%`` en, ``%19`` tr), without bidi marks."""
    affixes = _around_figure(localize.percent(Decimal(1), inv))
    return ("", "%") if affixes is None else affixes  # None: never (a rate has its digits)


def _percent_format(decimals: int, prefix: str = "", suffix: str = "%") -> str:
    return _section("0." + "0" * decimals if decimals else "0", prefix, suffix)


def _places(value: Decimal) -> int:
    """Decimals needed to show the value exactly."""
    exp = value.normalize().as_tuple().exponent
    return min(-exp, MAX_DIGITS) if isinstance(exp, int) and exp < 0 else 0


class _Styles(dict[Any, int]):
    """Cell style ids (the workbook's cellXfs) by name, each made on first use from its spec."""

    def __init__(self, ws: Any, specs: dict[str, tuple[Any, ...]]) -> None:
        super().__init__()
        self.ws = ws
        self.specs = specs

    def __missing__(self, key: str | tuple[Any, ...]) -> int:
        """``name``, or ``(name, decimals)`` for the formats that depend on the decimals, or
        ``(name, decimals, band)`` for a grouped one (:func:`_grouped`)."""
        name, *args = (key,) if isinstance(key, str) else key
        font, fill, fmt, align, border = self.specs[name]
        cell = Cell(self.ws, row=1, column=1)
        if font is not None:
            cell.font = font
        if fill is not None:
            cell.fill = fill
        if fmt is not None:
            cell.number_format = fmt(*args) if callable(fmt) else fmt
        if align is not None:
            cell.alignment = align
        if border is not None:
            cell.border = border
        style_id: int = self.ws.parent._cell_styles.add(cell._style)
        self[key] = style_id
        return style_id


# --------------------------------------------------------------------------- zip


#: the parts of a workbook that are XML
_XML_PART = (".xml", ".rels")
#: the part a workbook cannot do without
_CONTENT_TYPES = "[Content_Types].xml"


def check_part(name: str, part: bytes | str) -> None:
    """One XML part of a workbook: well-formed XML 1.0, else a RenderError naming it."""
    from xml.parsers import expat

    try:
        expat.ParserCreate().Parse(part, True)
    except expat.ExpatError as exc:
        raise RenderError(
            f"the workbook is not valid: its part {name} is not well-formed "
            f"XML ({expat.errors.messages.get(exc.code, 'error')} at line "
            f"{exc.lineno})"
        ) from None


def check_workbook(data: bytes) -> None:
    """The renderer's check of its own output: a zip whose every XML part is well-formed XML
    1.0. A workbook a spreadsheet would refuse (say, text with U+FFFF) is a RenderError, so
    the step fails and the invoice is ``failed``, never ``ready``. The renderer runs the same
    check on each part as it writes it (:class:`_FixedTimeZip`), before compressing it, so it
    does not read its own zip back; this function checks a finished file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if _CONTENT_TYPES not in names:
                raise RenderError("the workbook is incomplete: it has no [Content_Types].xml")
            for name in names:
                if name.endswith(_XML_PART):
                    check_part(name, archive.read(name))
    except zipfile.BadZipFile:
        raise RenderError("the workbook is not valid: it is not a zip archive") from None


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed timestamp (reproducible output), each XML part
    checked before it is written (:func:`check_part`)."""

    def __init__(self, file: io.BytesIO, when: date) -> None:
        super().__init__(file, "w", zipfile.ZIP_DEFLATED)
        year = min(max(when.year, 1980), 2107)
        self._date_time = (year, when.month, when.day, 0, 0, 0)

    def writestr(
        self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None, compresslevel: Any = None
    ) -> None:
        name = getattr(zinfo_or_arcname, "filename", zinfo_or_arcname)
        if str(name).endswith(_XML_PART):
            check_part(str(name), data)
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=self._date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(
        self,
        filename: Any,
        arcname: Any = None,
        compress_type: Any = None,
        compresslevel: Any = None,
    ) -> None:
        if isinstance(filename, io.BytesIO):  # a worksheet written by _SheetWriter
            self.writestr(arcname, filename.getvalue())
            return
        with open(filename, "rb") as fh:
            data = fh.read()
        self.writestr(arcname or filename, data)


#: stylesheets (``xl/styles.xml``) already written, by the workbook's style lists: the few
#: style sets invoices use (per currency digits, date pattern, accent colour...) recur, and
#: openpyxl's stylesheet serialiser costs a fifth of a short invoice's workbook
_STYLESHEETS: dict[tuple[Any, ...], bytes] = {}
#: at most this many kept (a process sees few locales and brandings; this bounds the rest)
_STYLESHEETS_MAX = 256


def _stylesheet_xml(wb: Any) -> bytes:
    """The workbook's ``xl/styles.xml``, as openpyxl writes it (``write_stylesheet``), made
    once per distinct set of styles. The key is everything the stylesheet is made of; a
    workbook with named styles, differential styles, custom colours or table styles of its own
    (the renderer makes none) is never cached."""
    if (
        wb._named_styles.names != ["Normal"]
        or wb._differential_styles.styles
        or wb._colors is not COLOR_INDEX
        or wb._table_styles != TableStyleList()
    ):
        return bytes(tostring(write_stylesheet(wb)))
    key = (
        tuple(wb._fonts),
        tuple(wb._fills),
        tuple(wb._borders),
        tuple(wb._number_formats),
        tuple(wb._alignments),
        tuple(wb._protections),
        tuple(tuple(style) for style in wb._cell_styles),
    )
    xml = _STYLESHEETS.get(key)
    if xml is None:
        xml = bytes(tostring(write_stylesheet(wb)))
        if len(_STYLESHEETS) >= _STYLESHEETS_MAX:
            _STYLESHEETS.clear()
        _STYLESHEETS[key] = xml
    return xml


@lru_cache(maxsize=1)
def _app_xml() -> bytes:
    """``docProps/app.xml``: the same for every workbook (openpyxl's extended properties)."""
    from openpyxl.packaging.extended import ExtendedProperties

    return bytes(tostring(ExtendedProperties().to_tree()))


class _Writer(ExcelWriter):
    """openpyxl's ``ExcelWriter.write_data`` (3.1) for the parts an invoice workbook has
    (properties, theme, worksheets, styles, workbook, relationships, manifest: no charts,
    images, comments, external links, custom properties or macros), with the stylesheet and
    ``app.xml`` made once (:func:`_stylesheet_xml`). Same parts, same order, same bytes as
    openpyxl's writer (tested against it)."""

    def write_data(self) -> None:
        archive, wb = self._archive, self.workbook
        archive.writestr(ARC_APP, _app_xml())
        archive.writestr(ARC_CORE, tostring(wb.properties.to_tree()))
        archive.writestr(ARC_THEME, wb.loaded_theme or theme_xml)
        self._write_worksheets()
        archive.writestr(ARC_STYLE, _stylesheet_xml(wb))
        writer = WorkbookWriter(wb)
        archive.writestr(ARC_ROOT_RELS, writer.write_root_rels())
        archive.writestr(ARC_WORKBOOK, writer.write())
        archive.writestr(ARC_WORKBOOK_RELS, writer.write_rels())
        self.manifest._write(archive, wb)


#: the writer of :meth:`_Renderer.render` (a test swaps in openpyxl's own to compare bytes)
_WRITER: type[ExcelWriter] = _Writer


class _F:
    """A formula (without the leading ``=``) and the figure it computes, which is written as
    the cell's cached value (any ``str`` that is not in an ``_F`` is written as text)."""

    __slots__ = ("formula", "value")

    def __init__(self, formula: str, value: Decimal) -> None:
        self.formula = formula
        self.value = value


def _cached(value: Decimal) -> str:
    """A formula's figure as its cached value: plain digits, and no negative zero (what a
    spreadsheet's ROUND gives for -0.004)."""
    text = format(value, "f")
    return "0" if text[0] == "-" and not value else text


#: a cell: None (empty), a value (unstyled) or (value, style id)
_CellSpec = Any

_LETTERS = [get_column_letter(i) for i in range(1, 27)]
_EMPTY_SHEET_DATA = re.compile(rb"<sheetData\s*/>|<sheetData>\s*</sheetData>")


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Rows:
    """The rows of one worksheet, serialised as they are added.

    openpyxl writes each cell through its generic element writer, which costs more than the
    rest of the rendering together; these cells are few kinds (text, number, date, formula),
    so they are written here directly. Text is always an inline string (never a formula or an
    error code), formulas are :class:`_F`, numbers keep their exact decimal digits.

    A formula cell carries its figure as the cached value (``<f>`` then ``<v>``, a number), so
    viewers that do not calculate (previews, ``data_only`` readers, pandas) show the amounts;
    the workbook still asks spreadsheets to recalculate everything on load (``calcPr
    fullCalcOnLoad``, as openpyxl writes it).
    """

    def __init__(self, epoch: Any) -> None:
        self.xml: list[str] = []
        self.row = 0
        self._epoch = epoch

    def append(self, cells: Iterable[_CellSpec], height: float | None = None) -> None:
        self.row = r = self.row + 1
        out = []
        for col, cell in enumerate(cells):
            if cell is None:
                continue
            value, sid = cell if type(cell) is tuple else (cell, 0)
            if value is None:
                continue
            ref = f"{_LETTERS[col]}{r}"
            style = f' s="{sid}"' if sid else ""
            kind = type(value)
            if kind is _F:
                out.append(
                    f'<c r="{ref}"{style}><f>{_xml_text(value.formula)}</f>'
                    f"<v>{_cached(value.value)}</v></c>"
                )
            elif kind is str:
                space = ' xml:space="preserve"' if value != value.strip() else ""
                out.append(
                    f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>'
                    f"{_xml_text(value)}</t></is></c>"
                )
            else:
                if kind is Decimal:
                    number = format(value, "f")
                elif kind is int:
                    number = str(value)
                elif kind is date or kind is datetime:
                    number = repr(to_excel(value, self._epoch))
                else:
                    raise TypeError(f"cannot write {kind.__name__} to a cell")
                out.append(f'<c r="{ref}"{style} t="n"><v>{number}</v></c>')
        if out:  # an empty row needs no XML
            attrs = f' ht="{height:g}" customHeight="1"' if height else ""
            self.xml.append(f'<row r="{r}"{attrs}>{"".join(out)}</row>')


class _SheetWriter(WorksheetWriter):
    """openpyxl's worksheet writer, in memory, for everything but the rows: it writes the
    sheet's properties, views, columns, filter, print setup... around an empty sheetData,
    and the rows of :class:`_Rows` are put into that."""

    def __init__(self, ws: Any, rows: _Rows) -> None:
        self.out: io.BytesIO = io.BytesIO()
        super().__init__(ws, out=self.out)
        self._rows_xml = "".join(rows.xml).encode("utf-8")
        self._closed = False

    def write_rows(self) -> None:
        xf = self.xf.send(True)
        with xf.element("sheetData"):
            pass
        self.xf.send(None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        super().close()
        xml = self.out.getvalue()
        match = _EMPTY_SHEET_DATA.search(xml)
        if match is None:  # pragma: no cover - openpyxl always writes sheetData
            raise RuntimeError("openpyxl wrote a worksheet without sheetData")
        self.out = io.BytesIO(
            b"".join(
                (
                    xml[: match.start()],
                    b"<sheetData>",
                    self._rows_xml,
                    b"</sheetData>",
                    xml[match.end() :],
                )
            )
        )

    def cleanup(self) -> None:
        pass


def _finish_sheet(ws: Any, rows: _Rows) -> None:
    """Write a write-only sheet whose settings are all made: openpyxl closes it with our
    writer (and the workbook's save then finds it closed)."""
    writer = _SheetWriter(ws, rows)
    ws._writer = writer
    writer.write_top()
    ws.close()


# --------------------------------------------------------------------------- layout


@record
class _Column:
    key: str
    title: str
    width: float


class _Renderer:
    def __init__(self, view: DocumentView) -> None:
        self.view = view
        self.inv = inv = view.invoice
        self.totals = view.totals
        self.d = minor_digits(inv.currency)
        self.wb = Workbook(write_only=True)
        self.ws = self.wb.create_sheet(INVOICE_SHEET)
        self.tax_ws = self.wb.create_sheet(TAX_SHEET)
        self.out = _Rows(self.wb.epoch)  # the Invoice sheet's rows
        self._columns()
        self._styles()
        self._plan()

    # ----------------------------------------------------------------- columns & styles

    def _columns(self) -> None:
        items = self.inv.items
        has = {
            "sku": any(it.sku for it in items),
            "unit": any(unit_label(it) for it in items),
            "dpct": any(it.discount and it.discount.kind == "percent" for it in items),
            "damt": any(it.discount and it.discount.kind == "amount" for it in items),
            # VAT categories given anywhere: the tax groups are (category, rate), so the items
            # show each line's category and the Tax sheet sums by both
            "cat": any(it.tax_category for it in items)
            or self.inv.shipping_tax_category is not None,
        }
        has["ldisc"] = has["dpct"] or has["damt"]
        longest = max((len(it.description) for it in items), default=0)
        money_w = self._money_width()
        spec = [
            ("desc", "desc", float(min(max(longest + 2, 28), 60)), True),
            ("sku", "sku", 14.0, has["sku"]),
            ("qty", "quantity", 11.0, True),
            ("unit", "unit", 9.0, has["unit"]),
            ("price", "price", money_w, True),
            ("rate", "rate", 10.0, True),
            ("cat", "cat", 9.0, has["cat"]),
            ("dpct", "dpct", 11.0, has["dpct"]),
            ("damt", "damt", money_w, has["damt"]),
            ("gross", "gross", money_w, has["ldisc"]),
            ("ldisc", "ldisc", money_w, has["ldisc"]),
            ("amount", "amount", money_w, True),
        ]
        head = self.view.headings
        # wide enough for the header's title too
        self.cols = [_Column(k, head[h], max(w, len(head[h]) + 3.0)) for k, h, w, on in spec if on]
        self.ncols = len(self.cols)
        self.col = {c.key: i + 1 for i, c in enumerate(self.cols)}
        self.L = {k: get_column_letter(i) for k, i in self.col.items()}
        # the header's invoice data and the totals block: labels | values, in the last columns
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
        """The cell styles: each built once, on first use, as a style array that every cell
        of that kind shares (no per-cell style objects, and no unused styles in the file)."""
        inv = self.inv
        prefix, suffix = _currency_affixes(inv)
        negative = _negative_affixes(inv)
        percent_affixes = _percent_affixes(inv)

        def rate(decimals: int) -> str:
            return _percent_format(decimals, *percent_affixes)

        d = self.d
        # a locale whose groups are not all of 3 (en-IN 12,34,567.89): formats by the figure
        locale = localize.locale_of(inv)
        grouping = None
        if negative is None:  # no CLDR locale with such a grouping has a negative pattern
            grouping = _grouping(locale.currency_formats["standard"], locale)
        quantities = _grouping(locale.decimal_formats[None], locale)
        #: the grouping of each style whose format depends on the figure's band (None: not)
        self.groupings: dict[str, _Grouping | None] = dict.fromkeys(
            ("money", "money_total", "price", "damt"), grouping
        )
        self.groupings["qty"] = quantities

        def money(n: int = 0, band: int = 0) -> str:
            return _money_format(d, prefix, suffix, n, negative, grouping, band)

        def qty(n: int, band: int = 0) -> str:
            return _fixed(n, quantities, band)

        # the accent colour of the document's branding (header row, title), else navy
        accent = NAVY
        if inv.branding is not None and inv.branding.accent_color:
            accent = "FF" + inv.branding.accent_color.lstrip("#").upper()
        # white or ink on the accent, as the PDF's accent bars pick it (a light accent: ink)
        on_accent = WHITE if white_reads_better(*rgb_of(accent[2:])) else "FF" + INK_RGB
        header_font = Font(name="Calibri", size=11, bold=True, color=on_accent)
        header_fill = PatternFill(fill_type="solid", start_color=accent, end_color=accent)
        title_font = Font(name="Calibri", size=18, bold=True, color=accent)
        date_format = excel_date_format(self.view.date_pattern)
        specs: dict[str, tuple[Any, ...]] = {
            # name: (font, fill, number format or a function making it, alignment, border)
            "header": (header_font, header_fill, None, _HEADER_ALIGN, None),
            "title": (title_font, None, None, None, None),
            "bold": (_BOLD, None, None, None, None),
            "section": (_SECTION_FONT, None, None, None, None),
            "muted": (_MUTED, None, None, None, None),
            "label": (_BOLD, None, None, _RIGHT, None),
            "date": (None, None, date_format, _RIGHT, None),
            "text_right": (None, None, None, _RIGHT_WRAP, None),
            "wrap": (None, None, None, _WRAP, None),
            "money": (None, None, money, None, None),
            "money_total": (_TOTAL_FONT, None, money, None, _TOP_LINE),
            "label_total": (_TOTAL_FONT, None, None, _RIGHT, _TOP_LINE),
            # by decimals shown: looked up as (name, decimals) with the value's own decimals
            "price": (None, None, money, None, None),
            "qty": (None, None, qty, None, None),
            "rate": (None, None, rate, None, None),
            "rate_bold": (_BOLD, None, rate, None, None),
            "damt": (None, None, money, None, None),
        }
        self.s = _Styles(self.ws, specs)

    def _num(self, value: Decimal, kind: str) -> tuple[Decimal, int]:
        """A number in the ``kind`` format, with exactly the decimals ``value`` has."""
        return self._cell(value, (kind, _places(value)))

    def _cell(self, value: Any, style: str | tuple[str, int]) -> tuple[Any, int]:
        return value, self._style(style, value)

    def _money(self, value: _F) -> tuple[_F, int]:
        return self._cell(value, "money")

    def _style(self, style: str | tuple[str, int], value: Any) -> int:
        """The style id of a cell holding ``value`` (a number, or a formula with its figure):
        ``style``'s, by the figure's band where the locale groups otherwise than by 3s."""
        name, places = (style, 0) if isinstance(style, str) else style
        grouping = self.groupings.get(name)
        if grouping is None:
            return self.s[style]
        figure = value.value if isinstance(value, _F) else Decimal(value)
        return self.s[name, places, _band(figure, grouping)]

    def _text(self, value: str | None, style: str | None = None) -> _CellSpec:
        """User text, always written as text; without the control characters a workbook
        cannot hold (they are invisible anyway)."""
        if not value:
            return None
        if len(value) > MAX_TEXT:
            raise RenderError(f"a text of {len(value)} characters is longer than a cell holds")
        if ILLEGAL_CHARACTERS_RE.search(value):
            value = _clean(value)
            if not value:
                return None
        return value if style is None else (value, self.s[style])

    # ----------------------------------------------------------------- the plan (row numbers)

    def _plan(self) -> None:
        """Decide every row of both sheets before anything is written."""
        inv, t, view = self.inv, self.totals, self.view
        self.seller_lines = _party_lines(view.seller)
        # the view's fields; the issue and due dates as date cells (view.meta's 2nd and 3rd)
        dates: list[Any] = [inv.issue_date] + ([inv.due_date] if inv.due_date else [])
        self.meta: list[tuple[str, Any, str]] = [
            (label, dates[i - 1], "date") if 0 < i <= len(dates) else (label, text, "text_right")
            for i, (label, text) in enumerate(view.meta)
        ]
        head = max(len(self.seller_lines), len(self.meta))
        self.r_seller = 3
        bill = _party_lines(view.bill_to)
        ship = _party_lines(view.ship_to)
        self.r_parties = self.r_seller + head + 1
        self.party_rows = max(len(bill), len(ship)) + 1
        self.bill, self.ship = bill, ship
        self.r_head = self.r_parties + self.party_rows + 1
        self.r_first = self.r_head + 1
        self.r_last = self.r_head + len(inv.items)
        # the totals block: the rows of the view's totals (as the PDF prints them: a figure
        # that rounds to nothing, a 0 % discount, has no row)
        shown = {row.key for row in view.totals_rows}
        r = self.r_last + 2
        self.r_sub = r
        r += 1
        self.r_ldisc = 0
        if "line_discounts" in shown:
            self.r_ldisc, r = r, r + 1
        self.r_disc = 0
        if "discount" in shown:
            self.r_disc, r = r, r + 1
        self.r_ship = 0
        if "shipping" in shown:
            self.r_ship, r = r, r + 1
        self.tax_labels = {
            id(row.group): row.label for row in view.totals_rows if row.group is not None
        }
        self.taxed = [(i, g) for i, g in enumerate(t.groups) if id(g) in self.tax_labels]
        self.r_taxes = list(range(r, r + len(self.taxed)))
        r += len(self.taxed)
        self.r_total, r = r, r + 1
        self.r_paid = 0
        if "paid" in shown:
            self.r_paid, r = r, r + 1
        self.r_balance = r
        # the Tax sheet: title, header, one row per group, total, then the discount input
        self.t_head = 3
        self.t_first = self.t_head + 1
        self.t_last = self.t_head + len(t.groups)
        self.t_total = self.t_last + 1
        self.t_param = self.t_total + 2 if inv.discount is not None else 0

    # ----------------------------------------------------------------- rendering

    def render(self) -> bytes:
        self._properties()
        self._invoice_sheet()
        self._tax_sheet()
        out = io.BytesIO()
        archive = _FixedTimeZip(out, self.inv.issue_date)
        _WRITER(self.wb, archive).save()  # each XML part checked as it was written
        if _CONTENT_TYPES not in archive.namelist():  # pragma: no cover - openpyxl writes it
            raise RenderError("the workbook is incomplete: it has no [Content_Types].xml")
        return out.getvalue()

    def _properties(self) -> None:
        """The document properties, in the document's language: the PDF's title and subject,
        and a description with the total and the last figure as the totals block labels
        them (a credit note's is to be refunded: :attr:`.DocumentView.balance`)."""
        inv, view = self.inv, self.view
        name = view.name
        when = datetime(inv.issue_date.year, inv.issue_date.month, inv.issue_date.day)
        total = view.total_row("total")
        assert total is not None  # every totals block has its total
        last = view.balance
        self.wb.properties = DocumentProperties(
            title=_clean(f"{name} {inv.number}"),
            subject=_clean(view.subject),
            creator=_clean(inv.seller.name),
            lastModifiedBy=_clean(inv.seller.name),
            keywords=_clean(f"{name.lower()}, {inv.number}"),
            category=_clean(name),
            description=_clean(f"{total.label} {total.text}, {last.label} {last.text}"),
            language=inv.locale,
            created=when,
            modified=when,
        )

    def _invoice_sheet(self) -> None:
        ws, inv = self.ws, self.inv
        rows = self.out
        text, cell = self._text, self._cell
        n = self.ncols
        rows.append([cell(_clean(f"{self.view.name} {inv.number}"), "title")])
        rows.append([])
        for i in range(max(len(self.seller_lines), len(self.meta))):
            row: list[_CellSpec] = [None] * n
            height = None
            if i < len(self.seller_lines):
                row[0] = text(*self.seller_lines[i])
            if i < len(self.meta):
                label, value, style = self.meta[i]
                row[self.c_label - 1] = cell(label, "label")
                if isinstance(value, str):
                    width = self.widths[self.c_val - 1]
                    if not _fits(value, width):  # long payment terms wrap in their cell
                        height = _row_height(value, width)
                    row[self.c_val - 1] = text(value, style)
                else:
                    row[self.c_val - 1] = cell(value, style)
            rows.append(row, height)
        rows.append([])
        ship_col = min(3, n - 1)
        heads: list[_CellSpec] = [None] * n
        heads[0] = cell(self.view.bill_to.heading, "section")
        if self.view.ship_to is not None:
            heads[ship_col - 1] = cell(self.view.ship_to.heading, "section")
        rows.append(heads)
        for i in range(self.party_rows - 1):
            row = [None] * n
            if i < len(self.bill):
                row[0] = text(*self.bill[i])
            if i < len(self.ship):
                row[ship_col - 1] = text(*self.ship[i])
            rows.append(row)
        rows.append([])
        rows.append([cell(c.title, "header") for c in self.cols])
        self._item_rows()
        rows.append([])
        self._totals_rows()
        exemptions = self.view.exemption_lines
        if exemptions:
            rows.append([])
        for line in exemptions:
            rows.append([self._text(line)])
        self._footer_rows()

        for i, width in enumerate(self.widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = f"A{self.r_first}"
        ws.sheet_view.showGridLines = False
        # a right-to-left language (Arabic, Hebrew): the sheet runs right to left
        ws.sheet_view.rightToLeft = self.view.direction == "rtl"
        last_letter = get_column_letter(n)
        ws.auto_filter.ref = f"A{self.r_head}:{last_letter}{self.r_last}"
        ws.print_title_rows = f"{self.r_head}:{self.r_head}"
        ws.print_area = f"A1:{last_letter}{rows.row}"
        self._page_setup(ws)
        ws.print_options.horizontalCentered = True
        _finish_sheet(ws, rows)

    def _page_setup(self, ws: Any) -> None:
        """A portrait page of the locale's paper, as wide as the sheet (as many pages tall as
        it takes), with the PDF's footer: the document, ``Page N of M`` and the branding's
        footer text."""
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        setup = ws.page_setup
        setup.orientation = "portrait"
        setup.paperSize = _PAPER_CODES[self.view.paper]
        setup.fitToWidth = 1
        setup.fitToHeight = 0
        pattern = _clean(self.view.labels.gettext("Page %(page)s of %(pages)s"))
        ws.oddFooter.center.text = pattern.replace("&", "&&") % {"page": "&P", "pages": "&N"}
        ws.oddFooter.left.text = _header_footer(f"{self.view.name} {self.inv.number}")
        branding = self.inv.branding
        if branding is not None and branding.footer:
            ws.oddFooter.right.text = _header_footer(branding.footer)

    def _item_rows(self) -> None:
        """One row per item: its inputs, then gross, line discount and amount as formulas
        (with the figures of compute_totals() as their cached values)."""
        L, d, col, rows = self.L, self.d, self.col, self.out
        money = self._money
        num, text = self._num, self._text
        q, p = L["qty"], L["price"]
        i_desc, i_qty, i_price = col["desc"] - 1, col["qty"] - 1, col["price"] - 1
        i_rate, i_amount = col["rate"] - 1, col["amount"] - 1
        i_sku, i_unit = col.get("sku", 0) - 1, col.get("unit", 0) - 1
        i_cat = col.get("cat", 0) - 1
        dp, da = L.get("dpct"), L.get("damt")
        with_discounts = self.has["ldisc"]
        if with_discounts:
            i_gross, i_ldisc = col["gross"] - 1, col["ldisc"] - 1
            i_dpct, i_damt = col.get("dpct", 0) - 1, col.get("damt", 0) - 1
        desc_width = self.cols[i_desc].width
        n = self.ncols
        r = self.r_first
        assert rows.row + 1 == r, (rows.row, r)
        for it, lt in zip(self.inv.items, self.totals.lines, strict=True):
            row: list[_CellSpec] = [None] * n
            height = None
            if not _fits(it.description, desc_width):
                # long or multi-line: wrapped in its cell, on a row tall enough for it
                row[i_desc] = text(it.description, "wrap")
                height = _row_height(it.description, desc_width)
            else:
                row[i_desc] = text(it.description)
            if i_sku >= 0:
                row[i_sku] = text(it.sku)
            if i_unit >= 0:
                row[i_unit] = text(unit_label(it))
            row[i_qty] = num(it.quantity, "qty")
            row[i_price] = num(it.unit_price, "price")
            # the rate the line is taxed at (its tax group's: an exempt line given no rate
            # is at 0 %, as the PDF prints it), so the Tax sheet finds it by that rate
            rate = group_rate(it.vat_category, it.tax_rate)
            if rate is not None:
                row[i_rate] = num(rate, "rate")
            if i_cat >= 0 and it.vat_category is not None:
                row[i_cat] = text(it.vat_category)
            raw = f"{q}{r}*{p}{r}"
            if with_discounts:
                parts = []
                if dp:
                    parts.append(f"{raw}*{dp}{r}/100")
                if da:
                    # an amount takes the line's sign, as in compute_totals: it brings a
                    # credit line towards zero
                    parts.append(f"SIGN({raw})*{da}{r}")
                disc = "+".join(parts)
                dsc = it.discount
                if dsc is not None:
                    if dsc.kind == "percent":
                        row[i_dpct] = num(dsc.value, "rate")
                    else:
                        row[i_damt] = num(dsc.value, "damt")
                exact = _places(it.quantity) + _places(it.unit_price)
                places = exact
                if dsc is not None:
                    places = (
                        exact + _places(dsc.value) + 2
                        if dsc.kind == "percent"
                        else max(exact, _places(dsc.value))
                    )
                row[i_gross] = money(_F(_round(raw, exact, d), lt.gross))
                # gross - amount, as compute_totals (and EN 16931's BT-136) has it
                row[i_ldisc] = money(
                    _F(f"ROUND({L['gross']}{r}-{L['amount']}{r},{d})", lt.discount)
                )
                row[i_amount] = money(_F(_round(f"{raw}-({disc})", places, d), lt.amount))
            else:
                exact = _places(it.quantity) + _places(it.unit_price)
                row[i_amount] = money(_F(_round(raw, exact, d), lt.amount))
            rows.append(row, height)
            r += 1

    def _item_range(self, key: str) -> str:
        col = self.L[key]
        return f"{INVOICE_SHEET}!${col}${self.r_first}:${col}${self.r_last}"

    def _totals_rows(self) -> None:
        d, V = self.d, get_column_letter(self.c_val)
        inv, t = self.inv, self.totals
        amt = self.L["amount"]
        rows = self.out

        def line(
            label: str,
            formula: str,
            value: Decimal,
            value_style: str = "money",
            label_style: str = "label",
        ) -> None:
            row: list[_CellSpec] = [None] * self.ncols
            row[self.c_label - 1] = self._cell(label, label_style)
            row[self.c_val - 1] = self._cell(_F(formula, value), value_style)
            rows.append(row)

        view = self.view

        def label(key: TotalKey, default: str) -> str:
            row = view.total_row(key)
            return _clean(row.label if row is not None else view.gettext(default))

        # the view's sign convention: deductions are negative figures and the block adds up
        assert rows.row + 1 == self.r_sub
        if self.inv.items:
            sub = f"ROUND(SUM({amt}{self.r_first}:{amt}{self.r_last}),{d})"
        else:
            sub = "0"
        line(label("subtotal", "Subtotal"), sub, t.subtotal)
        if self.r_ldisc:
            ld = self.L["ldisc"]
            line(
                label("line_discounts", "incl. line discounts"),
                f"ROUND(-SUM({ld}{self.r_first}:{ld}{self.r_last}),{d})",
                -t.line_discounts,
            )
        if self.r_disc:
            line(label("discount", "Discount"), f"-{TAX_SHEET}!$C${self.t_total}", -t.discount)
        if self.r_ship:
            line(label("shipping", "Shipping"), f"ROUND({_literal(inv.shipping)},{d})", t.shipping)
        for idx, g in self.taxed:
            line(
                _clean(self.tax_labels[id(g)]),
                f"{TAX_SHEET}!$F${self.t_first + idx}",
                g.tax,
            )
        total = f"{V}{self.r_sub}"
        if self.r_disc:
            total += f"+{V}{self.r_disc}"
        if self.r_ship:
            total += f"+{V}{self.r_ship}"
        total += f"+{TAX_SHEET}!$F${self.t_total}"
        line(view.gettext("Total"), f"ROUND({total},{d})", t.total, "money_total", "label_total")
        balance = f"{V}{self.r_total}"
        if self.r_paid:
            line(
                label("paid", "Amount paid"),
                f"ROUND({_literal(Decimal(0) - inv.amount_paid)},{d})",  # no "-0"
                -t.amount_paid,
            )
            balance += f"+{V}{self.r_paid}"
        line(
            _clean(view.balance.label),
            f"ROUND({balance},{d})",
            t.balance_due,
            "money_total",
            "label_total",
        )

    def _footer_rows(self) -> None:
        """Notes and terms (each paragraph wrapped across the table's width), then the
        payment details."""
        inv, ws, rows = self.inv, self.ws, self.out
        last = get_column_letter(self.ncols)
        width = sum(self.widths)
        view = self.view
        for title, body in ((view.notes_heading, inv.notes), (view.terms_heading, inv.terms)):
            if not body:
                continue
            rows.append([])
            rows.append([self._cell(title, "section")])
            for paragraph in body.splitlines():
                if not _fits(paragraph, self.widths[0]):
                    r = rows.row + 1
                    ws.merged_cells.add(f"A{r}:{last}{r}")
                    rows.append([self._text(paragraph, "wrap")], _row_height(paragraph, width))
                else:
                    rows.append([self._text(paragraph)])
        fields = view.payment_fields
        if fields:
            rows.append([])
            rows.append([self._cell(view.payment_heading, "section")])
            for label, value in fields:
                rows.append([self._text(f"{label}: {value}")])

    def _tax_sheet(self) -> None:
        ws, t, d = self.tax_ws, self.totals, self.d
        inv, cell, view = self.inv, self._cell, self.view
        gettext = view.gettext
        out = _Rows(self.wb.epoch)
        breakdown = gettext("Tax breakdown")
        title = f"{breakdown} \u00b7 {view.name} {inv.number}"
        out.append([cell(_clean(title), "title")])
        out.append([])
        assert out.row + 1 == self.t_head
        heads = [gettext("Rate"), gettext("Lines"), gettext("Discount share"), gettext("Shipping")]
        heads += [gettext("Base"), gettext("Tax"), ""]
        out.append([cell(h, "header") for h in heads])
        rates = self._item_range("rate")
        amounts = self._item_range("amount")
        sub = f"{INVOICE_SHEET}!${get_column_letter(self.c_val)}${self.r_sub}"
        first, last, tot = self.t_first, self.t_last, self.t_total
        disc = inv.discount
        for i, g in enumerate(t.groups):
            r = first + i
            if not inv.items:
                lines = "0"
            elif self.has["cat"]:
                rate = '""' if g.rate is None else f"A{r}"
                cats = self._item_range("cat")
                lines = f'ROUND(SUMIFS({amounts},{rates},{rate},{cats},"{g.category or ""}"),{d})'
            elif g.rate is None:
                lines = f'ROUND(SUMIF({rates},"",{amounts}),{d})'
            else:
                lines = f"ROUND(SUMIF({rates},A{r},{amounts}),{d})"
            share: Any
            if disc is None:
                share = 0
            elif disc.kind == "percent":
                share = _F(
                    _round(f"B{r}*$B${self.t_param}/100", d + _places(disc.value) + 2, d),
                    g.discount,
                )
            elif r < last:
                share = _F(f"IF({sub}=0,0,ROUND($C${tot}*B{r}/{sub},{d}))", g.discount)
            elif first == last:
                share = _F(f"$C${tot}", g.discount)
            else:
                share = _F(f"ROUND($C${tot}-SUM(C{first}:C{last - 1}),{d})", g.discount)
            ship: Any = 0
            ship_category = inv.shipping_vat_category
            if self.r_ship and (g.category, g.rate) == (
                ship_category,
                group_rate(ship_category, inv.shipping_tax_rate),
            ):
                ship = _F(
                    f"{INVOICE_SHEET}!${get_column_letter(self.c_val)}${self.r_ship}", g.shipping
                )
            tax: Any = (
                0
                if g.rate is None
                else _F(_round(f"E{r}*A{r}/100", d + _places(g.rate) + 2, d), g.tax)
            )
            out.append(
                [
                    None if g.rate is None else cell(g.rate, ("rate_bold", _places(g.rate))),
                    cell(_F(lines, g.lines), "money"),
                    cell(share, "money"),
                    cell(ship, "money"),
                    cell(_F(f"ROUND(B{r}-C{r}+D{r},{d})", g.base), "money"),
                    cell(tax, "money"),
                    cell(_group_note(g, self.has["cat"], view), "muted"),
                ]
            )
        if disc is not None and disc.kind == "amount":
            share_total = f"IF({sub}=0,0,ROUND($B${self.t_param},{d}))"
        else:
            share_total = f"ROUND(SUM(C{first}:C{last}),{d})" if t.groups else "0"

        def total(col: str, value: Decimal) -> _F:
            return _F(f"ROUND(SUM({col}{first}:{col}{last}),{d})" if t.groups else "0", value)

        zero = Decimal(0)
        out.append(
            [
                cell(gettext("Total"), "label_total"),
                cell(total("B", sum((g.lines for g in t.groups), zero)), "money_total"),
                cell(_F(share_total, t.discount), "money_total"),
                cell(total("D", sum((g.shipping for g in t.groups), zero)), "money_total"),
                cell(total("E", sum((g.base for g in t.groups), zero)), "money_total"),
                cell(total("F", t.tax), "money_total"),
            ]
        )
        if disc is not None:
            out.append([])
            style = ("rate" if disc.kind == "percent" else "damt", _places(disc.value))
            label = (
                gettext("Invoice discount (percent)")
                if disc.kind == "percent"
                else gettext("Invoice discount (amount)")
            )
            out.append([cell(label, "bold"), cell(disc.value, style)])

        for i, w in enumerate([26, 16, 16, 16, 16, 16, 12], 1):
            ws.column_dimensions[get_column_letter(i)].width = w
        ws.freeze_panes = f"A{self.t_first}"
        ws.sheet_view.rightToLeft = self.view.direction == "rtl"
        self._page_setup(ws)
        ws.print_title_rows = f"{self.t_head}:{self.t_head}"
        _finish_sheet(ws, out)


def _round(expr: str, exact: int, digits: int) -> str:
    """``ROUND(expr, digits)`` of a product whose exact value has ``exact`` decimals: first
    rounded to those (which drops only the binary floating-point noise: LibreOffice rounds
    ``6320273454.789*50/100``, 3160136727.3944998 in binary, to 3160136727.394, where the
    exact figure is the tie 3160136727.3945), so the spreadsheet rounds the exact value as
    :func:`~invoiceflow.domain.money.round_money` does."""
    if exact <= digits:
        return f"ROUND({expr},{digits})"
    return f"ROUND(ROUND({expr},{exact}),{digits})"


def _literal(value: Decimal) -> str:
    """A number as a formula literal."""
    text = format(value, "f")
    return f"({text})" if text.startswith("-") else text


def _clean(text: str) -> str:
    """Without the control characters a workbook cannot hold (they are invisible anyway)."""
    return str(ILLEGAL_CHARACTERS_RE.sub("", text))


def _group_note(group: TaxGroup, with_categories: bool, view: DocumentView) -> str | None:
    """The Tax sheet's last column: the group's VAT category (when the document gives
    categories), or that it is not taxed."""
    if with_categories and group.category is not None:
        return view.gettext("VAT category %(code)s") % {"code": group.category}
    return view.gettext("not taxed") if group.rate is None else None


def _fits(text: str, width: float) -> bool:
    """Whether ``text`` fits on one line of a column ``width`` characters wide."""
    return len(text) <= _per_line(width) and "\n" not in text


def _per_line(width: float) -> int:
    # a column's width counts digits; text in Calibri averages about 0.9 of a digit
    return max(int(width * 1.1) - 1, 1)


def _row_height(text: str, width: float) -> float:
    """Points for a row showing ``text`` wrapped in ``width`` character widths (Calibri 11:
    15 points a line). Spreadsheets do not size such rows when they open a file."""
    per_line = _per_line(width)
    lines = sum(max(1, -(-len(part) // per_line)) for part in text.split("\n"))
    return min(15.0 * lines, 409.0)


def _party_lines(p: PartyBlock | None) -> list[tuple[str, str | None]]:
    """A party's lines as the PDF prints them (the view's), each with its style: the title
    bold."""
    if p is None:
        return []
    return [(p.title, "bold"), *((line, None) for line in p.lines)]


def _header_footer(text: str) -> str:
    """Text for a part of the print header or footer: one line, at most 100 characters,
    ``&`` (which starts a code there) doubled."""
    return _clean(text).replace("\n", " ")[:100].replace("&", "&&")
