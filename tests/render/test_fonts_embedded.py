"""Every font in every PDF the product writes is embedded: each example document of
``events/examples/invoices`` (``non-latin.json`` has Japanese) and a Korean and Chinese
invoice, walked with pypdf through every page and form XObject (no poppler here)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from invoiceflow.domain.model import Invoice, LineItem, Party
from invoiceflow.domain.parse import parse_invoice
from invoiceflow.render import pdf as pdf_module
from invoiceflow.render.pdf import render_pdf

Factory = Callable[..., Invoice]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "events/examples/invoices").glob("*.json"))
FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


def _font_dicts(resources: Any, seen: set[int]) -> Iterator[Any]:
    if resources is None:
        return
    resources = resources.get_object()
    fonts = resources.get("/Font")
    if fonts is not None:
        for font in fonts.get_object().values():
            yield font.get_object()
    xobjects = resources.get("/XObject")
    if xobjects is not None:
        for ref in xobjects.get_object().values():
            xobject = ref.get_object()
            key = id(xobject) if ref.indirect_reference is None else ref.indirect_reference.idnum
            if key not in seen and "/Resources" in xobject:
                seen.add(key)
                yield from _font_dicts(xobject["/Resources"], seen)


def fonts_of(data: bytes) -> dict[str, Any]:
    """Every font of the PDF (its BaseFont -> its descriptor; a Type 0 font's descriptor is
    its descendant CIDFont's)."""
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in _font_dicts(page.get("/Resources"), seen):
            if font.get("/Subtype") == "/Type0":
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            else:
                descriptor = font.get("/FontDescriptor")
            out[str(font["/BaseFont"])] = None if descriptor is None else descriptor.get_object()
    return out


def assert_all_embedded(data: bytes) -> dict[str, Any]:
    fonts = fonts_of(data)
    assert fonts
    for name, descriptor in fonts.items():
        assert descriptor is not None, f"{name} has no font descriptor (a standard 14 font)"
        assert any(key in descriptor for key in FONT_FILES), f"{name} is not embedded"
        assert "+" in name, f"{name} is not a subset"
    return fonts


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_font_of_every_example_is_embedded(path: Path) -> None:
    invoice = parse_invoice(path.read_bytes()).invoice
    fonts = assert_all_embedded(render_pdf(invoice))
    families = {name.split("+", 1)[1] for name in fonts}
    assert {"DejaVuSans", "DejaVuSans-Bold"} <= families
    if path.name == "non-latin.json":
        assert "DroidSansFallback" in families  # the Japanese ship-to name and item
    else:
        assert "DroidSansFallback" not in families


def test_korean_and_chinese_text_is_set_in_the_embedded_cjk_font(
    sample_invoice: Factory,
) -> None:
    seller = Party(name="한국상사 주식회사", address=("서울특별시 중구 세종대로 110",))
    items = (
        LineItem("软件开发服务 (繁體: 軟體開發)", D(1), D(100), tax_rate=D(10)),
        LineItem("Bold header, normal text", D(1), D(1), tax_rate=D(10)),
    )
    data = render_pdf(sample_invoice(seller=seller, items=items, locale="ko-KR"))
    fonts = assert_all_embedded(data)
    assert {name.split("+", 1)[1] for name in fonts} == {
        "DejaVuSans",
        "DejaVuSans-Bold",
        "DroidSansFallback",
    }
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    for expected in (
        "한국상사 주식회사",
        "서울특별시 중구 세종대로 110",
        "软件开发服务",
        "軟體開發",
    ):
        assert expected in text, expected


def test_the_cjk_font_ships_with_its_licence() -> None:
    fonts_dir = ROOT / "functions/invoiceflow/render/fonts"
    licence = (fonts_dir / "DroidSansFallback-LICENSE.txt").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Google" in licence
    assert (fonts_dir / pdf_module._LAZY_FONTS[pdf_module.CJK_FONT]).is_file()


def test_the_cjk_font_is_loaded_only_when_text_needs_it() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from invoiceflow.domain.parse import parse_invoice\n"
        "from invoiceflow.render.pdf import CJK_FONT, render_pdf\n"
        "from reportlab.pdfbase import pdfmetrics\n"
        "import pathlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    render_pdf(parse_invoice(pathlib.Path(name).read_bytes()).invoice)\n"
        "    print(name.rsplit('/', 1)[-1], CJK_FONT in pdfmetrics.getRegisteredFontNames())\n"
    )
    examples = ROOT / "events/examples/invoices"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(examples / "minimal.json"),
            str(examples / "non-latin.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    ).stdout.split("\n")
    assert out[:2] == ["minimal.json False", "non-latin.json True"]
