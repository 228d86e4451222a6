"""The PDF's branding: three layouts (classic, modern, compact), the accent colour, the font
family and the footer line (invoice.branding), read back from the PDFs themselves."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from invoiceflow.domain.model import FONT_FAMILIES, LAYOUTS, Branding, Invoice
from invoiceflow.domain.totals import compute_totals
from invoiceflow.render import localize
from invoiceflow.render.pdf import render_pdf
from render.test_fonts_embedded import assert_all_embedded

Factory = Callable[..., Invoice]


def branded(invoice: Invoice, **look: Any) -> Invoice:
    return replace(invoice, branding=Branding(**look))


def page_texts(pdf: bytes, tmp_path: Path) -> list[str]:
    """pdftotext's text of each page (form feeds part the pages)."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return out.split("\f")[:-1]


def operations(pdf: bytes) -> list[tuple[list[Any], bytes]]:
    reader = PdfReader(io.BytesIO(pdf))
    ops: list[tuple[list[Any], bytes]] = []
    for page in reader.pages:
        ops += ContentStream(page.get_contents(), reader).operations
    return ops


def fill_colours(pdf: bytes) -> set[tuple[float, float, float]]:
    return {
        tuple(round(float(v), 3) for v in operands)  # type: ignore[misc]
        for operands, op in operations(pdf)
        if op == b"rg"
    }


def largest_text_size(pdf: bytes, needle: str, tmp_path: Path) -> float:
    """The height of the tallest word ``needle`` on page 1 (pdftotext -bbox): its type size."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    html = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sizes = [
        float(m["y1"]) - float(m["y0"])
        for m in re.finditer(
            r'<word xMin="[\d.]+" yMin="(?P<y0>[\d.]+)" xMax="[\d.]+" yMax="(?P<y1>[\d.]+)">'
            r"(?P<w>[^<]*)</word>",
            html,
        )
        if m["w"] == needle
    ]
    assert sizes, f"{needle!r} is not on page 1"
    return max(sizes)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_renders_the_totals_and_embeds_every_font(
    layout: str, sample_invoice: Factory, tmp_path: Path
) -> None:
    inv = branded(sample_invoice(), layout=layout)
    pdf = render_pdf(inv)
    assert_all_embedded(pdf)
    text = "\n".join(page_texts(pdf, tmp_path))
    totals = compute_totals(inv)
    for amount in (totals.subtotal, totals.total, totals.balance_due):
        assert localize.money(amount, inv).replace("\u00a0", " ") in text.replace("\u00a0", " ")
    assert "Balance due" in text or "Amount due" in text


def test_the_layouts_look_different(sample_invoice: Factory, tmp_path: Path) -> None:
    """compact fits more lines on page 1 than classic, which fits more than modern; modern's
    balance due is set far larger; modern fills no header row with the accent colour."""
    base = sample_invoice(n_items=120)
    pdfs = {layout: render_pdf(branded(base, layout=layout)) for layout in LAYOUTS}

    def lines_on_page_one(pdf: bytes) -> int:
        first = page_texts(pdf, tmp_path)[0]
        return len(re.findall(r"Item \d+:", first))

    counts = {layout: lines_on_page_one(pdf) for layout, pdf in pdfs.items()}
    assert counts["compact"] > counts["classic"] > counts["modern"] > 0, counts
    pages = {layout: len(page_texts(pdf, tmp_path)) for layout, pdf in pdfs.items()}
    assert pages["compact"] < pages["classic"], pages

    short = sample_invoice()
    due = localize.money(compute_totals(short).balance_due, short).split("\u00a0")[0]
    sizes = {
        layout: largest_text_size(render_pdf(branded(short, layout=layout)), due, tmp_path)
        for layout in LAYOUTS
    }
    assert sizes["modern"] > 1.5 * sizes["classic"] > 1.5 * 0.9 * sizes["compact"], sizes


def test_the_accent_colour_fills_the_header_row_and_titles(sample_invoice: Factory) -> None:
    navy = (0.122, 0.227, 0.373)  # #1F3A5F, the default accent
    teal = (0.059, 0.463, 0.431)  # #0F766E
    plain = fill_colours(render_pdf(sample_invoice()))
    assert navy in plain and teal not in plain
    for layout in LAYOUTS:
        colours = fill_colours(
            render_pdf(branded(sample_invoice(), layout=layout, accent_color="#0F766E"))
        )
        assert teal in colours and navy not in colours, layout


@pytest.mark.parametrize("family", FONT_FAMILIES)
def test_the_font_family_is_embedded_and_used(
    family: str, sample_invoice: Factory, tmp_path: Path
) -> None:
    pdf = render_pdf(branded(sample_invoice(), font=family))
    fonts = assert_all_embedded(pdf)
    faces = {name.split("+", 1)[1] for name in fonts}
    expected = {
        "dejavu-sans": {"DejaVuSans", "DejaVuSans-Bold"},
        "liberation-sans": {"LiberationSans", "LiberationSans-Bold"},
        "liberation-serif": {"LiberationSerif", "LiberationSerif-Bold"},
    }[family]
    assert expected <= faces, faces
    if family != "dejavu-sans":  # DejaVu is left only where the family is not used
        assert "DejaVuSans" not in faces, faces
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(
        ["pdffonts", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()[2:]
    assert listing and all(line.split()[-5] == "yes" for line in listing), listing  # emb


def test_the_footer_line_is_on_every_page(sample_invoice: Factory, tmp_path: Path) -> None:
    footer = "Acme GmbH · Registered in Berlin HRB 12345 · acme.example"
    for layout in LAYOUTS:
        pdf = render_pdf(branded(sample_invoice(n_items=150), layout=layout, footer=footer))
        pages = page_texts(pdf, tmp_path)
        assert len(pages) >= 2, layout
        for n, page in enumerate(pages, 1):
            assert footer in page, (layout, n)
            assert f"Page {n} of {len(pages)}" in page, (layout, n)
    assert footer not in "".join(page_texts(render_pdf(sample_invoice()), tmp_path))


def test_the_defaults_are_the_classic_look(sample_invoice: Factory) -> None:
    """A document without branding and one naming classic, the default accent and DejaVu Sans
    draw the same pages (the documents differ, so their IDs do)."""
    plain = sample_invoice()
    explicit = branded(plain, layout="classic", accent_color="#1F3A5F", font="dejavu-sans")
    assert operations(render_pdf(plain)) == operations(render_pdf(explicit))


@pytest.mark.parametrize("family", ["liberation-sans", "liberation-serif"])
def test_a_word_a_liberation_font_lacks_is_set_in_dejavu_sans(
    family: str, sample_invoice: Factory, tmp_path: Path
) -> None:
    """Armenian is not in Liberation: its words are set in DejaVu Sans (the end of the
    document's font chain), the rest of the document stays in the chosen family, with no
    missing glyph (assert_all_embedded checks every font is embedded)."""
    base = sample_invoice()
    item = replace(base.items[0], description="Հայերեն թարգմանություն and more")
    inv = branded(replace(base, items=(item, *base.items[1:])), font=family)
    pdf = render_pdf(inv)
    faces = {name.split("+", 1)[1] for name in assert_all_embedded(pdf)}
    own = "LiberationSerif" if family == "liberation-serif" else "LiberationSans"
    assert "DejaVuSans" in faces and any(own in f for f in faces), faces
    text = "".join(page_texts(pdf, tmp_path))
    assert "Հայերեն թարգմանություն and more" in text


def test_text_on_a_light_accent_colour_is_dark(sample_invoice: Factory) -> None:
    """White on yellow would be unreadable: the header row and the balance due are set in ink
    on a light accent (no white at all is painted then), in white on a dark one."""
    white = (1.0, 1.0, 1.0)
    yellow = fill_colours(render_pdf(branded(sample_invoice(), accent_color="#FFFF00")))
    teal = fill_colours(render_pdf(branded(sample_invoice(), accent_color="#0F766E")))
    assert (1.0, 1.0, 0.0) in yellow and white not in yellow, yellow
    assert white in teal, teal


@pytest.mark.parametrize("layout", ["classic", "modern", "compact"])
def test_the_readme_pictures_are_what_the_renderer_draws_now(layout: str, tmp_path: Path) -> None:
    """docs/layout-*.png (README "Branding") are page 1 as the renderer draws it today:
    regenerate them with scripts/render_layouts.py when the look changes."""
    import importlib.util

    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "render_layouts", root / "scripts/render_layouts.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    fresh = tmp_path / f"{layout}.png"
    script.page_one_png(script.render(layout), fresh)
    with Image.open(fresh) as now, Image.open(root / "docs" / f"layout-{layout}.png") as shown:
        assert now.size == shown.size
        assert now.convert("RGB").tobytes() == shown.convert("RGB").tobytes(), (
            f"docs/layout-{layout}.png is stale: run scripts/render_layouts.py"
        )


@pytest.mark.parametrize("layout", ["classic", "modern", "compact"])
def test_totals_set_as_paragraphs_keep_their_rows_colour_and_weight(
    layout: str, sample_invoice: Factory
) -> None:
    """An amount that needs shaping (an Arabic currency symbol) is a paragraph, which table
    commands do not reach: on the due row it takes the row's colour (white on the filled
    accent: it was ink on navy, unreadable) and weight, like the plain text there."""
    from invoiceflow.render import pdf as pdf_module

    inv = branded(
        replace(sample_invoice(), locale="ar-EG", language="ar", currency="EGP"), layout=layout
    )
    ctx = pdf_module._Ctx(inv)
    table = pdf_module._totals(ctx)
    due = table._cellvalues[-1]
    paragraphs = [cell for cell in due if not isinstance(cell, str)]
    assert paragraphs, due
    want = ctx.st.on_accent if ctx.look.filled else ctx.accent
    for cell in paragraphs:
        assert cell.style.textColor == want and cell.style.fontName == ctx.bold, layout
