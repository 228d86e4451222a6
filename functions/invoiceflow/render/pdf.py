"""The invoice as a PDF: :func:`render_pdf` (ReportLab platypus). The only module importing
ReportLab, with :mod:`.payqr` (the payment QR codes it draws).

Layout: a company header (optional logo, seller name and details) beside the title and the
invoice meta block (number, dates, payment terms, currency); Bill To and Ship To in boxed panels
side by side; the items table (navy header row in white bold, alternating row colours,
right-aligned numbers, long descriptions wrapped, the header row repeated on every page); the
totals exactly as :func:`invoiceflow.domain.totals.compute_totals` computed them (this module
never adds up money); payment details, notes and terms; a running header on later pages and
"Page N of M" in the footer of every page (a numbering canvas: one layout pass).

Payment QR codes (:mod:`.payqr`), only for a credit transfer: an EPC069-12 "GiroCode" beside
the payment details (EUR with an IBAN and a balance due), or a Swiss QR-bill (payment part
with receipt, 210 x 105 mm) at the bottom of the last page, or of a page of its own when the
last one is too full; the footer of that page stands above the bill. A direct debit (payment
means 49/59) gets no QR code: its IBAN is printed as the debited account, with a line saying
the amount will be collected.

Text and scripts
    Every font in the PDF is embedded (a TrueType subset from ``render/fonts/``, each with its
    licence there), so nothing is needed from the OS or the viewer and the PDF can be made a
    PDF/A (:mod:`invoiceflow.render.facturx`). Latin, Greek and Cyrillic are set in DejaVu Sans
    (+ Bold); table cells without a font of their own default to it too (never to ReportLab's
    non-embedded Helvetica). Each run of Chinese, Japanese or Korean characters switches to
    Droid Sans Fallback (Apache-2.0), which is loaded only by the first text that needs it (its
    3.4 MB are parsed once per process; the PDF carries only the glyphs used). Han characters
    that the languages share take its Chinese forms, in Japanese text too; it has no bold face
    (bold CJK runs print regular). A character that the font of its run lacks (Thai,
    Devanagari, most emoji, CJK beyond Droid's 33,000 characters) prints as U+FFFD, never as
    the font's .notdef glyph (which PDF/A forbids). Characters beyond U+FFFF that a font has
    (e.g. DejaVu's emoji) are extractable: ReportLab's ToUnicode CMap is patched to write them
    as UTF-16 surrogate pairs. Right-to-left scripts (Arabic, Hebrew) are **out of scope**:
    their letters are printed unshaped and left to right, and bidi control marks (which Babel
    puts into e.g. ``ar-KW`` amounts) are dropped. Labels are English; numbers, amounts and
    dates follow the invoice's locale (:mod:`invoiceflow.render.localize`).

Safety
    Every user string reaches Paragraph markup only through :func:`_markup`, which escapes it
    with :func:`xml.sax.saxutils.escape` (in :func:`_esc`, the one escaping helper): ``<img>``,
    ``<a href>``, ``<font color=...>`` (CVE-2023-33733), ``<link>`` and ``&`` entities print as
    literal text, so rendering opens no file and no network connection. Table cells that need
    no wrapping are plain strings, which ReportLab draws verbatim (no markup at all). Control
    characters and lone surrogates are removed first. The logo is decoded only as PNG or JPEG,
    up to :data:`MAX_LOGO_PIXELS`; anything else is a :class:`~invoiceflow.errors.RenderError`.
    A logo that is not RGB or grey (a CMYK JPEG, a palette or 16-bit PNG) is converted to RGB
    or grey first (:func:`_logo_colours`), so the PDF paints only DeviceRGB and DeviceGray, as
    PDF/A under the sRGB output intent requires.

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
    plain strings (only long or CJK descriptions become Paragraphs, each wrapped once), and the
    items table is paginated by :class:`_ItemRows` in linear time: one small ``Table`` (header
    row + the rows that fit, ``repeatRows=1``) per page instead of letting one big ``Table``
    re-split itself page after page, which is quadratic in the number of rows.

A4 pages, or US Letter where the locale's territory uses it (:func:`.localize.paper_size`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any, TypedDict
from xml.sax.saxutils import escape as _xml_escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.pdfdoc import DummyDoc, PDFText
from reportlab.pdfbase.ttfonts import TTFont
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

from invoiceflow.domain.model import Invoice, Logo, PaymentDetails, to_json
from invoiceflow.domain.totals import Totals, compute_totals
from invoiceflow.errors import RenderError
from invoiceflow.render import payqr
from invoiceflow.render.i18n import upper
from invoiceflow.render.view import DocumentView, PartyBlock, build_view

__all__ = ["MAX_LOGO_PIXELS", "check_pdf", "render_pdf"]

FONTS_DIR = Path(__file__).with_name("fonts")
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"

#: a logo larger than this (width x height) is refused rather than decoded
MAX_LOGO_PIXELS = 25_000_000

NAVY = colors.HexColor("#1F3A5F")
INK = colors.HexColor("#1E2329")
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


# --------------------------------------------------------------------------------------------
# text: cleaning, the one escaping helper, CJK font runs
# --------------------------------------------------------------------------------------------

# C0/C1 controls (but \n), bidi marks and embeddings (RTL is out of scope), BOM; tab -> space;
# fullwidth currency signs (ja-JP prints "￥") -> the ordinary signs DejaVu Sans has.
_TRANSLATE: dict[int, str | None] = {
    **dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), *range(0x7F, 0xA0)]),
    **dict.fromkeys(
        [0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
    ),
    9: " ",
    0xFFE0: "\u00a2",
    0xFFE1: "\u00a3",
    0xFFE4: "\u00a6",
    0xFFE5: "\u00a5",
    0xFFE6: "\u20a9",
}
_SURROGATE = re.compile("[\ud800-\udfff]")

_CJK_CHARS = (
    "\u1100-\u11ff\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u33ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f"
    "\uff00-\uffef\U00020000-\U0003ffff"
)
_CJK_RUN = re.compile(f"([{_CJK_CHARS}]+)")
_HAS_CJK = re.compile(f"[{_CJK_CHARS}]")

#: the font of CJK runs (TrueType, embedded), registered when first needed
CJK_FONT = "DroidSansFallback"
_LAZY_FONTS = {CJK_FONT: "DroidSansFallback.ttf"}


def _clean(text: object) -> str:
    """Text as it may be printed: no control characters, bidi marks or lone surrogates, and
    no character that its font cannot draw (see :func:`_drawable`)."""
    s = str(text)
    if s.isascii() and s.isprintable():
        return s
    s = s.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATE)
    return _drawable(_SURROGATE.sub("\ufffd", s))


def _drawable(s: str) -> str:
    """``s`` with every character that the font of its run lacks replaced by U+FFFD (which
    DejaVu Sans has): a missing glyph would print the font's .notdef glyph, which PDF/A
    forbids. CJK runs are set in the CJK font, the rest in DejaVu Sans or Bold."""
    latin = _latin_glyphs()
    if all(c in latin or c == "\n" for c in s):
        return s
    cjk = _cjk_glyphs() if _HAS_CJK.search(s) else frozenset()
    return "".join(
        c if c == "\n" or (c in cjk if _HAS_CJK.match(c) else c in latin) else "\ufffd" for c in s
    )


@cache
def _latin_glyphs() -> frozenset[str]:
    """The characters both DejaVu Sans and DejaVu Sans Bold can draw."""
    _register_fonts()
    regular, bold = (_font_chars(name) for name in (FONT, FONT_BOLD))
    return regular & bold


@cache
def _cjk_glyphs() -> frozenset[str]:
    """The characters the CJK font can draw (loads it)."""
    return _font_chars(_lazy_font(CJK_FONT))


def _font_chars(name: str) -> frozenset[str]:
    face: Any = pdfmetrics.getFont(name).face
    return frozenset(chr(code) for code in face.charToGlyph)


def _esc(text: str) -> str:
    """THE escaping helper: the only way user text gets into ReportLab Paragraph markup."""
    return _xml_escape(text)


@cache
def _lazy_font(name: str) -> str:
    """Register a font of :data:`_LAZY_FONTS` on first use (once per process)."""
    pdfmetrics.registerFont(TTFont(name, str(FONTS_DIR / _LAZY_FONTS[name])))
    return name


def _cjk_font_for(run: str, cjk: str) -> str:
    """The (registered) font for a run of CJK characters: ``cjk``, the context's CJK font."""
    return _lazy_font(cjk)


def _markup(text: object, cjk: str = CJK_FONT) -> str:
    """Paragraph markup that prints ``text`` literally (escaped, CJK runs in the CJK font,
    newlines as line breaks)."""
    s = _clean(text)
    if not _HAS_CJK.search(s):
        return _esc(s).replace("\n", "<br/>")
    out = []
    for i, part in enumerate(_CJK_RUN.split(s)):
        if not part:
            continue
        if i % 2:
            out.append(f'<font name="{_cjk_font_for(part, cjk)}">{_esc(part)}</font>')
        else:
            out.append(_esc(part))
    return "".join(out).replace("\n", "<br/>")


def _text_width(text: str, font: str, size: float, cjk: str) -> float:
    if not _HAS_CJK.search(text):
        return float(pdfmetrics.stringWidth(text, font, size))
    total = 0.0
    for i, part in enumerate(_CJK_RUN.split(text)):
        f = _cjk_font_for(part, cjk) if i % 2 else font
        total += pdfmetrics.stringWidth(part, f, size)
    return total


def _draw_text(
    canv: Canvas,
    x: float,
    y: float,
    text: str,
    font: str,
    size: float,
    cjk: str,
    align: str = "left",
    max_width: float = 0.0,
) -> None:
    """Draw one line of plain text on the canvas (no markup), switching fonts for CJK runs;
    cut with an ellipsis at ``max_width`` if given."""
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
    for i, part in enumerate(_CJK_RUN.split(s)):
        if not part:
            continue
        f = _cjk_font_for(part, cjk) if i % 2 else font
        canv.setFont(f, size)
        canv.drawString(x, y, part)
        x += pdfmetrics.stringWidth(part, f, size)


# --------------------------------------------------------------------------------------------
# fonts and styles (once per process)
# --------------------------------------------------------------------------------------------


@cache
def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.platypus.tables import CellStyle

    pdfmetrics.registerFont(TTFont(FONT, str(FONTS_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONTS_DIR / "DejaVuSans-Bold.ttf")))
    # no italic face: italic maps to upright (registered first so the upright mapping wins)
    for bold, italic, name in ((0, 1, FONT), (1, 1, FONT_BOLD), (0, 0, FONT), (1, 0, FONT_BOLD)):
        addMapping(FONT, bold, italic, name)
    # A table cell without a FONT command is drawn in CellStyle's class default, ReportLab's
    # Helvetica, which is never embedded: default to the embedded DejaVu Sans instead
    # (process-wide, like useA85 above; this module is the only ReportLab user).
    CellStyle.fontname = FONT


_RL_TO_UNICODE = ttfonts.makeToUnicodeCMap
_ASTRAL_ENTRY = re.compile(r"^(<[0-9A-F]{2}>) <([0-9A-F]{5,6})>$", re.MULTILINE)


def _to_unicode_cmap(fontname: str, subset: Sequence[int]) -> str:
    """ReportLab's ToUnicode CMap of a font subset, with characters beyond U+FFFF written as
    UTF-16 surrogate pairs: ReportLab writes them as odd-length hex strings (``<1F600>``),
    which is not valid CMap syntax, so readers could not extract them."""

    def utf16(m: re.Match[str]) -> str:
        return f"{m[1]} <{chr(int(m[2], 16)).encode('utf-16-be').hex().upper()}>"

    return _ASTRAL_ENTRY.sub(utf16, _RL_TO_UNICODE(fontname, subset))


ttfonts.makeToUnicodeCMap = _to_unicode_cmap  # process-wide, like useA85 (see there)


@dataclass(frozen=True)
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


@cache
def _styles() -> _Styles:
    _register_fonts()

    def ps(name: str, **kw: Any) -> ParagraphStyle:
        if "parent" in kw:
            return ParagraphStyle(name, **kw)
        base = {
            "fontName": FONT,
            "fontSize": 9,
            "leading": 12,
            "textColor": INK,
            "splitLongWords": 1,
        }
        base.update(kw)
        return ParagraphStyle(name, **base)

    cell = ps("if-cell", fontSize=_BODY_SIZE, leading=_BODY_LEADING)
    return _Styles(
        body=ps("if-body"),
        body_right=ps("if-body-right", alignment=TA_RIGHT),
        cell=cell,
        cell_right=ps("if-cell-right", parent=cell, alignment=TA_RIGHT),
        small=ps("if-small", fontSize=8, leading=10.5, textColor=MUTED),
        small_right=ps(
            "if-small-right", fontSize=8, leading=10.5, textColor=MUTED, alignment=TA_RIGHT
        ),
        company=ps(
            "if-company", fontName=FONT_BOLD, fontSize=16, leading=19, textColor=NAVY, spaceAfter=3
        ),
        party_name=ps("if-party-name", fontName=FONT_BOLD, fontSize=9.5, leading=12.5),
        title=ps(
            "if-title",
            fontName=FONT_BOLD,
            fontSize=24,
            leading=28,
            textColor=NAVY,
            alignment=TA_RIGHT,
            spaceAfter=6,
        ),
        panel_head=ps("if-panel-head", fontName=FONT_BOLD, fontSize=7.5, leading=9, textColor=NAVY),
        section_head=ps(
            "if-section-head",
            fontName=FONT_BOLD,
            fontSize=8,
            leading=10,
            textColor=NAVY,
            spaceBefore=10,
            spaceAfter=3,
            keepWithNext=1,
        ),
        meta_value=ps(
            "if-meta-value", fontName=FONT_BOLD, fontSize=9, leading=11.5, alignment=TA_RIGHT
        ),
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


# --------------------------------------------------------------------------------------------
# per-render context
# --------------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, invoice: Invoice) -> None:
        self.inv = invoice
        self.st = _styles()
        self.cjk = CJK_FONT  # the font of CJK runs, registered when a run needs it
        self.totals: Totals = compute_totals(invoice)
        #: every word and figure printed (render.view)
        self.view: DocumentView = build_view(invoice, self.totals)
        self.pagesize = _PAGE_SIZES[self.view.paper]
        self.margin_x = 18 * mm
        self.margin_top = 16 * mm
        self.margin_bottom = 20 * mm
        self.width = self.pagesize[0] - 2 * self.margin_x
        self.height = self.pagesize[1] - self.margin_top - self.margin_bottom

    # text --------------------------------------------------------------------------------
    def para(self, text: object, style: ParagraphStyle) -> Paragraph:
        return _Para(_markup(text, self.cjk), style)

    def lines_para(self, lines: Sequence[str], style: ParagraphStyle) -> Paragraph:
        return _Para("<br/>".join(_markup(line, self.cjk) for line in lines), style)

    def cell(
        self,
        text: object,
        inner_width: float,
        style: ParagraphStyle,
        font: str = FONT,
        size: float = _BODY_SIZE,
    ) -> str | Paragraph:
        """A plain string if it fits on one line in the table's font, else a Paragraph."""
        s = _clean(text)
        if (
            "\n" not in s
            and not _HAS_CJK.search(s)
            and pdfmetrics.stringWidth(s, font, size) <= inner_width
        ):
            return s
        return _Para(_markup(s, self.cjk), style)

    def label(self, text: str, inner_width: float) -> str | Paragraph:
        """A label cell: the plain string (drawn in the table's font), or, when it needs the
        CJK font or does not fit, a Paragraph in the small muted style."""
        s = _clean(text)
        if not _HAS_CJK.search(s) and pdfmetrics.stringWidth(s, FONT, 8.5) <= inner_width:
            return s
        return _Para(_markup(s, self.cjk), self.st.small)

    def heading(self, text: str, inner_width: float) -> str | Paragraph:
        """A column heading of the items table: the plain string, or a Paragraph in bold white
        when it needs the CJK font or does not fit (long labels wrap)."""
        s = _clean(text)
        if (
            not _HAS_CJK.search(s)
            and pdfmetrics.stringWidth(s, FONT_BOLD, _BODY_SIZE) <= inner_width
        ):
            return s
        return _Para(_markup(s, self.cjk), _heading_style())

    def caps(self, text: str) -> str:
        """A heading in capitals, as the document's language writes them."""
        return upper(text, self.view.language)


@cache
def _heading_style() -> ParagraphStyle:
    """The items table's heading row as a paragraph (bold white, like its plain cells)."""
    return ParagraphStyle("if-heading", parent=_styles().cell, fontName=FONT_BOLD, textColor=WHITE)


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


def _logo(logo: Logo, max_w: float, max_h: float) -> _LogoFlowable:
    """Decode the logo (PNG or JPEG only) and scale it to fit ``max_w`` x ``max_h``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(logo.data), formats=("PNG", "JPEG")) as im:
            w, h = im.size
            if w < 1 or h < 1 or w * h > MAX_LOGO_PIXELS:
                raise RenderError(
                    f"the logo is {w}x{h} pixels; at most "
                    f"{MAX_LOGO_PIXELS:,} pixels can be rendered"
                )
            im.load()  # a truncated or corrupt image fails here, not halfway through the PDF
            converted = _logo_colours(im)
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
        raise RenderError(f"the logo image is damaged and cannot be decoded: {exc}") from exc
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
        cjk: str = CJK_FONT,
        created: str = "",
        doc_id: bytes = b"",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        #: set by payqr.SwissQRBill on the page it draws on (kept per page like the rest)
        self.payqr_bill_top = 0.0
        self._footer = footer
        self._page_label = page_label
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
        x0, x1, y = 18 * mm, w - 18 * mm, _FOOTER_Y
        if self.payqr_bill_top:  # the page of a Swiss QR-bill: the footer stands above it
            y = self.payqr_bill_top + _BILL_FOOTER_Y
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(x0, y + 9, x1, y + 9)
        self.setFillColor(MUTED)
        _draw_text(self, x0, y, self._footer, FONT, 7.5, self._cjk, max_width=x1 - x0 - 80)
        page = self._page_label(self._pageNumber, total)
        _draw_text(self, x1, y, page, FONT, 7.5, self._cjk, align="right")
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
        canv.setFillColor(NAVY)
        _draw_text(canv, ctx.margin_x, y, left, FONT_BOLD, 8.5, ctx.cjk, max_width=ctx.width * 0.55)
        canv.setFillColor(MUTED)
        _draw_text(
            canv,
            w - ctx.margin_x,
            y,
            right,
            FONT,
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
        left.append(_logo(inv.logo, min(60 * mm, left_w - 6), 20 * mm))
        left.append(Spacer(1, 4 * mm))
    left.append(ctx.para(ctx.view.seller.title, st.company))
    details = ctx.view.seller.lines
    if details:
        left.append(ctx.lines_para(details, st.small))

    meta = ctx.view.meta
    label_w = 30 * mm
    meta_rows = [
        [ctx.label(label, label_w), ctx.para(value, st.meta_value)] for label, value in meta
    ]
    meta_table = Table(
        meta_rows,
        colWidths=[label_w, right_w - label_w],
        hAlign="RIGHT",
        splitInRow=1,
        style=TableStyle(
            [
                ("FONT", (0, 0), (0, -1), FONT, 8.5),
                ("TEXTCOLOR", (0, 0), (0, -1), MUTED),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        ),
    )
    right: list[Flowable] = [ctx.para(ctx.view.title, st.title), meta_table]
    return Table(
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
    cmds: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 7),
        ("RIGHTPADDING", (0, 0), (-1, -1), 7),
        ("TOPPADDING", (0, 0), (-1, 0), 4),
        ("BOTTOMPADDING", (0, 0), (-1, 0), 3),
        ("TOPPADDING", (0, 1), (-1, 1), 6),
        ("BOTTOMPADDING", (0, 1), (-1, 1), 7),
        ("BACKGROUND", (0, 0), (0, 0), PANEL_HEAD),
        ("BOX", (0, 0), (0, 1), 0.75, RULE),
    ]
    if view.ship_to is not None:
        heads[2] = ctx.para(ctx.caps(view.ship_to.heading), st.panel_head)
        bodies[2] = content(view.ship_to)
        cmds += [("BACKGROUND", (2, 0), (2, 0), PANEL_HEAD), ("BOX", (2, 0), (2, 1), 0.75, RULE)]
    return Table(
        [heads, bodies], colWidths=[panel_w, gap, panel_w], splitInRow=1, style=TableStyle(cmds)
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
    ) -> None:
        super().__init__()
        self.header, self.header_h = header, header_h
        self.rows, self.heights, self.shaded = rows, heights, shaded
        self.col_widths = col_widths
        self.style, self.start = style, start
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
                ("BACKGROUND", (0, r), (-1, r), ROW_ALT)
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
            ),
        ]

    def draw(self) -> None:
        t = self._table(self.start, len(self.heights))
        t.wrapOn(self.canv, self.width, self.height)
        t.drawOn(self.canv, 0, 0)


def _col_width(
    strings: Sequence[str], font: str, size: float, floor: float, cjk: str = CJK_FONT
) -> float:
    """Width of a column of one-line strings: measure only the few longest ones."""
    longest = sorted(set(strings), key=len)[-6:]
    widest = max((_text_width(s, font, size, cjk) for s in longest), default=0.0)
    return max(widest, floor) + 2 * _PAD_X + 1


def _items(ctx: _Ctx) -> Flowable:
    st, inv, view = ctx.st, ctx.inv, ctx.view
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
        floor = _text_width(head, FONT_BOLD, _BODY_SIZE, ctx.cjk)
        if key == "sku":
            skus = [_clean(it.sku or "") for it in items]
            fixed[key] = min(_col_width(skus, FONT, _BODY_SIZE, floor, ctx.cjk), 26 * mm)
        elif key == "qty":
            fixed[key] = min(_col_width(qty, FONT, _BODY_SIZE, floor, ctx.cjk), 28 * mm)
        elif key in numeric:
            fixed[key] = _col_width(numeric[key], FONT, _BODY_SIZE, floor, ctx.cjk)
    keys = [key for key, _ in cols]
    desc_w = max(ctx.width - sum(fixed.values()), 45 * mm)
    widths = [fixed.get(k, desc_w) for k in keys]
    scale = min(1.0, ctx.width / sum(widths))  # < 1 only with absurdly long amounts
    widths = [w * scale for w in widths]
    inner = {k: w - 2 * _PAD_X for k, w in zip(keys, widths, strict=True)}
    col_inner = [inner[k] for k in keys]

    header = [ctx.heading(head, w - 2 * _PAD_X) for (_, head), w in zip(cols, widths, strict=True)]
    rows: list[list[Any]] = []
    heights: list[float] = []
    shaded: list[bool] = []
    max_inner_h = _MAX_ROW_H - 2 * _PAD_Y
    for i, it in enumerate(items):
        row: list[Any] = []
        for k in keys:
            if k == "desc":
                cell = ctx.cell(it.description, inner[k], st.cell)
            elif k == "sku":
                cell = ctx.cell(it.sku or "", inner[k], st.cell)
            else:
                text = numeric[k][i]
                # numbers fit by construction of the column widths (unless scaled down)
                cell = (
                    text
                    if scale == 1.0 and k != "qty" and not _HAS_CJK.search(text)
                    else ctx.cell(text, inner[k], st.cell_right)
                )
            row.append(cell)
        h = _ROW_H
        more: dict[int, list[Any]] = {}  # column -> the pieces of a too-tall cell
        for c, cell in enumerate(row):
            if isinstance(cell, Paragraph):
                ph = cell.wrap(col_inner[c], 1e9)[1]
                if ph > max_inner_h:
                    pieces = _cut(cell, col_inner[c], max_inner_h)
                    row[c], more[c] = pieces[0], pieces[1:]
                    ph = pieces[0].wrap(col_inner[c], 1e9)[1]
                h = max(h, ph + 2 * _PAD_Y)
        rows.append(row)
        heights.append(h)
        shaded.append(i % 2 == 1)
        for n in range(max((len(p) for p in more.values()), default=0)):
            cont: list[Any] = [""] * len(keys)  # continuation rows of very long cells
            h = _ROW_H
            for c, pieces in more.items():
                if n < len(pieces):
                    cont[c] = pieces[n]
                    h = max(h, pieces[n].wrap(col_inner[c], 1e9)[1] + 2 * _PAD_Y)
            rows.append(cont)
            heights.append(h)
            shaded.append(i % 2 == 1)

    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, 0), FONT_BOLD, _BODY_SIZE, _BODY_LEADING),
        ("FONT", (0, 1), (-1, -1), FONT, _BODY_SIZE, _BODY_LEADING),
        ("TEXTCOLOR", (0, 0), (-1, 0), WHITE),
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        ("BACKGROUND", (0, 0), (-1, 0), NAVY),
        ("VALIGN", (0, 0), (-1, 0), "MIDDLE"),
        ("VALIGN", (0, 1), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAD_X),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAD_X),
        ("TOPPADDING", (0, 0), (-1, -1), _PAD_Y),
        ("BOTTOMPADDING", (0, 0), (-1, -1), _PAD_Y),
        ("LINEBELOW", (0, -1), (-1, -1), 0.75, NAVY),
        ("TEXTCOLOR", (0, 1), (0, -1), MUTED),
    ]
    for c, k in enumerate(keys):
        if k in numeric:
            cmds.append(("ALIGN", (c, 0), (c, -1), "RIGHT"))
    header_h = _BODY_LEADING + 2 * _PAD_Y + 3
    return _ItemRows(header, header_h, rows, heights, shaded, widths, TableStyle(cmds))


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

    value_w = max(_col_width([r[1] for r in rows], FONT_BOLD, 10.5, 20 * mm, ctx.cjk), 32 * mm)
    label_w = max(_col_width([r[0] for r in rows], FONT, 9, 30 * mm, ctx.cjk), 50 * mm)
    label_w = min(label_w, ctx.width * 0.62 - value_w)
    data: list[list[Any]] = []
    for label, value, kind in rows:
        # a label set as a paragraph (CJK, or too long) on the last row's dark background
        # is white, like the plain text there
        style = _heading_style() if kind == "due" else ctx.st.body
        data.append(
            [
                ctx.cell(label, label_w - 2 * _PAD_X, style, FONT, 9),
                ctx.cell(value, value_w - 2 * _PAD_X, ctx.st.body_right, FONT_BOLD, 9.5),
            ]
        )
    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (0, -1), FONT, 9),
        ("FONT", (1, 0), (1, -1), FONT, 9),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAD_X),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAD_X),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    for r, (_label, _value, kind) in enumerate(rows):
        if kind == "muted":
            cmds += [("FONT", (0, r), (-1, r), FONT, 8), ("TEXTCOLOR", (0, r), (-1, r), MUTED)]
        elif kind == "total":
            cmds += [
                ("FONT", (0, r), (-1, r), FONT_BOLD, 10),
                ("LINEABOVE", (0, r), (-1, r), 1, NAVY),
                ("TOPPADDING", (0, r), (-1, r), 5),
            ]
        elif kind == "due":
            cmds += [
                ("FONT", (0, r), (-1, r), FONT_BOLD, 10.5),
                ("BACKGROUND", (0, r), (-1, r), NAVY),
                ("TEXTCOLOR", (0, r), (-1, r), WHITE),
                ("TOPPADDING", (0, r), (-1, r), 6),
                ("BOTTOMPADDING", (0, r), (-1, r), 6),
            ]
    return Table(data, colWidths=[label_w, value_w], hAlign="RIGHT", style=TableStyle(cmds))


_PAYMENT_LABEL_W = 27 * mm
_PAYMENT_PAD = 7.0


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
        ("BACKGROUND", (0, 0), (-1, 0), PANEL_HEAD),
        ("BOX", (0, 0), (-1, -1), 0.75, RULE),
        ("FONT", (0, 1), (0, -1), FONT, 8.5),
        ("TEXTCOLOR", (0, 1), (0, -1), MUTED),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAYMENT_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAYMENT_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, 0), 4),
        ("BOTTOMPADDING", (0, 0), (-1, 0), 3),
        ("TOPPADDING", (0, 1), (-1, 1), 5),
        ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
    ]
    if qr is not None:
        qr_w = qr.wrap(width, ctx.height)[0] + 2 * _PAYMENT_PAD
        widths = [label_w, width - label_w - qr_w, qr_w]
        for row in data:
            row.append("")
        data[1][2] = qr
        cmds += [("SPAN", (2, 1), (2, -1)), ("ALIGN", (2, 1), (2, -1), "CENTER")]
    return Table(
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
    out: list[Flowable] = [Spacer(1, 5 * mm)]
    totals = _totals(ctx)
    tw, _ = totals.wrap(ctx.width, ctx.height)
    gap = 8 * mm
    side_w = ctx.width - tw - gap
    giro = payqr.girocode_payload(inv, ctx.totals)
    # the payment details go beside the totals if every value fits on one line there; the
    # GiroCode goes below them there (its caption on its right), else into a column of the
    # full-width panel
    value_room = side_w - _PAYMENT_LABEL_W - 2 * _PAYMENT_PAD
    side = (
        _payment(ctx, inv.payment, side_w)
        if inv.payment is not None
        and all(
            "\n" not in v and _text_width(_clean(v), FONT, 9, ctx.cjk) <= value_room
            for _, v in ctx.view.payment_fields
        )
        else None
    )
    if side is not None:
        left: list[Flowable] = [side]
        if giro is not None:
            left.append(
                payqr.GiroCode(giro, FONT, caption_color=MUTED, width=side_w, **_giro_caption(ctx))
            )
        out.append(
            Table(
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
        qr = (
            payqr.GiroCode(giro, FONT, caption_color=MUTED, **_giro_caption(ctx))
            if giro is not None
            else None
        )
        full = _payment(ctx, inv.payment, ctx.width, qr) if inv.payment is not None else None
        if full is not None:
            out += [Spacer(1, 5 * mm), KeepTogether([full])]
    exemptions = ctx.view.exemption_lines
    if exemptions:
        out += [Spacer(1, 3 * mm), ctx.lines_para(exemptions, st.small)]
    for head, text in ((ctx.view.notes_heading, inv.notes), (ctx.view.terms_heading, inv.terms)):
        if text:
            out += [ctx.para(ctx.caps(head), st.section_head), ctx.para(text, st.small)]
    return out


class _Caption(TypedDict, total=False):
    caption: str


def _giro_caption(ctx: _Ctx) -> _Caption:
    """The GiroCode's caption in the document's language, when payqr can draw it (it draws
    one font, left to right): else payqr's own English caption."""
    caption = _clean(ctx.view.girocode_caption)
    if ctx.view.direction == "rtl" or _HAS_CJK.search(caption):
        return _Caption()
    return _Caption(caption=caption)


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
        Spacer(1, 7 * mm),
        _party_panels(ctx),
        Spacer(1, 7 * mm),
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
        subject=_clean(f"{name} {inv.number}, {view.date(inv.issue_date)}, {view.bill_to.title}"),
        creator="invoiceflow",
        keywords=[name.lower(), _clean(inv.number)],
        invariant=1,
        lang=inv.locale,
        displayDocTitle=1,
        initialFontName=FONT,
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
    )
    try:
        doc.build(story, canvasmaker=canvasmaker)
    except LayoutError as exc:
        raise RenderError(f"the invoice cannot be laid out on pages: {exc}") from exc
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
