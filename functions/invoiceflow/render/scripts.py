"""Every script in the PDF: which embedded font draws which character, the bidirectional
algorithm, and HarfBuzz shaping. Used by :mod:`invoiceflow.render.pdf` (drawing) and by
intake (:func:`unprintable_problems`, before anything is stored).

Fonts
    A document's text is set in its base font (DejaVu Sans unless the caller passes another
    family) and then, per run, in the first font of the chain that has every character of the
    run: the base font, Noto Sans Arabic, Noto Sans Hebrew, Noto Sans Thai, Noto Sans
    Devanagari, the CJK fonts (IPAex Gothic first for Japanese text, i.e. language ``ja`` or a
    string with kana, else Droid Sans Fallback first, whose Han characters take their Chinese
    forms) and last DejaVu Sans, so that what intake lets through prints in every family. A
    font "has" a character when its regular and its bold face both map it (private-use code
    points never count). Every font is TrueType (glyf outlines), embedded as a subset, and
    loaded only when the first text needing it is checked. A character no font has is
    refused at intake (:func:`unprintable_problems`) and a :class:`UnprintableText` (a
    RenderError) in the renderer: never a .notdef box, never dropped.

Runs and bidi
    A run is a word (no spaces inside) in one font; a word no single font has is split per
    character. Each line gets its embedding levels from python-bidi's implementation of the
    Unicode bidirectional algorithm (UAX #9; the base direction is the document's for
    right-to-left documents, else the first strong character's), runs are cut where the level
    changes, each run is shaped by HarfBuzz in its direction, and the runs are put in visual
    order (rule L2). Shaping therefore always sees logical text, as HarfBuzz requires.

Glyphs and extraction
    A shaped glyph is drawn through a code point of its ReportLab font: the character itself
    when the glyph is the font's own glyph for it, else a private-use code point (plane 15)
    allotted to the pair (glyph, text) and kept in :data:`_ACTUAL_TEXT`, so the PDF's ToUnicode
    CMap (:func:`to_unicode_text`) writes the *text* the glyph stands for: a contextual Arabic
    form its letter, a lam-alef ligature both letters, a Devanagari conjunct its cluster. The
    characters of a cluster go to its glyphs in reading order (an i-matra drawn before its
    consonant extracts after it), so text copied or extracted from the PDF is the logical text.
    Advances are HarfBuzz's (kerning and zero-width marks included); glyph offsets (GPOS mark
    anchors) are not applied: marks sit where the font draws them by default.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoiceflow.errors import Problem, RenderError, ValidationError
from invoiceflow.records import record

if TYPE_CHECKING:
    from invoiceflow.domain import Document
    from invoiceflow.domain.model import Invoice

__all__ = [
    "CJK_FONT",
    "DEFAULT_BASE",
    "JAPANESE_FONT",
    "SCRIPT_FONTS",
    "Face",
    "FontChain",
    "Glyphs",
    "UnprintableText",
    "check_printable",
    "clean",
    "font_chain",
    "layout_line",
    "needs_layout",
    "register_font",
    "right_to_left",
    "unprintable",
    "unprintable_problems",
]

FONTS_DIR = Path(__file__).with_name("fonts")


@record
class Face:
    """A font family as ReportLab names it: its regular and bold fonts, and their files in
    ``render/fonts/`` (the same file twice for a family without a bold face)."""

    regular: str
    bold: str
    regular_file: str
    bold_file: str

    def font(self, bold: bool) -> str:
        return self.bold if bold else self.regular


#: the default base family (also the chain's last resort: see the module docstring)
DEFAULT_BASE = Face("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
ARABIC_FONT = Face(
    "NotoSansArabic",
    "NotoSansArabic-Bold",
    "NotoSansArabic-Regular.ttf",
    "NotoSansArabic-Bold.ttf",
)
HEBREW_FONT = Face(
    "NotoSansHebrew",
    "NotoSansHebrew-Bold",
    "NotoSansHebrew-Regular.ttf",
    "NotoSansHebrew-Bold.ttf",
)
THAI_FONT = Face(
    "NotoSansThai", "NotoSansThai-Bold", "NotoSansThai-Regular.ttf", "NotoSansThai-Bold.ttf"
)
DEVANAGARI_FONT = Face(
    "NotoSansDevanagari",
    "NotoSansDevanagari-Bold",
    "NotoSansDevanagari-Regular.ttf",
    "NotoSansDevanagari-Bold.ttf",
)
#: Japanese typeface (no bold face: bold Japanese prints regular)
JAPANESE_FONT = Face("IPAexGothic", "IPAexGothic", "ipaexg.ttf", "ipaexg.ttf")
#: Chinese and Korean (no bold face: bold CJK prints regular)
CJK_FONT = Face(
    "DroidSansFallback", "DroidSansFallback", "DroidSansFallback.ttf", "DroidSansFallback.ttf"
)
#: the script fonts in the order they are tried after the base font (CJK handled apart)
SCRIPT_FONTS = (ARABIC_FONT, HEBREW_FONT, THAI_FONT, DEVANAGARI_FONT)

# --------------------------------------------------------------------------------------------
# cleaning: what the renderer never prints
# --------------------------------------------------------------------------------------------

# C0/C1 controls (but \n), bidi marks and embeddings (the bidi algorithm runs on the text
# without them: Babel puts them into e.g. ``ar-KW`` amounts), BOM; tab -> space; fullwidth
# currency signs (ja-JP prints "￥") -> the ordinary signs.
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


def clean(text: object) -> str:
    """Text as the renderer prints it: newlines as ``\\n``, without control characters and
    bidi marks (removed: they are not text), a lone surrogate (half a character, from broken
    JSON escapes) shown as U+FFFD."""
    s = str(text)
    if s.isascii() and s.isprintable():
        return s
    s = s.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATE)
    return _SURROGATE.sub("\ufffd", s)


# --------------------------------------------------------------------------------------------
# fonts and coverage
# --------------------------------------------------------------------------------------------


def _private(code: int) -> bool:
    return 0xE000 <= code <= 0xF8FF or code >= 0xF0000


#: held while fonts are registered, their character maps read or a code point allotted
_FONTS_LOCK = threading.RLock()


@cache
def register_font(name: str, file: str) -> Any:
    """The ReportLab font ``name``, registered from ``render/fonts/file`` unless it is
    already: the one place fonts are registered (once per process: shaping adds code points
    to the registered font object, see :func:`_code_for`)."""
    from reportlab.pdfbase import pdfmetrics

    from invoiceflow.render.fontcache import load_font  # its metrics parsed once, kept

    with _FONTS_LOCK:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(load_font(name, FONTS_DIR / file))
        return pdfmetrics.getFont(name)


@cache
def face_chars(face: Face) -> frozenset[str]:
    """The characters both faces of the family map (private-use code points excluded), from
    :data:`FACES_FILE` for a shipped family: choosing a word's font then parses no font file,
    so a document registers only the fonts it prints in (a Japanese document no longer parses
    the Arabic, Hebrew, Thai and Devanagari fonts on the way to its Japanese one). Read from
    the fonts (:func:`font_face_chars`) for a family the file does not list, and for one
    whose fonts are registered already (their maps are in memory: reading them parses
    nothing, and the file need not be read for the document's own family)."""
    if not _registered(face) and (listed := listed_face_chars(face)) is not None:
        return listed
    return font_face_chars(face)


def listed_face_chars(face: Face) -> frozenset[str] | None:
    """:func:`face_chars` as :data:`FACES_FILE` lists them; None for a family it does not."""
    ranges = _face_ranges().get(_face_key(face))
    return None if ranges is None else _range_chars(ranges)


def _registered(face: Face) -> bool:
    """Whether both fonts of ``face`` are registered with ReportLab."""
    from reportlab.pdfbase import pdfmetrics

    with _FONTS_LOCK:
        names = pdfmetrics.getRegisteredFontNames()
        return face.regular in names and face.bold in names


def font_face_chars(face: Face) -> frozenset[str]:
    """:func:`face_chars` read from the fonts themselves (registers both faces). Read before
    any glyph of the family is allotted a private code point (face_chars caches it)."""
    with _FONTS_LOCK:  # no code is allotted (_code_for) while the maps are read
        maps = [
            register_font(name, file).face.charToGlyph
            for name, file in ((face.regular, face.regular_file), (face.bold, face.bold_file))
        ]
        common = set(maps[0]).intersection(maps[1])
    return frozenset(chr(c) for c in common if not _private(c))


def document_language(invoice: Invoice) -> str:
    """The language of the document's labels: ``invoice.language``, else its locale's."""
    return (invoice.language or invoice.locale).replace("_", "-").split("-")[0].lower()


def right_to_left(invoice: Invoice) -> bool:
    """Whether the document is laid out right to left (mirrored): its language is written
    right to left (Babel's ``character_order``: ar, he, fa, ur...), as its view says
    (:func:`.i18n.document_direction`)."""
    from invoiceflow.render.i18n import document_direction

    return document_direction(invoice) == "rtl"


def font_chain(invoice: Invoice, base: Face = DEFAULT_BASE) -> FontChain:
    """The fonts of the invoice's PDF on the base family ``base``; Japanese forms for all of
    its Han characters when its language is Japanese or any of its text has kana."""
    from invoiceflow.domain.model import to_json

    japanese = document_language(invoice) == "ja" or any(
        _is_japanese(s) for s in _strings(to_json(invoice))
    )
    return FontChain(base, japanese, right_to_left(invoice))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _is_japanese(text: str) -> bool:
    return any("\u3040" <= c <= "\u30ff" or "\u31f0" <= c <= "\u31ff" for c in text)


class UnprintableText(RenderError):
    """Text with characters that no font of the PDF has."""


def _code_points(chars: Iterable[str]) -> str:
    return ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(chars))


@record
class FontChain:
    """A document's fonts: its base family, then the script fonts (see the module docstring).
    ``japanese``: the document's language is Japanese (its Han characters take Japanese
    forms); ``rtl``: the document is laid out right to left (:func:`right_to_left`)."""

    base: Face = DEFAULT_BASE
    japanese: bool = False
    rtl: bool = False

    def direction(self, text: str) -> bool | None:
        """The paragraph direction of ``text``: right to left in a right-to-left document
        when the text has right-to-left characters, else its first strong character's
        (None)."""
        return True if self.rtl and has_rtl(text) else None

    def faces(self, text: str = "") -> tuple[Face, ...]:
        cjk = (
            (JAPANESE_FONT, CJK_FONT)
            if self.japanese or _is_japanese(text)
            else (CJK_FONT, JAPANESE_FONT)
        )
        chain = (self.base, *SCRIPT_FONTS, *cjk, DEFAULT_BASE)
        return tuple(dict.fromkeys(chain))

    def runs(self, text: str) -> list[tuple[Face, str]]:
        """``text`` (one line, cleaned) cut into runs, each in one family: a word (no spaces)
        in the first family that has all of its letters and marks (its digits and punctuation
        too where that family has them), a word no single family has character by character;
        raises UnprintableText naming the characters no family has."""
        faces = self.faces(text)
        missing = [c for c in dict.fromkeys(text) if not c.isspace() and _first(faces, c) is None]
        if missing:
            n = len(missing)
            raise UnprintableText(
                f"{_code_points(missing)} cannot be printed in the PDF: no font of it has "
                f"{'this character' if n == 1 else 'these characters'}"
            )
        runs: list[tuple[Face, str]] = []
        for token in re.findall(r"\s+|\S+", text):
            prev = runs[-1][0] if runs else None
            strong = "".join(c for c in token if unicodedata.category(c)[0] in "LM")
            word_face = _first(faces, strong) if strong else prev
            for face, c in _per_char(faces, token, word_face, prev):
                if runs and runs[-1][0] == face:
                    runs[-1] = (face, runs[-1][1] + c)
                else:
                    runs.append((face, c))
        return runs


def _first(faces: Sequence[Face], token: str) -> Face | None:
    chars = set(token)
    for face in faces:
        if chars <= face_chars(face):
            return face
    return None


def _per_char(
    faces: Sequence[Face], token: str, word_face: Face | None, prev: Face | None
) -> Iterator[tuple[Face, str]]:
    """The family of each character of a word (each has one): the word's family where it
    has the character, else (punctuation, marks) the family of the character before where it
    has it, else the first family that has it."""
    for c in token:
        if word_face is not None and c in face_chars(word_face):
            face = word_face
        elif prev is not None and unicodedata.category(c)[0] not in "LN" and c in face_chars(prev):
            face = prev
        else:
            first = _first(faces, c)
            assert first is not None
            face = first
        prev = face
        yield face, c


#: every character some shipped font has (in both faces of its family), as ranges of code
#: points: what intake checks text against without loading a font (upload and intake would
#: otherwise read every font's character map at their first request).
#: Regenerate with ``python scripts/printable_chars.py``; a test fails when it is not the
#: fonts' own union (:func:`fonts_printable_chars`).
PRINTABLE_FILE = FONTS_DIR / "printable.txt"
#: the characters of each shipped family (both faces), as :data:`PRINTABLE_FILE` writes them,
#: each family under a ``[REGULAR_FILE BOLD_FILE]`` line: what :func:`face_chars` reads.
#: Regenerate with :func:`write_faces_file` after adding or changing a font; a test fails when
#: it is not what the fonts themselves map.
FACES_FILE = FONTS_DIR / "faces.txt"


def _code_ranges(ranges: Iterable[str]) -> Iterator[tuple[int, int]]:
    """(first, last) code point of each ``LO-HI`` (or single) hexadecimal range."""
    for line in ranges:
        lo, _, hi = line.partition("-")
        yield int(lo, 16), int(hi or lo, 16)


def _range_chars(ranges: Iterable[str]) -> frozenset[str]:
    """The characters of ``LO-HI`` (or single) hexadecimal code point ranges."""
    chars: set[str] = set()
    for first, last in _code_ranges(ranges):
        chars.update(map(chr, range(first, last + 1)))
    return frozenset(chars)


@cache
def printable_chars() -> frozenset[str]:
    """The characters of :data:`PRINTABLE_FILE`."""
    return _range_chars(PRINTABLE_FILE.read_text(encoding="ascii").split())


@cache
def _printable_bounds() -> tuple[list[int], list[int]]:
    """The first and the last code points of :data:`PRINTABLE_FILE`'s ranges (in order)."""
    firsts: list[int] = []
    lasts: list[int] = []
    for first, last in _code_ranges(PRINTABLE_FILE.read_text(encoding="ascii").split()):
        firsts.append(first)
        lasts.append(last)
    return firsts, lasts


def printable(char: str) -> bool:
    """Whether ``char`` is one of :func:`printable_chars`, found by bisecting the file's
    ranges: a process checks text without building the set of every printable character
    first (~9 ms of upload's and intake's first request)."""
    firsts, lasts = _printable_bounds()
    code = ord(char)
    i = bisect_right(firsts, code) - 1
    return i >= 0 and code <= lasts[i]


def fonts_printable_chars() -> frozenset[str]:
    """The characters some font of any document's chain has, read from the fonts (registers
    every one of them)."""
    return frozenset().union(*(font_face_chars(face) for face in FontChain().faces()))


def _face_key(face: Face) -> str:
    return f"[{face.regular_file} {face.bold_file}]"


@cache
def _face_ranges() -> dict[str, list[str]]:
    """The ranges of :data:`FACES_FILE` by family (its ``[...]`` line)."""
    families: dict[str, list[str]] = {}
    ranges: list[str] = []
    for line in FACES_FILE.read_text(encoding="ascii").splitlines():
        if line.startswith("["):
            ranges = families[line] = []
        elif line:
            ranges.append(line)
    return families


def faces_text() -> str:
    """What :data:`FACES_FILE` holds, read from the fonts (registers every one of them): the
    chain's families, then the other families a document may choose."""
    from invoiceflow.render.families import FAMILIES  # it imports this module

    faces = dict.fromkeys((*FontChain().faces(), *FAMILIES.values()))
    return "".join(
        f"{_face_key(face)}\n{printable_ranges(font_face_chars(face))}" for face in faces
    )


def write_faces_file() -> None:
    """Regenerate :data:`FACES_FILE` from the fonts::

    PYTHONPATH=functions .venv/bin/python -c \\
        'from invoiceflow.render import scripts; scripts.write_faces_file()'
    """
    FACES_FILE.write_text(faces_text(), encoding="ascii")


def printable_ranges(chars: Iterable[str]) -> str:
    """``chars`` as :data:`PRINTABLE_FILE` holds them: one range ``LO-HI`` (or one code
    point) of hexadecimal code points a line."""
    lines: list[str] = []
    codes = sorted(map(ord, chars))
    start = prev = codes[0] if codes else 0
    for code in [*codes[1:], -1]:
        if code == prev + 1:
            prev = code
            continue
        lines.append(f"{start:04X}" if start == prev else f"{start:04X}-{prev:04X}")
        start = prev = code
    return "\n".join(lines if codes else []) + "\n"


def unprintable(text: str) -> list[str]:
    """The characters of ``text`` (cleaned as the renderer does) that no font has, in every
    family (the chain ends with the default family, so the base family does not matter).
    Loads no font: :func:`printable`."""
    s = clean(text)
    if s.isascii():
        return []
    return [c for c in dict.fromkeys(s) if not printable(c) and not c.isspace()]


def unprintable_problems(document: Document) -> list[Problem]:
    """A problem for every text field of the document holding characters that the PDF
    cannot print, at the field's pointer in the client's document (``Document.client_problems``),
    naming the code points."""
    problems: list[Problem] = []

    def walk(value: Any, pointer: str) -> None:
        if isinstance(value, str):
            bad = unprintable(value)
            if bad:
                problems.append(
                    Problem(pointer, f"{_code_points(bad)} cannot be printed in the PDF")
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{pointer}/{_pointer_token(str(key))}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{pointer}/{i}")

    doc = document.canonical
    # every string ASCII (the JSON text is, keys included): nothing to look for, field by field
    if json.dumps(doc, ensure_ascii=False).isascii():
        return []
    walk(doc, "")
    return document.client_problems(problems)


def check_printable(document: Document) -> None:
    """Refuse a document the PDF cannot print: one ValidationError (422) with a problem per
    text field holding characters no font has (:func:`unprintable_problems`)."""
    problems = unprintable_problems(document)
    if problems:
        n = len(problems)
        raise ValidationError(
            problems,
            f"{n} text field{'s' if n != 1 else ''} with characters the PDF cannot print",
        )


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


# --------------------------------------------------------------------------------------------
# layout: bidi levels, shaping, glyphs
# --------------------------------------------------------------------------------------------

_RTL_CLASSES = frozenset({"R", "AL"})


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(c) in _RTL_CLASSES for c in text)


def needs_layout(text: str) -> bool:
    """Whether ``text`` needs bidi or shaping: right-to-left or Arabic numbers, combining
    marks (Thai, Devanagari, Arabic vowels) or joiners."""
    if text.isascii():
        return False
    return any(
        unicodedata.bidirectional(c) in ("R", "AL", "AN")
        or unicodedata.category(c) in ("Mn", "Mc", "Me")
        or c in "\u200c\u200d"
        for c in text
    )


def _levels(text: str, rtl: bool | None) -> list[int]:
    """The resolved embedding level of every character (UAX #9 up to rule I2, then L1 for
    trailing white space); ``rtl``: the paragraph direction, None for the first strong
    character's."""
    from bidi import algorithm

    storage: dict[str, Any] = algorithm.get_empty_storage()
    base = algorithm.get_base_level(text) if rtl is None else int(rtl)
    storage["base_level"] = base
    storage["base_dir"] = ("L", "R")[base]
    algorithm.get_embedding_levels(text, storage)
    for i, ch in enumerate(storage["chars"]):
        ch["index"] = i
    algorithm.explicit_embed_and_overrides(storage)
    algorithm.resolve_weak_types(storage)
    algorithm.resolve_neutral_types(storage, False)
    algorithm.resolve_implicit_levels(storage, False)
    levels = [-1] * len(text)
    for ch in storage["chars"]:
        levels[ch["index"]] = ch["level"]
    for i, level in enumerate(levels):  # removed by X9 (joiners): the level before them
        if level < 0:
            levels[i] = levels[i - 1] if i else base
    i = len(text)
    while i > 0 and text[i - 1].isspace():  # L1: trailing white space
        i -= 1
        levels[i] = base
    return levels


@record
class Glyphs:
    """A run as drawn: ``codes`` (characters of the ReportLab font ``font``, one per glyph,
    left to right) and its width at size 1000 (an em is 1000)."""

    font: str
    codes: str
    width: float


#: font PostScript name -> private code point -> the text its glyph stands for
_ACTUAL_TEXT: dict[str, dict[int, str]] = {}
_ALLOTTED: dict[tuple[str, int, str, float], int] = {}


def to_unicode_text(ps_name: str, code: int) -> str | None:
    """The text a private code point of the font stands for (for the ToUnicode CMap), or
    None when the code is the font's own character."""
    return _ACTUAL_TEXT.get(ps_name, {}).get(code)


def _code_for(font: Any, gid: int, text: str, advance: float) -> int:
    """A code point of ``font`` that draws glyph ``gid`` with ``advance`` (1000 per em) and
    extracts as ``text``."""
    face = font.face
    if len(text) == 1:
        code = ord(text)
        if (
            face.charToGlyph.get(code) == gid
            and abs(face.charWidths.get(code, -1) - advance) < 0.01
        ):
            return code
    key = (font.fontName, gid, text, advance)
    with _FONTS_LOCK:
        allotted = _ALLOTTED.get(key)
        if allotted is not None:
            return allotted
        # numbered per PostScript name: the ToUnicode CMap knows a subset only by that name
        ps_name = face.name.decode() if isinstance(face.name, bytes) else str(face.name)
        actual = _ACTUAL_TEXT.setdefault(ps_name, {})
        code = 0xF0000 + len(actual)
        if code > 0xFFFFD:
            raise RenderError(f"too many distinct shaped glyphs in the font {ps_name}")
        actual[code] = text
        face.charToGlyph[code] = gid
        face.charWidths[code] = advance
        face.glyphToChar.setdefault(gid, []).append(code)
        _ALLOTTED[key] = code
        return code


@cache
def _hb_font(name: str) -> Any:
    import uharfbuzz

    font = _font(name)
    return uharfbuzz.Font(uharfbuzz.Face(uharfbuzz.Blob(font.face._ttf_data)))


def _font(name: str) -> Any:
    from reportlab.pdfbase import pdfmetrics

    return pdfmetrics.getFont(name)


def _shape(name: str, text: str, rtl: bool) -> Glyphs:
    """``text`` (logical order, one font, one direction) shaped: its glyphs left to right."""
    import uharfbuzz

    hb_font = _hb_font(name)
    buf = uharfbuzz.Buffer()
    buf.add_str(text)
    buf.guess_segment_properties()
    buf.direction = "rtl" if rtl else "ltr"
    uharfbuzz.shape(hb_font, buf, {"kern": True, "liga": True})
    font = _font(name)
    scale = 1000 / hb_font.face.upem
    infos, positions = buf.glyph_infos, buf.glyph_positions
    missing = [text[info.cluster] for info in infos if info.codepoint == 0]
    if missing:  # a run's font lacks a character (cannot happen after FontChain.runs)
        raise UnprintableText(f"{_code_points(missing)} cannot be printed in the font {name}")
    # the clusters, each with its glyphs in reading order
    clusters: dict[int, list[tuple[int, int]]] = {}
    for info, pos in zip(infos, positions, strict=True):
        clusters.setdefault(info.cluster, []).append((info.codepoint, pos.x_advance * scale))
    starts = sorted(clusters)
    ends = dict(zip(starts, [*starts[1:], len(text)], strict=True))
    codes_of: dict[tuple[int, int], int] = {}  # (cluster, glyph in visual order) -> code
    for start, glyphs in clusters.items():
        reading = list(reversed(glyphs)) if rtl else glyphs
        chars = text[start : ends[start]]
        if len(reading) > len(chars):  # Thai sara am: two glyphs, its two compatibility parts
            decomposed = unicodedata.normalize("NFKD", chars)
            chars = decomposed if len(decomposed) == len(reading) else chars
        n = min(len(reading), len(chars))
        parts = [chars[i] for i in range(n - 1)] + [chars[n - 1 :]]
        parts += [""] * (len(reading) - n)
        for k, ((gid, advance), part) in enumerate(zip(reading, parts, strict=True)):
            # readers (poppler, pdfium) reverse the characters of a right-to-left glyph too
            codes_of[start, len(reading) - 1 - k if rtl else k] = _code_for(
                font, gid, part[::-1] if rtl else part, advance
            )
    out: list[str] = []
    width = 0.0
    seen: dict[int, int] = {}
    for info, pos in zip(infos, positions, strict=True):
        k = seen.get(info.cluster, 0)
        seen[info.cluster] = k + 1
        out.append(chr(codes_of[info.cluster, k]))
        width += pos.x_advance * scale
    return Glyphs(name, "".join(out), width)


def layout_line(
    text: str, chain: FontChain, bold: bool = False, rtl: bool | None = None
) -> list[Glyphs]:
    """One line of text (cleaned, no newline) as glyph runs in visual order, left to right.
    ``rtl``: the paragraph direction (None: the first strong character's; a text without
    right-to-left characters is always left to right). Raises UnprintableText."""
    if not text:
        return []
    levels = (
        _levels(text, rtl) if has_rtl(text) or (rtl and needs_layout(text)) else [0] * len(text)
    )
    pieces: list[tuple[int, str, str]] = []  # (level, font, text) in logical order
    pos = 0
    for face, run in chain.runs(text):
        name = face.font(bold)
        register_font(name, face.bold_file if bold else face.regular_file)
        for i, c in enumerate(run, start=pos):
            if pieces and pieces[-1][0] == levels[i] and pieces[-1][1] == name:
                level, f, s = pieces[-1]
                pieces[-1] = (level, f, s + c)
            else:
                pieces.append((levels[i], name, c))
        pos += len(run)
    runs = [(level, _shape(name, s, level % 2 == 1)) for level, name, s in pieces]
    # L2: from the highest level down to the lowest odd level, reverse every sequence of
    # runs at that level or higher
    top = max(level for level, _ in runs)
    low_odd = min((level for level, _ in runs if level % 2), default=top + 1)
    for lvl in range(top, low_odd - 1, -1):
        i = 0
        while i < len(runs):
            if runs[i][0] >= lvl:
                j = i
                while j < len(runs) and runs[j][0] >= lvl:
                    j += 1
                runs[i:j] = runs[i:j][::-1]
                i = j
            else:
                i += 1
    return [g for _, g in runs]


def line_width(glyphs: Sequence[Glyphs], size: float) -> float:
    return sum(g.width for g in glyphs) * size / 1000
