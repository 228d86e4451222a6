#!/usr/bin/env python3
"""Regenerate docs/layout-classic.png, docs/layout-modern.png and docs/layout-compact.png:
page 1 of the same example invoice in each PDF layout (README "Branding"), at 100 dpi,
reduced to a 64-colour palette (a few dozen KB each).

    PYTHONPATH=functions .venv/bin/python scripts/render_layouts.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from invoiceflow.domain import parse_invoice  # noqa: E402
from invoiceflow.domain.model import LAYOUTS  # noqa: E402
from invoiceflow.render.pdf import render_pdf  # noqa: E402

EXAMPLE = ROOT / "events" / "examples" / "invoices" / "eu-reverse-charge.json"
#: the look of each picture but its layout (the same for all three)
BRANDING = {"accent_color": "#0F766E", "footer": "Thank you for your business"}
DPI = 100


def render(layout: str) -> bytes:
    doc = json.loads(EXAMPLE.read_text())
    doc["branding"] = {**BRANDING, "layout": layout}
    return render_pdf(parse_invoice(doc).invoice)


def page_one_png(pdf: bytes, out: Path) -> None:
    import pypdfium2 as pdfium

    page = pdfium.PdfDocument(pdf)[0]
    image = page.render(scale=DPI / 72).to_pil().convert("RGB")
    image.quantize(colors=64, dither=0).save(out, optimize=True)


def main() -> None:
    for layout in LAYOUTS:
        out = ROOT / "docs" / f"layout-{layout}.png"
        page_one_png(render(layout), out)
        print(f"{out.relative_to(ROOT)}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
