"""The font families a document may choose (``branding.font``, :data:`FONT_FAMILIES`): each
one a regular and a bold TrueType face shipped in ``render/fonts/`` (with its licence there),
registered with ReportLab on first use and embedded (as a subset) in every PDF that uses it.

* ``dejavu-sans`` (the default): DejaVu Sans, the renderer's own font, which also has the
  glyphs of every Latin, Greek and Cyrillic text the renderer prints.
* ``liberation-sans``: Liberation Sans 2.1.5 (metric-compatible with Arial / Helvetica).
* ``liberation-serif``: Liberation Serif 2.1.5 (metric-compatible with Times New Roman).

No italic faces: italic maps to upright, as for DejaVu Sans. Runs of CJK characters keep
their own font whatever the family (see :mod:`invoiceflow.render.pdf`). The Liberation fonts
have Latin, Greek and Cyrillic but far fewer characters than DejaVu Sans (no Armenian, Arabic,
Hebrew, most symbols, no U+FFFD): a document with text one of them lacks is set in DejaVu Sans
instead (:func:`glyphs` tells), so no character prints as a missing glyph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from invoiceflow.domain.model import FONT_FAMILIES

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "Family", "family", "glyphs"]

FONTS_DIR = Path(__file__).with_name("fonts")
DEFAULT_FAMILY = "dejavu-sans"


@dataclass(frozen=True)
class Family:
    """A family's ReportLab font names (regular, bold) and their files in ``render/fonts/``."""

    regular: str
    bold: str
    regular_file: str
    bold_file: str


# The Liberation names are this module's own (not payqr's "LiberationSans"), so the Swiss
# QR-bill registering its font never replaces a font object a document is already using.
FAMILIES: dict[str, Family] = {
    "dejavu-sans": Family("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "liberation-sans": Family(
        "IF-LiberationSans",
        "IF-LiberationSans-Bold",
        "LiberationSans-Regular.ttf",
        "LiberationSans-Bold.ttf",
    ),
    "liberation-serif": Family(
        "IF-LiberationSerif",
        "IF-LiberationSerif-Bold",
        "LiberationSerif-Regular.ttf",
        "LiberationSerif-Bold.ttf",
    ),
}
assert tuple(FAMILIES) == FONT_FAMILIES, "every family of the document model has its fonts"


@cache
def family(name: str | None) -> Family:
    """The family ``name`` (None: :data:`DEFAULT_FAMILY`), its fonts registered (once per
    process; a font already registered under its name is kept)."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    fam = FAMILIES[name or DEFAULT_FAMILY]
    registered = set(pdfmetrics.getRegisteredFontNames())
    for font, file in ((fam.regular, fam.regular_file), (fam.bold, fam.bold_file)):
        if font not in registered:
            pdfmetrics.registerFont(TTFont(font, str(FONTS_DIR / file)))
    # no italic face: italic maps to upright (registered first so the upright mapping wins)
    for bold, italic, font in (
        (0, 1, fam.regular),
        (1, 1, fam.bold),
        (0, 0, fam.regular),
        (1, 0, fam.bold),
    ):
        addMapping(fam.regular, bold, italic, font)
    return fam


@cache
def glyphs(name: str) -> frozenset[str]:
    """The characters both faces of the family ``name`` can draw (registers it)."""
    from reportlab.pdfbase import pdfmetrics

    fam = family(name)
    regular, bold = (pdfmetrics.getFont(f).face.charToGlyph for f in (fam.regular, fam.bold))
    return frozenset(chr(code) for code in regular if code in bold)
