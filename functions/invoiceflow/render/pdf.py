"""The invoice as a PDF: :func:`render_pdf` (ReportLab platypus). The only module importing
ReportLab, with :mod:`.payqr` (the payment QR codes it draws) and :mod:`.scripts` (fonts,
shaping; lazily).

Layout: a company header (optional logo, seller name and details) beside the title and the
invoice meta block (number, dates, payment terms, currency); Bill To and Ship To in boxed panels
side by side; the items table (navy header row in white bold, alternating row colours,
right-aligned numbers, long descriptions wrapped, the header row repeated on every page); the
totals exactly as :func:`invoiceflow.domain.totals.compute_totals` computed them (this module
never adds up money); payment details, notes and terms; a running header on later pages and
"Page N of M" in the footer of every page (a numbering canvas: one layout pass).

Branding (``invoice.branding``): the layout (:data:`_LAYOUTS`: classic, the look above;
modern, light with a large balance due; compact, dense) is a set of style parameters
(:class:`_Layout`) that the styles and the table-style commands read; the accent colour takes
navy's place (header row, titles, panel heads, mixed into their tints); the font family is one
of :mod:`.families` (DejaVu Sans unless the document's text needs a character the family
lacks); the footer line is drawn below "Page N of M" on every page. Styles are built once per
(layout, accent, font).

Payment QR codes (:mod:`.payqr`), only for a credit transfer: an EPC069-12 "GiroCode" beside
the payment details (EUR with an IBAN and a balance due), or a Swiss QR-bill (payment part
with receipt, 210 x 105 mm) at the bottom of the last page, or of a page of its own when the
last one is too full; the footer of that page stands above the bill. A direct debit (payment
means 49/59) gets no QR code: its IBAN is printed as the debited account, with a line saying
the amount will be collected.

Text and scripts
    Every font in the PDF is embedded (a TrueType subset from ``render/fonts/``, each with its
    licence there), so nothing is needed from the OS or the viewer and the PDF can be made a
    PDF/A (:mod:`invoiceflow.render.facturx`); table cells without a font of their own default
    to DejaVu Sans (never to ReportLab's non-embedded Helvetica). Which font sets which run,
    the bidirectional algorithm and HarfBuzz shaping are :mod:`invoiceflow.render.scripts`
    (docs/fonts.md): Latin, Greek and Cyrillic in the base family (DejaVu Sans), Arabic, Hebrew,
    Thai and Devanagari in it or in Noto Sans, Japanese in IPAex Gothic, Chinese and Korean in
    Droid Sans Fallback, each loaded by the first text that needs it. Text needing another font,
    bidi or shaping becomes Paragraph markup of glyph runs in visual order (:func:`_markup`);
    right-to-left paragraphs are broken into lines before they are reordered
    (:class:`_BidiPara`). A right-to-left document (its language's script) is mirrored: every
    table goes through :func:`_mirrored` (columns reversed, alignments swapped) and paragraph
    styles are mirrored (:func:`_mirrored_style`). A character no font has is a RenderError
    (intake refuses it first). The ToUnicode CMap of every subset is patched so that text
    extracts as what it is (:func:`_to_unicode_cmap`). Every label, figure and date comes from
    the document's view (:mod:`invoiceflow.render.view`: labels in the document's language,
    numbers, amounts and dates in its locale), as in the workbook and the emails.

Safety
    Every user string reaches Paragraph markup only through :func:`_markup`, which escapes it
    with :func:`xml.sax.saxutils.escape` (in :func:`_esc`, the one escaping helper): ``<img>``,
    ``<a href>``, ``<font color=...>`` (CVE-2023-33733), ``<link>`` and ``&`` entities print as
    literal text, so rendering opens no file and no network connection. Table cells that need no
    wrapping are plain strings, which ReportLab draws verbatim (no markup at all). Control
    characters are removed first (a lone surrogate prints as U+FFFD). The logo is decoded only
    as PNG or JPEG, up to :data:`MAX_LOGO_PIXELS`; anything else is a
    :class:`~invoiceflow.errors.RenderError`. A logo that is not RGB or grey (a CMYK JPEG, a
    palette or 16-bit PNG) is converted to RGB or grey first (:func:`_logo_colours`), so the PDF
    paints only DeviceRGB and DeviceGray, as PDF/A under the sRGB output intent requires.

Reproducible output
    The same document renders to byte-identical PDF bytes: invariant mode (no wall clock), the
    creation/modification date is the issue date (00:00 UTC), and the document ID is a digest of
    the canonical JSON document (independent of ``SOURCE_DATE_EPOCH`` and hash seeds).
    Metadata: title ``Invoice NUMBER`` (``Credit note NUMBER``, ``Rechnung NUMBER``...: the
    view's document name), author = seller name, subject (``Credit note NUMBER, DATE,
    BUYER``), keywords (the document name in lower case and the number), creator
    ``invoiceflow``, language = the invoice's locale.

Speed
    Fonts are registered once per process, paragraph styles are built once, cells that fit are
    plain strings (only long descriptions or text needing another font, bidi or shaping become
    Paragraphs, each wrapped once), and the items table is paginated by :class:`_ItemRows` in
    linear time: one small ``Table`` (header row + the rows that fit, ``repeatRows=1``) per
    page instead of letting one big ``Table`` re-split itself page after page, which is
    quadratic in the number of rows.

A4 pages, or US Letter where the locale's territory uses it (:func:`.localize.paper_size`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

# first: ReportLab's platypus, with its URI pattern compiled on first use (see there)
from invoiceflow.render import platypus_import  # noqa: F401

# isort: split
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.pdfdoc import DummyDoc, PDFText
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import LayoutError

from invoiceflow.domain.limits import MAX_LOGO_PIXELS
from invoiceflow.domain.model import Invoice, Logo, PaymentDetails, to_json
from invoiceflow.domain.totals import Totals, compute_totals
from invoiceflow.errors import RenderError
from invoiceflow.records import record
from invoiceflow.render import payqr, scripts
from invoiceflow.render.contrast import INK_RGB, white_reads_better
from invoiceflow.render.families import family
from invoiceflow.render.i18n import upper
from invoiceflow.render.view import DocumentView, PartyBlock, build_view

__all__ = ["MAX_LOGO_PIXELS", "check_pdf", "render_pdf"]

log = logging.getLogger(__name__)

# ReportLab fills its table of colour names on first use, without a lock: a thread that looks
# up a name ("black", a table style's default) while another thread is filling the table
# finds nothing and the render fails (ValueError: Invalid color value 'black'), as the first
# concurrent renders of a fresh worker did. Filled here, once, under the import lock.
colors.getAllNamedColors()

FONTS_DIR = Path(__file__).with_name("fonts")
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"

NAVY = colors.HexColor("#1F3A5F")
INK = colors.HexColor("#" + INK_RGB)
MUTED = colors.HexColor("#5B6675")
RULE = colors.HexColor("#C9D1DC")
ROW_ALT = colors.HexColor("#EEF2F7")
PANEL_HEAD = colors.HexColor("#E3E9F1")
WHITE = colors.white

# Streams are Flate-compressed binary, without ReportLab's default ASCII85 layer on top: 20 %
# smaller files and much faster (ReportLab's pure-Python ASCII85 encoder is slow). This is a
# process-wide ReportLab setting; this module (with .payqr) is the only ReportLab user.
rl_config.useA85 = 0

_PAGE_SIZES = {"letter": LETTER, "a4": A4}

# table metrics (points)
_BODY_SIZE = 8.5
_BODY_LEADING = 10.5
_PAD_X = 5.0
_PAD_Y = 4.0
_ROW_H = _BODY_LEADING + 2 * _PAD_Y
_MAX_ROW_H = 320.0  # a taller cell (e.g. 600 newlines) is cut into continuation rows


@record
class _Layout:
    """The look of a layout (``branding.layout``): page margins, type sizes, paddings,
    spacing, and which parts are filled with the accent colour. The defaults are classic,
    the original look; the paragraph styles are built from it (:func:`_styles`)."""

    margin_x: float = 18 * mm
    margin_top: float = 16 * mm
    margin_bottom: float = 20 * mm
    #: the items table
    body_size: float = _BODY_SIZE
    body_leading: float = _BODY_LEADING
    pad_x: float = _PAD_X
    pad_y: float = _PAD_Y
    #: paragraphs, meta values and totals; small print (details, notes, terms)
    text_size: float = 9
    text_leading: float = 12
    small_size: float = 8
    small_leading: float = 10.5
    company_size: float = 16
    title_size: float = 24
    title_bold: bool = True
    party_size: float = 9.5
    #: the heads of the panels and sections (BILL TO, NOTES)
    label_size: float = 7.5
    #: the space between the header, the parties, the items and the totals
    gap: float = 7 * mm
    logo_height: float = 20 * mm
    #: the items' header row and the balance due filled with the accent colour (else accent
    #: text over an accent rule)
    filled: bool = True
    #: alternate item rows shaded (else a hairline below each row)
    zebra: bool = True
    #: the party and payment panels boxed with a tinted head (else open, a rule below the head)
    boxed: bool = True
    #: the panels' paddings: sides, head top and bottom, body top and bottom
    panel_pads: tuple[float, float, float, float, float] = (7, 4, 3, 6, 7)
    total_size: float = 10
    due_size: float = 10.5

    @property
    def row_h(self) -> float:
        return self.body_leading + 2 * self.pad_y


#: the layouts by name (model.LAYOUTS): classic, the original; modern, light and airy with a
#: large balance due; compact, dense for long invoices (more lines on every page)
_LAYOUTS: dict[str, _Layout] = {
    "classic": _Layout(),
    "modern": _Layout(
        margin_x=20 * mm,
        margin_top=18 * mm,
        margin_bottom=22 * mm,
        body_leading=11,
        pad_y=5,
        company_size=15,
        title_size=28,
        title_bold=False,
        gap=8 * mm,
        filled=False,
        zebra=False,
        boxed=False,
        panel_pads=(0, 4, 4, 6, 2),
        total_size=11,
        due_size=18,
    ),
    "compact": _Layout(
        margin_x=13 * mm,
        margin_top=12 * mm,
        margin_bottom=16 * mm,
        body_size=7.5,
        body_leading=9,
        pad_x=3.5,
        pad_y=1.8,
        text_size=8,
        text_leading=10,
        small_size=7,
        small_leading=9,
        company_size=12,
        title_size=16,
        party_size=8.5,
        label_size=7,
        gap=4 * mm,
        logo_height=14 * mm,
        panel_pads=(5, 2, 1.5, 3, 3.5),
        total_size=9,
        due_size=9.5,
    ),
}
DEFAULT_LAYOUT = "classic"
#: the shares of the accent colour in the panel heads' and the shaded rows' tints (NAVY's
#: own tints are PANEL_HEAD and ROW_ALT)
_PANEL_TINT = 0.12
_ROW_TINT = 0.07


def _on(colour: colors.Color) -> colors.Color:
    """The text colour on ``colour``: white or ink, whichever contrasts more (WCAG 2)."""
    return WHITE if white_reads_better(colour.red, colour.green, colour.blue) else INK


def _tint(colour: colors.Color, share: float) -> colors.Color:
    """``colour`` mixed with white, ``share`` of it."""
    r, g, b = (1 - share * (1 - c) for c in (colour.red, colour.green, colour.blue))
    return colors.Color(r, g, b)


# --------------------------------------------------------------------------------------------
# text: cleaning, the one escaping helper, fonts per run, bidi and shaping (.scripts)
# --------------------------------------------------------------------------------------------

#: the CJK font (TrueType, embedded), registered when a text first needs it
CJK_FONT = scripts.CJK_FONT.regular
#: the fonts of a left-to-right document in the default family
_DEFAULT_CHAIN = scripts.FontChain()


def _clean(text: object) -> str:
    """Text as it may be printed: no control characters, bidi marks or lone surrogates
    (:func:`.scripts.clean`). Characters no font has are found when the text is laid out
    (:class:`.scripts.UnprintableText`, a RenderError)."""
    return scripts.clean(text)


def _plain(s: str, font: str, cjk: scripts.FontChain) -> bool:
    """Whether ``s`` can be drawn as it is in ``font`` (a table cell's plain string): one line,
    every character in the base family, nothing to reorder or shape."""
    return (s.isascii() and s.isprintable()) or (
        "\n" not in s
        and font in (cjk.base.regular, cjk.base.bold)
        and set(s) <= scripts.face_chars(cjk.base)
        and not scripts.needs_layout(s)
    )


def _esc(text: str) -> str:
    """THE escaping helper: the only way user text gets into ReportLab Paragraph markup."""
    return _xml_escape(text)


def _chain_for(font: str, cjk: scripts.FontChain) -> tuple[scripts.FontChain, bool]:
    """The chain and boldness that set text whose base font is ``font``."""
    if font == cjk.base.bold:
        return cjk, True
    if font == cjk.base.regular:
        return cjk, False
    return scripts.FontChain(scripts.Face(font, font, "", ""), cjk.japanese, cjk.rtl), False


def _line_markup(line: str, font: str, cjk: scripts.FontChain) -> str:
    """Paragraph markup of one line: its glyph runs in visual order, each run in a font other
    than ``font`` (the paragraph's) in a ``<font>`` tag."""
    if _plain(line, font, cjk):
        return _esc(line)
    chain, bold = _chain_for(font, cjk)
    out = []
    for g in scripts.layout_line(line, chain, bold, cjk.direction(line)):
        text = _esc(g.codes)
        out.append(text if g.font == font else f'<font name="{g.font}">{text}</font>')
    return "".join(out)


def _markup(text: object, cjk: scripts.FontChain, font: str) -> str:
    """Paragraph markup that prints ``text`` literally (escaped, each run in its font, laid
    out left to right as :func:`.scripts.layout_line` says, newlines as line breaks).
    ``font`` is the paragraph style's font: shaped glyphs are code points of one weight's
    font object, so markup made for one weight must never be drawn in another."""
    return "<br/>".join(_line_markup(line, font, cjk) for line in _clean(text).split("\n"))


def _text_width(text: str, font: str, size: float, cjk: scripts.FontChain) -> float:
    if _plain(text, font, cjk):
        return float(pdfmetrics.stringWidth(text, font, size))
    chain, bold = _chain_for(font, cjk)
    return scripts.line_width(scripts.layout_line(text, chain, bold, cjk.direction(text)), size)


def _draw_text(
    canv: Canvas,
    x: float,
    y: float,
    text: str,
    font: str,
    size: float,
    cjk: scripts.FontChain,
    align: str = "left",
    max_width: float = 0.0,
) -> None:
    """Draw one line of plain text on the canvas (no markup), each run in its font, laid out
    by :func:`.scripts.layout_line`; cut with an ellipsis at ``max_width`` if given (at the
    logical end of the text)."""
    s = _clean(text).replace("\n", " ")
    if max_width and _text_width(s, font, size, cjk) > max_width:
        lo, hi = 0, len(s)  # the longest prefix that fits with the ellipsis
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _text_width(s[:mid] + "\u2026", font, size, cjk) <= max_width:
                lo = mid
            else:
                hi = mid - 1
        s = s[:lo] + "\u2026"
    if align == "right":
        x -= _text_width(s, font, size, cjk)
    if _plain(s, font, cjk):
        canv.setFont(font, size)
        canv.drawString(x, y, s)
        return
    chain, bold = _chain_for(font, cjk)
    for g in scripts.layout_line(s, chain, bold, cjk.direction(s)):
        canv.setFont(g.font, size)
        canv.drawString(x, y, g.codes)
        x += g.width * size / 1000


def _break_lines(
    text: str, font: str, size: float, cjk: scripts.FontChain, width: float
) -> list[str]:
    """``text`` (one line, logical order) broken into lines no wider than ``width``: at
    spaces, and a word wider than a line after the last character that fits."""
    lines: list[str] = []
    line, line_w = "", 0.0
    for token in re.findall(r"\s+|\S+", text):
        w = _text_width(token, font, size, cjk)
        if token.isspace():
            if line:
                line, line_w = line + token, line_w + w
            continue
        if line and line_w + w > width:
            lines.append(line.rstrip())
            line, line_w = "", 0.0
        while not line and w > width and len(token) > 1:  # a word wider than a line: cut it
            lo, hi = 1, len(token) - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _text_width(token[:mid], font, size, cjk) <= width:
                    lo = mid
                else:
                    hi = mid - 1
            lines.append(token[:lo])
            token = token[lo:]
            w = _text_width(token, font, size, cjk)
        line, line_w = line + token, line_w + w
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


# --------------------------------------------------------------------------------------------
# fonts and styles (once per process)
# --------------------------------------------------------------------------------------------


@cache
def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.platypus.tables import CellStyle

    base = scripts.DEFAULT_BASE  # registered once per process, there (shaping adds codes)
    scripts.register_font(base.regular, base.regular_file)
    scripts.register_font(base.bold, base.bold_file)
    # no italic face: italic maps to upright (registered first so the upright mapping wins)
    for bold, italic, name in ((0, 1, FONT), (1, 1, FONT_BOLD), (0, 0, FONT), (1, 0, FONT_BOLD)):
        addMapping(FONT, bold, italic, name)
    # A table cell without a FONT command is drawn in CellStyle's class default, ReportLab's
    # Helvetica, which is never embedded: default to the embedded DejaVu Sans instead
    # (process-wide, like useA85 above; this module is the only ReportLab user).
    CellStyle.fontname = FONT


_RL_TO_UNICODE = ttfonts.makeToUnicodeCMap
_CMAP_ENTRY = re.compile(r"^<([0-9A-F]{2})> <[0-9A-F]+>$", re.MULTILINE)


def _to_unicode_cmap(fontname: str, subset: Sequence[int]) -> str:
    """ReportLab's ToUnicode CMap of a font subset, with every code written as the text it
    stands for: a shaped glyph's private code point as the characters of its cluster
    (:func:`.scripts.to_unicode_text`), and characters beyond U+FFFF as UTF-16 surrogate pairs
    (ReportLab writes them as odd-length hex strings, ``<1F600>``, which is not valid CMap
    syntax, so readers could not extract them)."""
    ps_name = fontname.split("+", 1)[-1]

    def entry(m: re.Match[str]) -> str:
        code = subset[int(m[1], 16)]
        text = scripts.to_unicode_text(ps_name, code)
        utf16 = (chr(code) if text is None else text).encode("utf-16-be").hex().upper()
        return f"<{m[1]}> <{utf16}>"

    return _CMAP_ENTRY.sub(entry, _RL_TO_UNICODE(fontname, subset))


ttfonts.makeToUnicodeCMap = _to_unicode_cmap  # process-wide, like useA85 (see there)


@record
class _Styles:
    body: ParagraphStyle
    body_right: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle
    small: ParagraphStyle
    small_right: ParagraphStyle
    company: ParagraphStyle
    party_name: ParagraphStyle
    title: ParagraphStyle
    panel_head: ParagraphStyle
    section_head: ParagraphStyle
    meta_value: ParagraphStyle
    #: the look these styles are of: the layout, the font family's regular and bold fonts,
    #: the accent colour (header row, titles) and its tints (panel heads, shaded rows)
    layout: _Layout
    font: str
    bold: str
    accent: colors.Color
    #: the text colour on the accent colour: white, or ink on a light accent (:func:`_on`)
    on_accent: colors.Color
    panel_fill: colors.Color
    row_alt: colors.Color


def _look(invoice: Invoice) -> tuple[str, str | None, str | None]:
    """The invoice's (layout, accent colour, font family): what its styles depend on. A word
    with a character the family lacks is set in the next font of the document's chain that
    has them all (:mod:`.scripts`)."""
    b = invoice.branding
    if b is None:
        return DEFAULT_LAYOUT, None, None
    return b.layout or DEFAULT_LAYOUT, b.accent_color, b.font


@lru_cache(maxsize=64)  # bounded: every account may choose its own accent colour
def _styles(
    layout: str = DEFAULT_LAYOUT, accent_color: str | None = None, font_family: str | None = None
) -> _Styles:
    """The paragraph styles and colours of a look, built once per (layout, accent, font)."""

    _register_fonts()
    fam = family(font_family)
    regular, bold = fam.regular, fam.bold
    lay = _LAYOUTS[layout]
    accent = NAVY if accent_color is None else colors.HexColor(accent_color)
    own_tints = accent_color is None or accent.hexval() == NAVY.hexval()
    panel_fill = PANEL_HEAD if own_tints else _tint(accent, _PANEL_TINT)
    row_alt = ROW_ALT if own_tints else _tint(accent, _ROW_TINT)

    def ps(name: str, **kw: Any) -> ParagraphStyle:
        if "parent" in kw:
            return ParagraphStyle(name, **kw)
        base = {
            "fontName": regular,
            "fontSize": lay.text_size,
            "leading": lay.text_leading,
            "textColor": INK,
            "splitLongWords": 1,
        }
        base.update(kw)
        return ParagraphStyle(name, **base)

    cell = ps("if-cell", fontSize=lay.body_size, leading=lay.body_leading)
    small = {"fontSize": lay.small_size, "leading": lay.small_leading, "textColor": MUTED}
    label = lay.label_size
    return _Styles(
        body=ps("if-body"),
        body_right=ps("if-body-right", alignment=TA_RIGHT),
        cell=cell,
        cell_right=ps("if-cell-right", parent=cell, alignment=TA_RIGHT),
        small=ps("if-small", **small),
        small_right=ps("if-small-right", alignment=TA_RIGHT, **small),
        company=ps(
            "if-company",
            fontName=bold,
            fontSize=lay.company_size,
            leading=lay.company_size + 3,
            textColor=accent,
            spaceAfter=3,
        ),
        party_name=ps(
            "if-party-name", fontName=bold, fontSize=lay.party_size, leading=lay.party_size + 3
        ),
        title=ps(
            "if-title",
            fontName=bold if lay.title_bold else regular,
            fontSize=lay.title_size,
            leading=lay.title_size + 4,
            textColor=accent,
            alignment=TA_RIGHT,
            spaceAfter=6 if lay.gap > 5 * mm else 3,
        ),
        panel_head=ps(
            "if-panel-head", fontName=bold, fontSize=label, leading=label * 1.2, textColor=accent
        ),
        section_head=ps(
            "if-section-head",
            fontName=bold,
            fontSize=label + 0.5,
            leading=(label + 0.5) * 1.25,
            textColor=accent,
            spaceBefore=10 if lay.gap > 5 * mm else 6,
            spaceAfter=3,
            keepWithNext=1,
        ),
        meta_value=ps(
            "if-meta-value",
            fontName=bold,
            fontSize=lay.text_size,
            leading=lay.text_size + 2.5,
            alignment=TA_RIGHT,
        ),
        layout=lay,
        font=regular,
        bold=bold,
        accent=accent,
        on_accent=_on(accent),
        panel_fill=panel_fill,
        row_alt=row_alt,
    )


class _Para(Paragraph):
    """A Paragraph that remembers its last wrap (the table measures it, then draws it)."""

    _wrapped_at: float | None = None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        # Paragraph.split may drop blPara: then wrap again
        if self._wrapped_at != availWidth or "blPara" not in self.__dict__:
            super().wrap(availWidth, availHeight)
            self._wrapped_at = availWidth
        return self.width, self.height


class _BidiPara(_Para):
    """A paragraph with right-to-left text: it is broken into lines in logical order when
    its width is known (at wrap), and each line is then laid out in visual order; the pieces
    of a split keep their lines."""

    _logical: tuple[list[str], scripts.FontChain] | None = None
    _laid_at: float | None = None

    @classmethod
    def of(cls, lines: list[str], style: ParagraphStyle, cjk: scripts.FontChain) -> _BidiPara:
        para = cls("", style)
        para._logical = (lines, cjk)
        return para

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        if self._logical is not None and self._laid_at != availWidth:
            lines, cjk = self._logical
            st = self.style
            width = availWidth - st.leftIndent - st.rightIndent - 0.5
            broken = [
                part
                for line in lines
                for part in _break_lines(line, st.fontName, st.fontSize, cjk, width)
            ]
            markup = "<br/>".join(_markup(line, cjk, st.fontName) for line in broken)
            Paragraph.__init__(self, markup, st)
            self._laid_at, self._wrapped_at = availWidth, None
        return super().wrap(availWidth, availHeight)


def _paragraph(lines: Sequence[str], style: ParagraphStyle, cjk: scripts.FontChain) -> Paragraph:
    """A paragraph of ``lines`` (each cleaned, one line) in ``style`` as it is."""
    cleaned = [_clean(line).replace("\n", " ") for line in lines]
    if any(scripts.has_rtl(line) for line in cleaned):
        return _BidiPara.of(cleaned, style, cjk)
    font = style.fontName
    return _Para("<br/>".join(_markup(line, cjk, font) for line in cleaned), style)


_CELL_ALIGNMENT = {"LEFT": TA_LEFT, "RIGHT": TA_RIGHT, "CENTER": TA_CENTER, "CENTRE": TA_CENTER}


def _laid_out(table: Table, cjk: scripts.FontChain) -> Table:
    """``table`` with every plain-string cell that needs another font, bidi or shaping (a
    label in Arabic or Thai) made a paragraph in the cell's font, size, colour and alignment:
    ReportLab draws a plain string as it is, in one font, unshaped, left to right."""
    for row, styles in zip(table._cellvalues, table._cellStyles, strict=True):
        for c, value in enumerate(row):
            cell = styles[c]
            if isinstance(value, str) and value and not _plain(value, cell.fontname, cjk):
                style = ParagraphStyle(
                    "if-table-cell",
                    fontName=cell.fontname,
                    fontSize=cell.fontsize,
                    leading=cell.leading,
                    textColor=cell.color,
                    alignment=_CELL_ALIGNMENT.get(str(cell.alignment).upper(), TA_LEFT),
                )
                row[c] = _paragraph(value.split("\n"), style, cjk)
    return table


@cache
def _mirrored_style(style: ParagraphStyle) -> ParagraphStyle:
    """``style`` with left and right alignment swapped (right-to-left documents)."""
    swapped = {TA_LEFT: TA_RIGHT, TA_RIGHT: TA_LEFT}.get(style.alignment, style.alignment)
    return ParagraphStyle(f"{style.name}-rtl", parent=style, alignment=swapped)


_SWAPPED = {
    "LEFT": "RIGHT",
    "RIGHT": "LEFT",
    "LEFTPADDING": "RIGHTPADDING",
    "RIGHTPADDING": "LEFTPADDING",
    "LINEBEFORE": "LINEAFTER",
    "LINEAFTER": "LINEBEFORE",
}


def _mirrored(
    rtl: bool, data: list[list[Any]], widths: Sequence[float], cmds: Sequence[tuple[Any, ...]]
) -> tuple[list[list[Any]], list[float], list[tuple[Any, ...]]]:
    """A table's rows, column widths and style commands, mirrored when ``rtl`` (a
    right-to-left document): the columns in reverse order, left and right swapped in
    alignments, paddings and side lines, and cells right-aligned unless a command says
    otherwise. The one place tables are mirrored (:func:`_table`, :func:`_items`)."""
    if not rtl:
        return data, list(widths), list(cmds)
    n = len(widths)

    def col(c: int) -> int:
        return n - 1 - (c if c >= 0 else n + c)

    rows = [row[::-1] for row in data]
    out: list[tuple[Any, ...]] = [("ALIGN", (0, 0), (-1, -1), "RIGHT")]
    for name, (c0, r0), (c1, r1), *args in cmds:
        if name == "ALIGN":
            args = [_SWAPPED.get(str(args[0]).upper(), args[0])]
        elif name == "SPAN":  # a span shows its first cell's content: move it there
            top = rows[r0]
            top[col(c1)], top[col(c0)] = top[col(c0)], top[col(c1)]
        out.append((_SWAPPED.get(name, name), (col(c1), r0), (col(c0), r1), *args))
    return rows, list(widths)[::-1], out


def _table(
    ctx: _Ctx,
    data: list[list[Any]],
    colWidths: Sequence[float],
    style: TableStyle,
    hAlign: str = "CENTER",
    **kw: Any,
) -> Table:
    """A ``Table``, mirrored in a right-to-left document (:func:`_mirrored`), its plain
    strings laid out (:func:`_laid_out`)."""
    rtl = ctx.cjk.rtl
    rows, widths, cmds = _mirrored(rtl, data, colWidths, style.getCommands())
    side = _SWAPPED.get(hAlign, hAlign) if rtl else hAlign
    table = Table(rows, colWidths=widths, hAlign=side, style=TableStyle(cmds), **kw)
    return _laid_out(table, ctx.cjk)


# --------------------------------------------------------------------------------------------
# per-render context
# --------------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, invoice: Invoice) -> None:
        self.inv = invoice
        look = _look(invoice)
        self.st = _styles(*look)
        self.look = self.st.layout
        self.font, self.bold, self.accent = self.st.font, self.st.bold, self.st.accent
        #: the document's fonts (and direction) on its family, each registered when a text
        #: first needs it
        self.cjk = scripts.font_chain(invoice, family(look[2]))
        self.totals: Totals = compute_totals(invoice)
        #: every word and figure printed (render.view)
        self.view: DocumentView = build_view(invoice, self.totals)
        self.pagesize = _PAGE_SIZES[self.view.paper]
        self.margin_x = self.look.margin_x
        self.margin_top = self.look.margin_top
        self.margin_bottom = self.look.margin_bottom
        self.width = self.pagesize[0] - 2 * self.margin_x
        self.height = self.pagesize[1] - self.margin_top - self.margin_bottom

    # text --------------------------------------------------------------------------------
    def _style(self, style: ParagraphStyle) -> ParagraphStyle:
        """``style``, mirrored in a right-to-left document (left and right alignment swapped)."""
        return _mirrored_style(style) if self.cjk.rtl else style

    def para(self, text: object, style: ParagraphStyle) -> Paragraph:
        return self.lines_para(_clean(text).split("\n"), style)

    def lines_para(self, lines: Sequence[str], style: ParagraphStyle) -> Paragraph:
        return _paragraph(lines, self._style(style), self.cjk)

    def cell(
        self,
        text: object,
        inner_width: float,
        style: ParagraphStyle,
        font: str = FONT,
        size: float = _BODY_SIZE,
    ) -> str | Paragraph:
        """A plain string if it fits on one line in the table's font and needs no other font,
        bidi or shaping, else a Paragraph."""
        s = _clean(text)
        if _plain(s, font, self.cjk) and pdfmetrics.stringWidth(s, font, size) <= inner_width:
            return s
        return self.para(s, style)

    def label(self, text: str, inner_width: float) -> str | Paragraph:
        """A label cell: the plain string (drawn in the table's font), or, when it needs
        another font, bidi or shaping, or does not fit, a Paragraph in the small muted style."""
        s = _clean(text)
        size = self.look.text_size - 0.5  # the label column's FONT command
        if (
            _plain(s, self.font, self.cjk)
            and pdfmetrics.stringWidth(s, self.font, size) <= inner_width
        ):
            return s
        return self.para(s, self.st.small)

    def heading(self, text: str, inner_width: float) -> str | Paragraph:
        """A column heading of the items table: the plain string, or a Paragraph in bold on the
        accent when it needs another font, bidi or shaping, or does not fit (long labels
        wrap)."""
        s = _clean(text)
        if (
            _plain(s, self.bold, self.cjk)
            and pdfmetrics.stringWidth(s, self.bold, self.look.body_size) <= inner_width
        ):
            return s
        return self.para(s, _heading_style(self))

    def caps(self, text: str) -> str:
        """A heading in capitals, as the document's language writes them."""
        return upper(text, self.view.language)


def _row_style(
    ctx: _Ctx, *, bold: bool, color: colors.Color, size: float, right: bool = False
) -> ParagraphStyle:
    """The paragraph style of a table cell whose text is set as a paragraph (another script,
    or too long for one line) so that it looks like the plain text of its row: the row's
    weight in the look's family, its size and colour (table commands do not reach
    paragraphs)."""
    return ParagraphStyle(
        "if-row",
        parent=ctx.st.cell,
        fontName=ctx.bold if bold else ctx.font,
        fontSize=size,
        leading=size * 1.2,
        textColor=color,
        alignment=TA_RIGHT if right else TA_LEFT,
    )


def _heading_style(ctx: _Ctx) -> ParagraphStyle:
    """The items table's heading row as a paragraph: bold on the accent colour."""
    return _row_style(ctx, bold=True, color=ctx.st.on_accent, size=ctx.look.body_size)


# --------------------------------------------------------------------------------------------
# logo
# --------------------------------------------------------------------------------------------


class _LogoFlowable(Flowable):
    def __init__(self, reader: ImageReader, width: float, height: float) -> None:
        super().__init__()
        self.reader, self.width, self.height = reader, width, height

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        self.canv.drawImage(self.reader, 0, 0, self.width, self.height, mask="auto")


#: the image modes ReportLab writes as DeviceRGB or DeviceGray (with a soft mask for alpha)
_LOGO_MODES = frozenset({"RGB", "RGBA", "L", "LA"})
#: 16-bit grey (PNG): Pillow's own conversion to 8 bits clips every value above 255
_LOGO_16BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def _logo_colours(im: Any) -> Any:
    """The logo in colours a PDF/A with an sRGB output intent may paint (DeviceRGB or
    DeviceGray), or None when it already is: a CMYK JPEG would go in as DeviceCMYK, which
    PDF/A forbids under an RGB output intent, and ReportLab's own conversion of 16-bit grey
    clips it to white. CMYK (and YCbCr, LAB, HSV) become RGB, through the image's own
    ICC profile to sRGB when it has one (else Pillow's plain conversion); a palette becomes
    RGB, or RGBA when it has a transparent colour; bilevel and 32-bit images become grey,
    16-bit grey scaled to 8 bits. Deterministic: the same bytes give the same pixels."""
    from PIL import Image

    mode = im.mode
    if mode in _LOGO_MODES:
        return None
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in im.info
        return im.convert("RGBA" if alpha else "RGB")
    if mode == "1":
        return im.convert("L")
    if mode in _LOGO_16BIT:
        return im.convert("I").point(lambda v: v / 256).convert("L")
    if mode in ("I", "F"):
        return im.convert("L")
    if mode in ("La", "RGBa"):  # premultiplied alpha
        return im.convert("LA" if mode == "La" else "RGBA")
    icc = im.info.get("icc_profile")
    if icc and mode == "CMYK":
        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except Exception:  # noqa: BLE001  # a damaged profile: Pillow's plain conversion
            converted = None
        if isinstance(converted, Image.Image):
            return converted
    return im.convert("RGB")


#: the EXIF tag of an image's orientation (1: upright)
_EXIF_ORIENTATION = 0x0112


def _logo(logo: Logo, max_w: float, max_h: float) -> _LogoFlowable:
    """Decode the logo (PNG or JPEG only) and scale it to fit ``max_w`` x ``max_h``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(logo.data), formats=("PNG", "JPEG")) as im:
            w, h = im.size
            if w < 1 or h < 1 or w * h > MAX_LOGO_PIXELS:
                raise RenderError(
                    f"the logo is {w}x{h} pixels; at most "
                    f"{MAX_LOGO_PIXELS:,} pixels can be rendered"
                )
            im.load()  # a truncated or corrupt image fails here, not halfway through the PDF
            # a phone stores a photo as the sensor saw it, with an EXIF tag saying how to turn
            # it (viewers follow it): drawn turned; an upright logo is embedded as it came
            upright: Image.Image = im
            if im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                upright = ImageOps.exif_transpose(im)
                w, h = upright.size
            converted = _logo_colours(upright)
            if converted is None and upright is not im:
                converted = upright
        reader = ImageReader(converted if converted is not None else io.BytesIO(logo.data))
        reader.getSize()
    except RenderError:
        raise
    except UnidentifiedImageError as exc:
        raise RenderError("the logo is not a PNG or JPEG image") from exc
    except Image.DecompressionBombError as exc:
        raise RenderError(
            f"the logo has too many pixels; at most {MAX_LOGO_PIXELS:,} can be rendered"
        ) from exc
    except Exception as exc:  # PIL raises many unrelated types for damaged data
        # PIL's message (a library's text) goes to the log, not to the owner
        log.info("the logo cannot be decoded: %r", exc)
        raise RenderError("the logo image is damaged and cannot be decoded") from exc
    scale = min(max_w / w, max_h / h)
    return _LogoFlowable(reader, w * scale, h * scale)


# --------------------------------------------------------------------------------------------
# page furniture: numbering canvas, running header
# --------------------------------------------------------------------------------------------


#: the footer's baseline above the bottom edge of the page, or above a Swiss QR-bill
_FOOTER_Y = 11 * mm
_BILL_FOOTER_Y = 5 * mm


class _NumberedCanvas(Canvas):
    """Keeps every page until the end so the footer can say "Page N of M"."""

    def __init__(
        self,
        *args: Any,
        footer: str = "",
        page_label: Callable[[int, int], str] = "Page {} of {}".format,
        cjk: scripts.FontChain = _DEFAULT_CHAIN,
        created: str = "",
        doc_id: bytes = b"",
        brand_footer: str = "",
        font: str = FONT,
        margin_x: float = 18 * mm,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        #: set by payqr.SwissQRBill on the page it draws on (kept per page like the rest)
        self.payqr_bill_top = 0.0
        self._footer = footer
        self._page_label = page_label
        #: the branding's footer line (``branding.footer``), below the page footer
        self._brand_footer = brand_footer
        self._font, self._margin_x = font, margin_x
        self._cjk = cjk
        if created:
            self.setDateFormatter(lambda *_: created)
        if doc_id:
            self._doc._ID = doc_id  # fixed ID instead of ReportLab's timestamp digest

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self.payqr_bill_top = 0.0
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._draw_footer(total)
            super().showPage()
        super().save()

    def _draw_footer(self, total: int) -> None:
        w, _ = self._pagesize
        x0, x1, y = self._margin_x, w - self._margin_x, _FOOTER_Y
        if self.payqr_bill_top:  # the page of a Swiss QR-bill: the footer stands above it
            y = self.payqr_bill_top + _BILL_FOOTER_Y
        font = self._font
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(x0, y + 9, x1, y + 9)
        self.setFillColor(MUTED)
        _draw_text(self, x0, y, self._footer, font, 7.5, self._cjk, max_width=x1 - x0 - 80)
        page = self._page_label(self._pageNumber, total)
        _draw_text(self, x1, y, page, font, 7.5, self._cjk, align="right")
        if self._brand_footer:  # centred on a line of its own below
            width = _text_width(_clean(self._brand_footer), font, 7, self._cjk)
            x = x0 + max(0.0, (x1 - x0 - width) / 2)
            _draw_text(self, x, y - 9, self._brand_footer, font, 7, self._cjk, max_width=x1 - x0)
        self.restoreState()


def _doc_id(invoice: Invoice) -> bytes:
    canonical = json.dumps(
        to_json(invoice), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()[:16]
    ids: bytes = PDFText(digest, enc="raw").format(DummyDoc())
    return b"\n[" + ids + ids + b"]\n"


def _running_header(ctx: _Ctx) -> Callable[[Canvas, Any], None]:
    left = ctx.view.seller.title
    right = f"{ctx.view.name} {ctx.inv.number} \u00b7 {ctx.view.continued}"

    def draw(canv: Canvas, doc: Any) -> None:
        w, h = ctx.pagesize
        y = h - 10 * mm
        canv.saveState()
        canv.setFillColor(ctx.accent)
        _draw_text(canv, ctx.margin_x, y, left, ctx.bold, 8.5, ctx.cjk, max_width=ctx.width * 0.55)
        canv.setFillColor(MUTED)
        _draw_text(
            canv,
            w - ctx.margin_x,
            y,
            right,
            ctx.font,
            8,
            ctx.cjk,
            align="right",
            max_width=ctx.width * 0.4,
        )
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.5)
        canv.line(ctx.margin_x, y - 4, w - ctx.margin_x, y - 4)
        canv.restoreState()

    return draw


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------


def _header(ctx: _Ctx) -> Table:
    st, inv = ctx.st, ctx.inv
    left_w = ctx.width * 0.56
    right_w = ctx.width - left_w
    left: list[Flowable] = []
    if inv.logo is not None:
        left.append(_logo(inv.logo, min(60 * mm, left_w - 6), ctx.look.logo_height))
        left.append(Spacer(1, ctx.look.logo_height / 5))
    left.append(ctx.para(ctx.view.seller.title, st.company))
    details = ctx.view.seller.lines
    if details:
        left.append(ctx.lines_para(details, st.small))

    meta = ctx.view.meta
    label_w = 30 * mm
    meta_rows = [
        [ctx.label(label, label_w), ctx.para(value, st.meta_value)] for label, value in meta
    ]
    meta_table = _table(
        ctx,
        meta_rows,
        colWidths=[label_w, right_w - label_w],
        hAlign="RIGHT",
        splitInRow=1,
        style=TableStyle(
            [
                ("FONT", (0, 0), (0, -1), ctx.font, ctx.look.text_size - 0.5),
                ("TEXTCOLOR", (0, 0), (0, -1), MUTED),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), ctx.look.pad_y * 0.375),
                ("BOTTOMPADDING", (0, 0), (-1, -1), ctx.look.pad_y * 0.375),
            ]
        ),
    )
    right: list[Flowable] = [ctx.para(ctx.view.title, st.title), meta_table]
    return _table(
        ctx,
        [[left, right]],
        colWidths=[left_w, right_w],
        splitInRow=1,
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (0, -1), 10),
            ]
        ),
    )


def _panel_frame(ctx: _Ctx, col: int) -> list[tuple[Any, ...]]:
    """The table-style commands that frame the panel in column ``col`` (its head row 0, its
    body row 1): boxed with a tinted head, or open with a rule below the head."""
    if ctx.look.boxed:
        return [
            ("BACKGROUND", (col, 0), (col, 0), ctx.st.panel_fill),
            ("BOX", (col, 0), (col, 1), 0.75, RULE),
        ]
    return [("LINEBELOW", (col, 0), (col, 0), 0.75, ctx.accent)]


def _party_panels(ctx: _Ctx) -> Table:
    st, view = ctx.st, ctx.view
    gap = 6 * mm
    panel_w = (ctx.width - gap) / 2

    def content(p: PartyBlock) -> list[Flowable]:
        out: list[Flowable] = [ctx.para(p.title, st.party_name)]
        if p.lines:
            out.append(ctx.lines_para(p.lines, st.body))
        return out

    heads: list[Any] = [ctx.para(ctx.caps(view.bill_to.heading), st.panel_head), "", ""]
    bodies: list[Any] = [content(view.bill_to), "", ""]
    side, head_top, head_bottom, body_top, body_bottom = ctx.look.panel_pads
    cmds: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), side),
        ("RIGHTPADDING", (0, 0), (-1, -1), side),
        ("TOPPADDING", (0, 0), (-1, 0), head_top),
        ("BOTTOMPADDING", (0, 0), (-1, 0), head_bottom),
        ("TOPPADDING", (0, 1), (-1, 1), body_top),
        ("BOTTOMPADDING", (0, 1), (-1, 1), body_bottom),
        *_panel_frame(ctx, 0),
    ]
    if view.ship_to is not None:
        heads[2] = ctx.para(ctx.caps(view.ship_to.heading), st.panel_head)
        bodies[2] = content(view.ship_to)
        cmds += _panel_frame(ctx, 2)
    return _table(
        ctx,
        [heads, bodies],
        colWidths=[panel_w, gap, panel_w],
        splitInRow=1,
        style=TableStyle(cmds),
    )


# --------------------------------------------------------------------------------------------
# items table
# --------------------------------------------------------------------------------------------


class _ItemRows(Flowable):
    """The items table, paginated in linear time: each page gets one ``Table`` holding the
    header row and the rows that fit; the rest flows on as another ``_ItemRows``."""

    def __init__(
        self,
        header: list[Any],
        header_h: float,
        rows: list[list[Any]],
        heights: list[float],
        shaded: list[bool],
        col_widths: list[float],
        style: TableStyle,
        start: int = 0,
        suffix: list[float] | None = None,
        row_alt: colors.Color = ROW_ALT,
    ) -> None:
        super().__init__()
        self.header, self.header_h = header, header_h
        self.rows, self.heights, self.shaded = rows, heights, shaded
        self.col_widths = col_widths
        self.style, self.start = style, start
        self.row_alt = row_alt
        if suffix is None:  # suffix[i] = height of rows[i:]
            suffix = [0.0] * (len(heights) + 1)
            for i in range(len(heights) - 1, -1, -1):
                suffix[i] = suffix[i + 1] + heights[i]
        self.suffix = suffix

    def _table(self, i: int, j: int) -> Table:
        t = Table(
            [self.header, *self.rows[i:j]],
            colWidths=self.col_widths,
            rowHeights=[self.header_h, *self.heights[i:j]],
            repeatRows=1,
            style=self.style,
        )
        # alternate the colours by item, continuing across pages
        t.setStyle(
            [
                ("BACKGROUND", (0, r), (-1, r), self.row_alt)
                for r, row in enumerate(range(i, j), start=1)
                if self.shaded[row]
            ]
        )
        return t

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self.width = sum(self.col_widths)
        self.height = self.header_h + self.suffix[self.start]
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        n = len(self.heights)
        room = availHeight - self.header_h + 1e-6
        j, used = self.start, 0.0
        while j < n and used + self.heights[j] <= room:
            used += self.heights[j]
            j += 1
        if j == self.start:
            return []  # not even one row: start on the next page
        if j == n:
            return [self._table(self.start, n)]
        return [
            self._table(self.start, j),
            _ItemRows(
                self.header,
                self.header_h,
                self.rows,
                self.heights,
                self.shaded,
                self.col_widths,
                self.style,
                j,
                self.suffix,
                self.row_alt,
            ),
        ]

    def draw(self) -> None:
        t = self._table(self.start, len(self.heights))
        t.wrapOn(self.canv, self.width, self.height)
        t.drawOn(self.canv, 0, 0)


def _col_width(
    strings: Sequence[str],
    font: str,
    size: float,
    floor: float,
    cjk: scripts.FontChain = _DEFAULT_CHAIN,
    pad_x: float = _PAD_X,
) -> float:
    """Width of a column of one-line strings: measure only the few longest ones."""
    longest = sorted(set(strings), key=len)[-6:]
    widest = max((_text_width(s, font, size, cjk) for s in longest), default=0.0)
    return max(widest, floor) + 2 * pad_x + 1


def _items(ctx: _Ctx) -> Flowable:
    st, inv, view = ctx.st, ctx.inv, ctx.view
    look, font = ctx.look, ctx.font
    size, pad_x, pad_y = look.body_size, look.pad_x, look.pad_y
    items, cells = inv.items, view.lines
    has_sku = any(it.sku for it in items)
    has_tax = any(it.tax_rate is not None or it.tax_category is not None for it in items)
    has_disc = any(it.discount is not None for it in items)

    qty = [_clean(c.quantity) for c in cells]
    price = [_clean(c.unit_price) for c in cells]
    amount = [_clean(c.amount) for c in cells]
    tax = [_clean(c.tax) for c in cells] if has_tax else []
    disc = [_clean(c.discount) for c in cells] if has_disc else []
    numbers = [c.number for c in cells]

    # the columns: (key, header); numeric columns are as wide as their widest value,
    # the description takes the rest
    numeric = {"n": numbers, "qty": qty, "price": price, "tax": tax, "disc": disc, "amount": amount}
    keys = ["n", *(["sku"] if has_sku else []), "desc", "qty", "price"]
    keys += [*(["tax"] if has_tax else []), *(["disc"] if has_disc else []), "amount"]
    cols = [(key, _clean(view.headings[key])) for key in keys]
    fixed: dict[str, float] = {}
    for key, head in cols:
        floor = _text_width(head, ctx.bold, size, ctx.cjk)
        if key == "sku":
            skus = [_clean(it.sku or "") for it in items]
            fixed[key] = min(_col_width(skus, font, size, floor, ctx.cjk, pad_x), 26 * mm)
        elif key == "qty":
            fixed[key] = min(_col_width(qty, font, size, floor, ctx.cjk, pad_x), 28 * mm)
        elif key in numeric:
            fixed[key] = _col_width(numeric[key], font, size, floor, ctx.cjk, pad_x)
    keys = [key for key, _ in cols]
    desc_w = max(ctx.width - sum(fixed.values()), 45 * mm)
    widths = [fixed.get(k, desc_w) for k in keys]
    scale = min(1.0, ctx.width / sum(widths))  # < 1 only with absurdly long amounts
    widths = [w * scale for w in widths]
    inner = {k: w - 2 * pad_x for k, w in zip(keys, widths, strict=True)}
    col_inner = [inner[k] for k in keys]

    header = [ctx.heading(head, w - 2 * _PAD_X) for (_, head), w in zip(cols, widths, strict=True)]
    rows: list[list[Any]] = []
    heights: list[float] = []
    shaded: list[bool] = []
    max_inner_h = _MAX_ROW_H - 2 * pad_y
    for i, it in enumerate(items):
        row: list[Any] = []
        for k in keys:
            if k == "desc":
                cell = ctx.cell(it.description, inner[k], st.cell, font, size)
            elif k == "sku":
                cell = ctx.cell(it.sku or "", inner[k], st.cell, font, size)
            else:
                text = numeric[k][i]
                # numbers fit by construction of the column widths (unless scaled down)
                cell = (
                    text
                    if scale == 1.0 and k != "qty" and _plain(text, font, ctx.cjk)
                    else ctx.cell(text, inner[k], st.cell_right, font, size)
                )
            row.append(cell)
        h = look.row_h
        more: dict[int, list[Any]] = {}  # column -> the pieces of a too-tall cell
        for c, cell in enumerate(row):
            if isinstance(cell, Paragraph):
                ph = cell.wrap(col_inner[c], 1e9)[1]
                if ph > max_inner_h:
                    pieces = _cut(cell, col_inner[c], max_inner_h)
                    row[c], more[c] = pieces[0], pieces[1:]
                    ph = pieces[0].wrap(col_inner[c], 1e9)[1]
                h = max(h, ph + 2 * pad_y)
        rows.append(row)
        heights.append(h)
        shaded.append(look.zebra and i % 2 == 1)
        for n in range(max((len(p) for p in more.values()), default=0)):
            cont: list[Any] = [""] * len(keys)  # continuation rows of very long cells
            h = look.row_h
            for c, pieces in more.items():
                if n < len(pieces):
                    cont[c] = pieces[n]
                    h = max(h, pieces[n].wrap(col_inner[c], 1e9)[1] + 2 * pad_y)
            rows.append(cont)
            heights.append(h)
            shaded.append(look.zebra and i % 2 == 1)

    accent, leading = ctx.accent, look.body_leading
    # the header row: white on the accent colour, or accent text over an accent rule
    head_cmds: list[tuple[Any, ...]] = (
        [("TEXTCOLOR", (0, 0), (-1, 0), st.on_accent), ("BACKGROUND", (0, 0), (-1, 0), accent)]
        if look.filled
        else [("TEXTCOLOR", (0, 0), (-1, 0), accent), ("LINEBELOW", (0, 0), (-1, 0), 1, accent)]
    )
    # unshaded rows are parted by hairlines
    rules: list[tuple[Any, ...]] = (
        [] if look.zebra else [("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE)]
    )
    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, 0), ctx.bold, size, leading),
        ("FONT", (0, 1), (-1, -1), font, size, leading),
        *head_cmds[:1],
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        *head_cmds[1:],
        ("VALIGN", (0, 0), (-1, 0), "MIDDLE"),
        ("VALIGN", (0, 1), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), pad_x),
        ("RIGHTPADDING", (0, 0), (-1, -1), pad_x),
        ("TOPPADDING", (0, 0), (-1, -1), pad_y),
        ("BOTTOMPADDING", (0, 0), (-1, -1), pad_y),
        *rules,
        ("LINEBELOW", (0, -1), (-1, -1), 0.75, accent),
        ("TEXTCOLOR", (0, 1), (0, -1), MUTED),
    ]
    for c, k in enumerate(keys):
        if k in numeric:
            cmds.append(("ALIGN", (c, 0), (c, -1), "RIGHT"))
    header_h = leading + 2 * pad_y + 3
    table, widths, cmds = _mirrored(ctx.cjk.rtl, [header, *rows], widths, cmds)
    header = _laid_out(Table(table[:1], colWidths=widths, style=cmds), ctx.cjk)._cellvalues[0]
    return _ItemRows(
        header, header_h, table[1:], heights, shaded, widths, TableStyle(cmds), row_alt=st.row_alt
    )


def _cut(p: Paragraph, width: float, max_h: float) -> list[Any]:
    """Cut a too-tall paragraph into pieces of at most ``max_h``."""
    parts: list[Any] = []
    rest: Any = p
    while True:
        _, h = rest.wrap(width, 1e9)
        if h <= max_h:
            parts.append(rest)
            return parts
        pieces = rest.split(width, max_h)
        if len(pieces) < 2:  # cannot be cut (should not happen with splitLongWords)
            parts.append(rest)
            return parts
        parts.append(pieces[0])
        rest = pieces[1]


# --------------------------------------------------------------------------------------------
# totals, payment details, notes
# --------------------------------------------------------------------------------------------


def _totals(ctx: _Ctx) -> Table:
    kinds = {"line_discounts": "muted", "total": "total", "balance": "due"}
    rows: list[tuple[str, str, str]] = [
        (_clean(row.label), _clean(row.text), kinds.get(row.key, ""))
        for row in ctx.view.totals_rows
    ]

    look, font, bold, accent = ctx.look, ctx.font, ctx.bold, ctx.accent
    text, pad_x, pad_y = look.text_size, look.pad_x, look.pad_y
    value_w = max(
        _col_width([r[1] for r in rows], bold, look.due_size, 20 * mm, ctx.cjk, pad_x), 32 * mm
    )
    large_due = look.due_size > 2 * text  # measured in its own size (the rest fits anyway)
    label_w = max(
        _col_width([r[0] for r in rows], font, text, 30 * mm, ctx.cjk, pad_x),
        _col_width([rows[-1][0]], bold, look.due_size, 0, ctx.cjk, pad_x) if large_due else 0,
        50 * mm,
    )
    label_w = min(label_w, ctx.width * 0.62 - value_w)
    data: list[list[Any]] = []
    for label, value, kind in rows:
        size = look.due_size if kind == "due" and large_due else text
        # text set as a paragraph looks like the plain text of its row (the commands below)
        strong = kind in ("total", "due")
        look_of = {
            "bold": strong,
            "color": {"due": ctx.st.on_accent if look.filled else accent, "muted": MUTED}.get(
                kind, INK
            ),
            "size": {"total": look.total_size, "due": look.due_size, "muted": text - 1}.get(
                kind, text
            ),
        }
        data.append(
            [
                ctx.cell(label, label_w - 2 * pad_x, _row_style(ctx, **look_of), font, size),
                ctx.cell(
                    value,
                    value_w - 2 * pad_x,
                    _row_style(ctx, right=True, **look_of),
                    bold,
                    size + 0.5,
                ),
            ]
        )
    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (0, -1), font, text),
        ("FONT", (1, 0), (1, -1), font, text),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), pad_x),
        ("RIGHTPADDING", (0, 0), (-1, -1), pad_x),
        ("TOPPADDING", (0, 0), (-1, -1), pad_y * 0.75),
        ("BOTTOMPADDING", (0, 0), (-1, -1), pad_y * 0.75),
    ]
    for r, (_label, _value, kind) in enumerate(rows):
        if kind == "muted":
            cmds += [
                ("FONT", (0, r), (-1, r), font, text - 1),
                ("TEXTCOLOR", (0, r), (-1, r), MUTED),
            ]
        elif kind == "total":
            cmds += [
                ("FONT", (0, r), (-1, r), bold, look.total_size),
                ("LINEABOVE", (0, r), (-1, r), 1, accent),
                ("TOPPADDING", (0, r), (-1, r), pad_y * 1.25),
            ]
        elif kind == "due" and look.filled:
            cmds += [
                ("FONT", (0, r), (-1, r), bold, look.due_size),
                ("BACKGROUND", (0, r), (-1, r), accent),
                ("TEXTCOLOR", (0, r), (-1, r), ctx.st.on_accent),
                ("TOPPADDING", (0, r), (-1, r), pad_y * 1.5),
                ("BOTTOMPADDING", (0, r), (-1, r), pad_y * 1.5),
            ]
        elif kind == "due":  # large accent text over an accent rule
            cmds += [
                ("FONT", (0, r), (-1, r), bold, look.due_size, look.due_size * 1.2),
                ("TEXTCOLOR", (0, r), (-1, r), accent),
                ("LINEABOVE", (0, r), (-1, r), 1.5, accent),
                ("TOPPADDING", (0, r), (-1, r), pad_y * 1.5),
                ("BOTTOMPADDING", (0, r), (-1, r), pad_y * 1.5),
            ]
    return _table(ctx, data, colWidths=[label_w, value_w], hAlign="RIGHT", style=TableStyle(cmds))


_PAYMENT_LABEL_W = 27 * mm
_PAYMENT_PAD = 7.0


def _payment_pad(ctx: _Ctx) -> float:
    """The payment panel's side padding: none when the panels are open (aligned like the
    party panels' text)."""
    return _PAYMENT_PAD if ctx.look.boxed else ctx.look.panel_pads[0]


def _payment(
    ctx: _Ctx, p: PaymentDetails, width: float, qr: Flowable | None = None
) -> Table | None:
    """The payment details panel; with ``qr`` (the GiroCode) in a column on its right."""
    fields = ctx.view.payment_fields
    if not fields:
        return None
    label_w = _PAYMENT_LABEL_W
    data: list[list[Any]] = [[ctx.para(ctx.caps(ctx.view.payment_heading), ctx.st.panel_head), ""]]
    data += [
        [ctx.label(label, label_w - 2 * _PAYMENT_PAD), ctx.para(value, ctx.st.body)]
        for label, value in fields
    ]
    widths = [label_w, width - label_w]
    cmds: list[tuple[Any, ...]] = [
        ("SPAN", (0, 0), (-1, 0)),
        *(
            [
                ("BACKGROUND", (0, 0), (-1, 0), ctx.st.panel_fill),
                ("BOX", (0, 0), (-1, -1), 0.75, RULE),
            ]
            if ctx.look.boxed
            else [("LINEBELOW", (0, 0), (-1, 0), 0.75, ctx.accent)]
        ),
        ("FONT", (0, 1), (0, -1), ctx.font, ctx.look.text_size - 0.5),
        ("TEXTCOLOR", (0, 1), (0, -1), MUTED),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _payment_pad(ctx)),
        ("RIGHTPADDING", (0, 0), (-1, -1), _payment_pad(ctx)),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, 0), 4),
        ("BOTTOMPADDING", (0, 0), (-1, 0), 3),
        ("TOPPADDING", (0, 1), (-1, 1), 5),
        ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
    ]
    if qr is not None:
        qr_w = qr.wrap(width, ctx.height)[0] + 2 * _payment_pad(ctx)
        widths = [label_w, width - label_w - qr_w, qr_w]
        for row in data:
            row.append("")
        data[1][2] = qr
        cmds += [("SPAN", (2, 1), (2, -1)), ("ALIGN", (2, 1), (2, -1), "CENTER")]
    return _table(
        ctx,
        data,
        colWidths=widths,
        hAlign="LEFT",
        style=TableStyle(cmds),
    )


def _closing(ctx: _Ctx) -> list[Flowable]:
    """Totals (beside the payment details when those are short), then notes and terms. The
    payment details carry the GiroCode (EPC069-12) when the invoice gets one
    (:func:`.payqr.girocode_payload`)."""
    st, inv = ctx.st, ctx.inv
    out: list[Flowable] = [Spacer(1, ctx.look.gap * 5 / 7)]
    totals = _totals(ctx)
    tw, _ = totals.wrap(ctx.width, ctx.height)
    gap = 8 * mm if ctx.look.gap > 5 * mm else 5 * mm
    side_w = ctx.width - tw - gap
    giro = payqr.girocode_payload(inv, ctx.totals)
    # the payment details go beside the totals if every value fits on one line there; the
    # GiroCode goes below them there (its caption on its right), else into a column of the
    # full-width panel
    value_room = side_w - _PAYMENT_LABEL_W - 2 * _payment_pad(ctx)
    side = (
        _payment(ctx, inv.payment, side_w)
        if inv.payment is not None
        and all(
            "\n" not in v
            and _text_width(_clean(v), ctx.font, ctx.look.text_size, ctx.cjk) <= value_room
            for _, v in ctx.view.payment_fields
        )
        else None
    )
    if side is not None:
        left: list[Flowable] = [side]
        if giro is not None:
            left.append(_girocode(ctx, giro, side_w))
        out.append(
            _table(
                ctx,
                [[left, "", totals]],
                colWidths=[side_w, gap, tw],
                style=TableStyle(
                    [
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("LEFTPADDING", (0, 0), (-1, -1), 0),
                        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                        ("TOPPADDING", (0, 0), (-1, -1), 0),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
                    ]
                ),
            )
        )
    else:
        out.append(KeepTogether([totals]))
        qr = _girocode(ctx, giro) if giro is not None else None
        full = _payment(ctx, inv.payment, ctx.width, qr) if inv.payment is not None else None
        if full is not None:
            out += [Spacer(1, ctx.look.gap * 5 / 7), KeepTogether([full])]
    exemptions = ctx.view.exemption_lines
    if exemptions:
        out += [Spacer(1, 3 * mm), ctx.lines_para(exemptions, st.small)]
    for head, text in ((ctx.view.notes_heading, inv.notes), (ctx.view.terms_heading, inv.terms)):
        if text:
            out += [ctx.para(ctx.caps(head), st.section_head), ctx.para(text, st.small)]
    return out


def _girocode(ctx: _Ctx, payload: str, width: float = 0.0) -> Flowable:
    """The GiroCode with its caption in the document's language: below it, or on its right
    given a ``width`` wider than the code. payqr draws the caption itself when its one font
    can, left to right; any other caption (CJK, Arabic, Hebrew...) is a paragraph beside the
    bare code, laid out like all the document's text."""
    caption = _clean(ctx.view.girocode_caption)
    if ctx.view.direction != "rtl" and _plain(caption, ctx.font, ctx.cjk):
        return payqr.GiroCode(payload, ctx.font, caption, caption_color=MUTED, width=width)
    code = payqr.GiroCode(payload, ctx.font, None)
    size = payqr.GiroCode.CAPTION_SIZE
    beside = width - code.width >= 15 * mm
    style = ParagraphStyle(
        "if-giro-caption",
        parent=ctx.st.small,
        fontSize=size,
        leading=size + 2,
        alignment=TA_LEFT if beside else TA_CENTER,
    )
    text = ctx.para(caption, style)
    rows = [[code, text]] if beside else [[code], [text]]
    widths = [code.width, width - code.width] if beside else [code.width]
    return _table(
        ctx,
        rows,
        colWidths=widths,
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ]
        ),
    )


def _qr_bill(ctx: _Ctx) -> list[Flowable]:
    """The Swiss QR-bill (payment part with receipt) at the bottom of the last page, or of a
    page of its own when the last one is too full (:func:`.payqr.swiss_bill` says when)."""
    bill = payqr.swiss_bill(ctx.inv, ctx.totals)
    if bill is None:
        return []
    # the footer moves up above the bill (see _NumberedCanvas), and so does the frame's floor
    reserve = payqr.BILL_HEIGHT + _BILL_FOOTER_Y - _FOOTER_Y
    return [payqr.SwissQRBill(bill, reserve=reserve)]


# --------------------------------------------------------------------------------------------
# the document
# --------------------------------------------------------------------------------------------


def render_pdf(invoice: Invoice) -> bytes:
    """The invoice as PDF bytes; the same document always gives the same bytes.

    Raises :class:`~invoiceflow.errors.RenderError` when the document cannot be rendered (a
    logo that is not a decodable PNG/JPEG, an unknown locale, content that cannot be laid out).
    """
    ctx = _Ctx(invoice)
    inv = invoice
    story: list[Flowable] = [
        _header(ctx),
        Spacer(1, ctx.look.gap),
        _party_panels(ctx),
        Spacer(1, ctx.look.gap),
        _items(ctx),
        *_closing(ctx),
        *_qr_bill(ctx),
    ]
    seller = _clean(inv.seller.name)
    view = ctx.view
    name = view.name  # Invoice, Credit note, Corrected invoice (in the document's language)
    buf = io.BytesIO()
    doc = BaseDocTemplate(
        buf,
        pagesize=ctx.pagesize,
        leftMargin=ctx.margin_x,
        rightMargin=ctx.margin_x,
        topMargin=ctx.margin_top,
        bottomMargin=ctx.margin_bottom,
        title=_clean(f"{name} {inv.number}"),
        author=seller,
        subject=_clean(view.subject),
        creator="invoiceflow",
        keywords=[name.lower(), _clean(inv.number)],
        invariant=1,
        lang=inv.locale,
        displayDocTitle=1,
        initialFontName=ctx.font,
    )
    frame = Frame(
        ctx.margin_x,
        ctx.margin_bottom,
        ctx.width,
        ctx.height,
        id="body",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    doc.addPageTemplates(
        [
            PageTemplate("first", [frame], autoNextPageTemplate="later"),
            PageTemplate("later", [frame], onPage=_running_header(ctx)),
        ]
    )
    footer = view.footer
    created = f"D:{inv.issue_date:%Y%m%d}000000+00'00'"
    canvasmaker = partial(
        _NumberedCanvas,
        footer=footer,
        page_label=view.page_label,
        cjk=ctx.cjk,
        created=created,
        doc_id=_doc_id(inv),
        brand_footer=(inv.branding.footer if inv.branding else None) or "",
        font=ctx.font,
        margin_x=ctx.margin_x,
    )
    try:
        doc.build(story, canvasmaker=canvasmaker)
    except LayoutError as exc:
        # ReportLab's message names its objects (and their addresses): the log has it
        log.info("the invoice cannot be laid out: %s", exc)
        raise RenderError(
            "the invoice cannot be laid out on pages: one of its blocks (a line's description, "
            "a note, the payment terms...) is taller than a page"
        ) from exc
    data = buf.getvalue()
    check_pdf(data)
    return data


_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")


def check_pdf(data: bytes) -> None:
    """The renderer's cheap check of its own output: a PDF header, a trailer whose
    ``startxref`` points at the cross-reference table, and the end-of-file marker. A file
    that fails is a RenderError (the invoice is ``failed``, never ``ready``)."""
    match = _STARTXREF.search(data[-64:])
    if not data.startswith(b"%PDF-1.") or match is None:
        raise RenderError("the PDF is not valid: its header or trailer is missing")
    offset = int(match.group(1))
    if data[offset : offset + 4] != b"xref" or b"trailer" not in data[offset:]:
        raise RenderError(
            "the PDF is not valid: its cross-reference table is not where the trailer says"
        )
