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
Hebrew, most symbols): a word with a character the family lacks is set in the first font of
the document's chain that has all its characters (:mod:`.scripts`: the script fonts, then
DejaVu Sans), so no character prints as a missing glyph.
"""

from __future__ import annotations

from functools import cache

from invoiceflow.domain.model import FONT_FAMILIES
from invoiceflow.render.scripts import DEFAULT_BASE, Face, register_font

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "family"]

DEFAULT_FAMILY = "dejavu-sans"


# The Liberation names are this module's own (not payqr's "LiberationSans"), so the Swiss
# QR-bill registering its font never replaces a font object a document is already using.
FAMILIES: dict[str, Face] = {
    "dejavu-sans": DEFAULT_BASE,
    "liberation-sans": Face(
        "IF-LiberationSans",
        "IF-LiberationSans-Bold",
        "LiberationSans-Regular.ttf",
        "LiberationSans-Bold.ttf",
    ),
    "liberation-serif": Face(
        "IF-LiberationSerif",
        "IF-LiberationSerif-Bold",
        "LiberationSerif-Regular.ttf",
        "LiberationSerif-Bold.ttf",
    ),
}
assert tuple(FAMILIES) == FONT_FAMILIES, "every family of the document model has its fonts"


@cache
def family(name: str | None) -> Face:
    """The family ``name`` (None: :data:`DEFAULT_FAMILY`), its fonts registered (once per
    process, by :func:`.scripts.register_font`, the one place fonts are registered)."""
    from reportlab.lib.fonts import addMapping

    fam = FAMILIES[name or DEFAULT_FAMILY]
    register_font(fam.regular, fam.regular_file)
    register_font(fam.bold, fam.bold_file)
    # no italic face: italic maps to upright (registered first so the upright mapping wins)
    for bold, italic, font in (
        (0, 1, fam.regular),
        (1, 1, fam.bold),
        (0, 0, fam.regular),
        (1, 0, fam.bold),
    ):
        addMapping(fam.regular, bold, italic, font)
    return fam
