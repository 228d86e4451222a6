"""The font metrics cache (invoiceflow.render.fontcache): a font loaded from its entry is
ReportLab's own, attribute for attribute, and prints the same PDF; an entry that does not
match the font, ReportLab or the format is not used; a read-only directory only means no
entry."""

from __future__ import annotations

import marshal
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reportlab.pdfbase.ttfonts import TTFont, TTFontFile

from invoiceflow.render import fontcache
from invoiceflow.render.scripts import FONTS_DIR

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(FONTS_DIR.glob("*.ttf"))


def _face_state(font: Any) -> dict[str, Any]:
    """The face's attributes, the scale function as what it computes."""
    state = {k: v for k, v in vars(font.face).items() if k != "_pdfScale"}
    state["_pdfScale"] = [font.face._pdfScale(x) for x in (0, 1, 7, 1000, 2048, -345)]
    return state


def _font_state(font: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(font).items() if k not in ("face", "state", "encoding")}


@pytest.fixture
def fonts(tmp_path: Path) -> Path:
    """A copy of the shipped fonts' directory, so entries are written there."""
    for font in SHIPPED:
        shutil.copy(font, tmp_path / font.name)
    return tmp_path


@pytest.mark.parametrize("name", [f.name for f in SHIPPED])
def test_a_font_from_its_entry_is_reportlabs_own(fonts: Path, name: str) -> None:
    path = fonts / name
    reference = TTFont("F", str(path))
    written = fontcache.load_font("F", path)  # parses, writes the entry
    assert fontcache.entry_path(path).is_file()
    read = fontcache.load_font("F", path)  # from the entry
    for font in (written, read):
        assert type(font.face).__mro__[1:] == type(reference.face).__mro__
        state, expected = _face_state(font), _face_state(reference)
        assert state.keys() == expected.keys()
        for key, value in expected.items():
            assert state[key] == value, key
            assert type(state[key]) is type(value), key
        assert _font_state(font) == _font_state(reference)
        assert font.stringWidth("Invoice ÄÖÜ €", 10) == reference.stringWidth("Invoice ÄÖÜ €", 10)


def test_an_entry_is_read_without_parsing_the_font(
    fonts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fonts / "DejaVuSans.ttf"
    fontcache.load_font("F", path)

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(TTFontFile, "extractInfo", no_parse)
    assert fontcache.load_font("F", path).face.charToGlyph[ord("A")] > 0


@pytest.mark.parametrize(
    "stale",
    [
        lambda key: [key[0] + 1, *key[1:]],  # another format
        lambda key: [key[0], "0.0.1", key[2]],  # another ReportLab
        lambda key: [*key[:2], "0" * 64],  # another font's bytes
    ],
    ids=["format", "reportlab", "font"],
)
def test_an_entry_made_for_something_else_is_not_used(
    fonts: Path, monkeypatch: pytest.MonkeyPatch, stale: Any
) -> None:
    path = fonts / "NotoSansHebrew-Regular.ttf"
    entry = fontcache.entry_path(path)
    fontcache.load_font("F", path)
    key, names, values = marshal.loads(entry.read_bytes())  # noqa: S302 (the test's own)
    values["unitsPerEm"] = 1  # what a wrong entry would give
    entry.write_bytes(marshal.dumps([stale(key), names, values]))
    parsed = []
    original = TTFontFile.extractInfo

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        parsed.append(self.filename)
        original(self, *args, **kwargs)

    monkeypatch.setattr(TTFontFile, "extractInfo", counting)
    font = fontcache.load_font("F", path)
    assert parsed == [str(path)]
    assert font.face.unitsPerEm == TTFont("F", str(path)).face.unitsPerEm != 1
    assert marshal.loads(entry.read_bytes())[0] == key  # noqa: S302 (rewritten for this font)


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal", marshal.dumps(["a list"]), marshal.dumps([[], ["name"], {}])],
)
def test_a_damaged_entry_is_parsed_again_and_rewritten(fonts: Path, content: bytes) -> None:
    path = fonts / "NotoSansThai-Bold.ttf"
    entry = fontcache.entry_path(path)
    entry.parent.mkdir()
    entry.write_bytes(content)
    font = fontcache.load_font("F", path)
    assert _face_state(font) == _face_state(TTFont("F", str(path)))
    assert entry.read_bytes() != content


def test_an_unwritable_cache_directory_means_no_entry(fonts: Path) -> None:
    """As a read-only image: the directory cannot be made (a file is in its way)."""
    path = fonts / "NotoSansThai-Regular.ttf"
    (fonts / fontcache.CACHE_DIR).write_bytes(b"")
    font = fontcache.load_font("F", path)
    assert _face_state(font) == _face_state(TTFont("F", str(path)))
    assert [p.name for p in fonts.iterdir() if p.name.startswith(".")] == []


_RENDER = """
import hashlib, sys
from invoiceflow.domain import parse_invoice
from invoiceflow.render import fontcache
from invoiceflow.render.pdf import render_pdf
if sys.argv[1] == "parse":
    fontcache._read = lambda entry, key: None  # ReportLab parses every font
    fontcache._write = lambda entry, key, values: None
for name in sys.argv[2:]:
    data = open(f"events/examples/invoices/{name}", "rb").read()
    print(hashlib.sha256(render_pdf(parse_invoice(data).invoice)).hexdigest())
"""


def test_fonts_from_the_cache_print_the_same_pdf_bytes() -> None:
    """Invariant PDFs (no clock): the same document, once with every font parsed by
    ReportLab and once read from the entries, in fresh processes."""
    examples = ["non-latin.json", "jpy-no-decimals.json", "ch-qr-bill.json"]
    subprocess.run(
        [sys.executable, "-m", "invoiceflow.render.fontcache"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    digests = {}
    for mode in ("parse", "cache"):
        out = subprocess.run(
            [sys.executable, "-c", _RENDER, mode, *examples],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        digests[mode] = out.stdout.split()
    assert len(digests["cache"]) == len(examples)
    assert digests["cache"] == digests["parse"]


def test_warm_writes_an_entry_per_font(fonts: Path) -> None:
    entries = fontcache.warm(fonts)
    assert [e.name for e in entries] == [f"{f.name}.marshal" for f in SHIPPED]
    assert all(e.is_file() for e in entries)


def test_an_entry_is_readable_by_every_user(fonts: Path) -> None:
    """The image writes the entries as root when it is built; its functions run as another
    user (a file mkstemp makes is 0600)."""
    path = fonts / "NotoSansHebrew-Bold.ttf"
    fontcache.load_font("F", path)
    assert fontcache.entry_path(path).stat().st_mode & 0o444 == 0o444


def test_an_entry_is_for_the_settings_reportlab_read_while_parsing(
    fonts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which fonts may be subset (``allowTTFSubsetting``) is part of the key: an entry made
    under other settings is not used."""
    from reportlab import rl_config

    path = fonts / "NotoSansHebrew-Bold.ttf"
    fontcache.load_font("F", path)
    before = fontcache.entry_path(path).read_bytes()
    monkeypatch.setattr(rl_config, "allowTTFSubsetting", [path.name])
    fontcache.load_font("F", path)
    assert fontcache.entry_path(path).read_bytes() != before  # parsed again, rewritten
