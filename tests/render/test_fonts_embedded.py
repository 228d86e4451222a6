"""Every font in every PDF the product writes is embedded: each example document of
``events/examples/invoices`` (``non-latin.json`` has Japanese) and a Korean and Chinese
invoice, walked with pypdf through every page and form XObject (no poppler here)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from invoiceflow.domain.model import Invoice, LineItem, Party
from invoiceflow.domain.parse import parse_invoice
from invoiceflow.errors import RenderError
from invoiceflow.render import scripts
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
    """Every font of the PDF: its BaseFont -> (the font, its descriptor; a Type 0 font's
    descriptor is its descendant CIDFont's)."""
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in _font_dicts(page.get("/Resources"), seen):
            if font.get("/Subtype") == "/Type0":
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            else:
                descriptor = font.get("/FontDescriptor")
            out[str(font["/BaseFont"])] = (
                font,
                None if descriptor is None else descriptor.get_object(),
            )
    return out


_CMAP_ENTRY = re.compile(rb"^<([0-9A-F]{2})> <([0-9A-F]+)>$", re.MULTILINE)
_SHOW_TEXT = {b"Tj", b"'", b'"', b"TJ"}


def to_unicode(font: Any) -> dict[int, str]:
    """A ReportLab subset's ToUnicode CMap as code -> text; the hex must be valid (ReportLab
    itself writes characters beyond U+FFFF as odd-length hex, which ``bytes.fromhex``
    refuses)."""
    cmap = font["/ToUnicode"].get_object().get_data().split(b"beginbfchar", 1)[1]
    return {
        int(m[1], 16): bytes.fromhex(m[2].decode()).decode("utf-16-be")
        for m in _CMAP_ENTRY.finditer(cmap)
    }


def shown_bytes(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(font resource name, the string's bytes) of every text-showing operator on every page."""
    reader = PdfReader(io.BytesIO(data))
    for page in reader.pages:
        font = ""
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                font = str(operands[0])
            elif operator in _SHOW_TEXT:
                strings = operands[0] if operator == b"TJ" else operands[-1:]
                for item in strings:
                    if isinstance(item, (str, bytes)):
                        raw = getattr(item, "original_bytes", item)
                        yield font, raw if isinstance(raw, bytes) else raw.encode("latin-1")


def assert_all_embedded(data: bytes) -> dict[str, Any]:
    """Every font embedded (a subset with a font file) with a valid ToUnicode CMap, and no
    .notdef glyph shown (PDF/A forbids it): ReportLab shows a character its font lacks as
    code 0 of a subset, which is always .notdef."""
    fonts = fonts_of(data)
    assert fonts
    for name, (font, descriptor) in fonts.items():
        assert descriptor is not None, f"{name} has no font descriptor (a standard 14 font)"
        assert any(key in descriptor for key in FONT_FILES), f"{name} is not embedded"
        assert "+" in name, f"{name} is not a subset"
        assert to_unicode(font)
    notdef = [font for font, shown in shown_bytes(data) if 0 in shown]
    assert not notdef, f"the .notdef glyph is shown in {notdef}"
    return fonts


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_font_of_every_example_is_embedded(path: Path) -> None:
    invoice = parse_invoice(path.read_bytes()).invoice
    fonts = assert_all_embedded(render_pdf(invoice))
    families = {name.split("+", 1)[1] for name in fonts}
    assert {"DejaVuSans", "DejaVuSans-Bold"} <= families
    if path.name == "non-latin.json":
        # the Japanese ship-to name and item: kana, so all its Han characters take the
        # Japanese typeface, the kanji-only name too
        assert "IPAexGothic" in families
        assert "DroidSansFallback" not in families
    elif path.name == "jpy-no-decimals.json":
        assert "IPAexGothic" in families  # a ja-JP document: Japanese labels
    else:
        assert not families & {"IPAexGothic", "DroidSansFallback"}


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


def test_every_script_font_ships_with_its_licence() -> None:
    fonts_dir = ROOT / "functions/invoiceflow/render/fonts"
    licence = (fonts_dir / "DroidSansFallback-LICENSE.txt").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Google" in licence
    noto = (fonts_dir / "NotoSans-LICENSE.txt").read_text(encoding="utf-8")
    assert "SIL Open Font License" in noto and "Version 1.1" in noto
    ipa = (fonts_dir / "IPAexGothic-LICENSE.txt").read_text(encoding="utf-8")
    assert "IPA Font License Agreement v1.0" in ipa
    faces = (*scripts.SCRIPT_FONTS, scripts.JAPANESE_FONT, scripts.CJK_FONT)
    for face in faces:
        for file in (face.regular_file, face.bold_file):
            head = (fonts_dir / file).read_bytes()[:4]
            assert head == b"\x00\x01\x00\x00", f"{file} is not TrueType (glyf outlines)"


def test_the_cjk_font_is_loaded_only_when_text_needs_it() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from invoiceflow.domain.parse import parse_invoice\n"
        "from invoiceflow.render.scripts import JAPANESE_FONT\n"
        "from invoiceflow.render.pdf import render_pdf\n"
        "from reportlab.pdfbase import pdfmetrics\n"
        "import pathlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    render_pdf(parse_invoice(pathlib.Path(name).read_bytes()).invoice)\n"
        "    loaded = pdfmetrics.getRegisteredFontNames()\n"
        "    print(name.rsplit('/', 1)[-1], JAPANESE_FONT.regular in loaded)\n"
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


def test_characters_no_font_has_are_a_render_error_naming_them(sample_invoice: Factory) -> None:
    # DejaVu Sans has the emoji and the snowman, Noto Sans Thai the Thai, Droid the Chinese;
    # no font has the G clef or CJK extension B: rendering refuses them (intake already does,
    # see test_scripts_intake.py), never printing a .notdef box or dropping them
    printable = "Smile \U0001f600 \u2603 \u0e44\u0e17\u0e22 \u4e2d\u6587"
    data = render_pdf(sample_invoice(items=(LineItem(printable, D(1), D(1)),)))
    assert_all_embedded(data)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert printable in text
    items = (LineItem(f"{printable} \U0001d11e \U00020000", D(1), D(1)),)
    with pytest.raises(RenderError, match=r"U\+1D11E, U\+20000 cannot be printed"):
        render_pdf(sample_invoice(items=items))
