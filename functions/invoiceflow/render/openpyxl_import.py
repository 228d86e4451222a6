"""openpyxl, imported for :mod:`.xlsx` (which imports this module before any openpyxl
module) without Pillow.

``openpyxl.drawing.image`` imports Pillow whenever it is installed (ReportLab needs it, so it
is), for pictures in a workbook: about 8 ms of render-xlsx's cold start
(bench/analysis.md, seventh round), for a feature the renderer never uses (its workbooks hold
cells, styles and formulas; no picture, chart or drawing). While openpyxl is imported, Pillow
is therefore not importable (:func:`.hidden_imports.hidden`), so openpyxl takes its "Pillow
not installed" path: in that process an ``openpyxl.drawing.image.Image`` cannot be made and
pictures of a workbook it reads are dropped, neither of which the renderer does. If Pillow
is loaded already (a process that rendered a PDF first, as the test suite's do), nothing
is hidden and openpyxl is imported as it always is. The workbooks are the same bytes
either way (tests/render/test_openpyxl_import.py).
"""

from __future__ import annotations

import sys

from invoiceflow.render.hidden_imports import hidden


def _import_openpyxl() -> None:
    if "openpyxl" in sys.modules:  # imported already: nothing to hide
        return
    with hidden("PIL"):
        import openpyxl  # noqa: F401


_import_openpyxl()
