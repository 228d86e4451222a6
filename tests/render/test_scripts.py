"""Every script in the PDF (render/scripts.py): for each script a document whose parties, items
and notes use it is rendered, its text is read back with poppler's ``pdftotext`` in logical
order, every font is embedded (``pdffonts``), no glyph drawn is glyph 0 (.notdef), page 1
renders (pypdfium2), and right-to-left documents are mirrored."""

from __future__ import annotations

import html
import io
import re
import shutil
import struct
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

import pytest
from pypdf import PdfReader

from invoiceflow.domain.model import Invoice, LineItem, Party
from invoiceflow.errors import RenderError
from invoiceflow.render import scripts
from invoiceflow.render.pdf import render_pdf
from render.test_fonts_embedded import assert_all_embedded, fonts_of, shown_bytes
from support.services import fail_or_skip

Factory = Callable[..., Invoice]


@pytest.fixture(autouse=True)
def _poppler() -> None:
    """These tests read the PDFs back with poppler: under CI its absence is a failure."""
    if shutil.which("pdftotext") is None or shutil.which("pdffonts") is None:
        fail_or_skip("poppler-utils (pdftotext, pdffonts) is not installed: .ci/run installs it")


@dataclass(frozen=True)
class Sample:
    locale: str
    language: str | None
    seller: str
    address: str
    buyer: str
    item: str
    notes: str
    #: the font family that sets the script's text (with the default base, DejaVu Sans)
    family: str


SAMPLES = {
    "latin": Sample(
        "fr-FR",
        None,
        "Société Générale d’Études",  # noqa: RUF001  # the typographic apostrophe
        "12 rue de l’Église",  # noqa: RUF001
        "Zoë Łukasz Øster",
        "Crème brûlée façon Ünïcödé",
        "Merci beaucoup à tous",
        "DejaVuSans",
    ),
    "greek": Sample(
        "el-GR",
        None,
        "Εταιρεία Λογισμικού",
        "Οδός Ερμού 15",
        "Γιώργος Παπαδόπουλος",
        "Σχεδιασμός λογότυπου",
        "Ευχαριστούμε πολύ",
        "DejaVuSans",
    ),
    "cyrillic": Sample(
        "ru-RU",
        None,
        "ООО «Северный ветер»",  # noqa: RUF001  # Cyrillic O
        "ул. Тверская, 7",
        "Иван Петров",
        "Перевод каталога",
        "Спасибо за заказ",
        "DejaVuSans",
    ),
    "chinese": Sample(
        "zh-CN",
        None,
        "北京软件有限公司",
        "北京市海淀区中关村大街1号",
        "上海贸易公司",
        "软件开发服务",
        "谢谢惠顾",
        "DroidSansFallback",
    ),
    "japanese": Sample(
        "ja-JP",
        None,
        "株式会社サンプル",
        "東京都千代田区丸の内1-1",
        "山田太郎",
        "ソフトウェア開発",
        "ありがとうございます",
        "IPAexGothic",
    ),
    "korean": Sample(
        "ko-KR",
        None,
        "한국상사 주식회사",
        "서울특별시 중구 세종대로 110",
        "김민수",
        "소프트웨어 개발",
        "감사합니다",
        "DroidSansFallback",
    ),
    "arabic": Sample(
        "ar-EG",
        "ar",
        "شركة النور للتجارة",
        "شارع التحرير 12",
        "مؤسسة الأمل",
        "فاتورة رقم INV-2026-001 خدمات استشارية",
        "شكرا لتعاملكم معنا",
        "DejaVuSans",  # DejaVu Sans (the base family, tried first) has Arabic
    ),
    "hebrew": Sample(
        "he-IL",
        "he",
        "חברת השמש",
        "רחוב הרצל 12",
        "משה כהן",
        "שירותי ייעוץ מס׳ INV-7",  # noqa: RUF001  # Hebrew geresh
        "תודה רבה",
        "DejaVuSans",
    ),
    "thai": Sample(
        "th-TH",
        None,
        "บริษัท ไทยซอฟต์ จำกัด",
        "ถนนสุขุมวิท 21",
        "สมชาย ใจดี",
        "บริการที่ปรึกษา",
        "ขอบคุณที่ใช้บริการ",
        "NotoSansThai-Regular",
    ),
    "devanagari": Sample(
        "hi-IN",
        "hi",
        "भारतीय सॉफ्टवेयर कंपनी",
        "महात्मा गांधी मार्ग 12",
        "श्रीमती क्षमा त्रिपाठी",
        "परामर्श सेवाएँ",
        "आपके व्यापार के लिए धन्यवाद",
        "NotoSansDevanagari-Regular",
    ),
}


def _invoice(sample_invoice: Factory, s: Sample) -> Invoice:
    return sample_invoice(
        locale=s.locale,
        language=s.language,
        seller=Party(name=s.seller, address=(s.address,)),
        bill_to=Party(name=s.buyer, address=(s.address,)),
        items=(LineItem(s.item, D(2), D("150.00"), tax_rate=D(10)),),
        notes=s.notes,
        logo=None,
        ship_to=None,
        payment=None,
    )


# --------------------------------------------------------------------------------------------
# reading the PDF back with poppler
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    text: str  # logical order
    x0: float
    y0: float
    x1: float
    y1: float


def _rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(c) in ("R", "AL") for c in text)


_WORD = re.compile(
    r'<word xMin="(?P<x0>[\d.]+)" yMin="(?P<y0>[\d.]+)" xMax="(?P<x1>[\d.]+)" '
    r'yMax="(?P<y1>[\d.]+)">(?P<text>[^<]*)</word>'
)


def words(pdf: bytes, page: int = 1) -> list[Word]:
    """The words of a page as ``pdftotext -bbox`` sees them (poppler writes a right-to-left
    word in visual order: reversed back to logical order here)."""
    out = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), "-", "-"],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    found = []
    for m in _WORD.finditer(out):
        text = unicodedata.normalize("NFKC", html.unescape(m["text"]))
        found.append(
            Word(
                text[::-1] if _rtl(text) else text,
                float(m["x0"]),
                float(m["y0"]),
                float(m["x1"]),
                float(m["y1"]),
            )
        )
    return found


def reading_lines(pdf: bytes, rtl: bool) -> list[str]:
    """Page 1's text as lines (words whose boxes overlap vertically by half), each line's
    words in reading order: right to left in a right-to-left document (so its strings read
    back in logical order), else left to right."""
    lines: list[list[Word]] = []
    for w in sorted(words(pdf), key=lambda w: (w.y0 + w.y1) / 2):
        line = lines[-1] if lines else None
        if line is not None:
            top, bottom = max(x.y0 for x in line), min(x.y1 for x in line)
            overlap = min(bottom, w.y1) - max(top, w.y0)
            if overlap > 0.5 * min(w.y1 - w.y0, bottom - top):
                line.append(w)
                continue
        lines.append([w])
    return [
        " ".join(w.text for w in sorted(line, key=lambda w: -w.x1 if rtl else w.x0))
        for line in lines
    ]


def pdffonts(pdf: bytes) -> list[tuple[str, str]]:
    """(font name, its ``emb`` column) of every font ``pdffonts`` lists."""
    out = subprocess.run(
        ["pdffonts", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    rows = out.splitlines()[2:]
    found = []
    for row in rows:
        cols = row.split()
        # name type [subtype...] encoding emb sub uni object ID: emb is the 5th from the end
        found.append((cols[0], cols[-5]))
    return found


def subset_glyphs(font_file: bytes) -> list[int]:
    """The glyph id of every code of a ReportLab subset: its cmap is one (1, 0) format 6
    table mapping codes 0..n-1 to glyphs (``TTFontFile.makeSubset``)."""
    (num_tables,) = struct.unpack(">H", font_file[4:6])
    for i in range(num_tables):
        tag, _, offset, _ = struct.unpack(">4sIII", font_file[12 + 16 * i : 28 + 16 * i])
        if tag == b"cmap":
            fmt, _, _, first, count = struct.unpack(">5H", font_file[offset + 12 : offset + 22])
            assert (fmt, first) == (6, 0)
            return list(
                struct.unpack(f">{count}H", font_file[offset + 22 : offset + 22 + 2 * count])
            )
    raise AssertionError("the subset has no cmap")


def drawn_glyph_ids(pdf: bytes) -> dict[str, set[int]]:
    """Every glyph id drawn, per font: the codes each text operator shows, through the
    embedded subset's own cmap."""
    reader = PdfReader(io.BytesIO(pdf))
    by_resource: dict[str, Any] = {}
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for name, ref in resources["/Font"].items():
            by_resource[str(name)] = ref.get_object()
    glyphs: dict[str, list[int]] = {}
    for resource, font in by_resource.items():
        descriptor = font["/FontDescriptor"].get_object()
        glyphs[resource] = subset_glyphs(descriptor["/FontFile2"].get_object().get_data())
    drawn: dict[str, set[int]] = {}
    for resource, shown in shown_bytes(pdf):
        base = str(by_resource[resource]["/BaseFont"])
        drawn.setdefault(base, set()).update(glyphs[resource][code] for code in shown)
    return drawn


# --------------------------------------------------------------------------------------------
# every script
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", list(SAMPLES))
def test_every_script_reads_back_embedded_and_without_missing_glyphs(
    sample_invoice: Factory, script: str
) -> None:
    s = SAMPLES[script]
    inv = _invoice(sample_invoice, s)
    pdf = render_pdf(inv)
    rtl = scripts.right_to_left(inv)
    assert rtl == (script in ("arabic", "hebrew"))

    text = "\n".join(reading_lines(pdf, rtl))
    for expected in (s.seller, s.address, s.buyer, s.item, s.notes):
        assert unicodedata.normalize("NFKC", expected) in text, (expected, text)

    # every font embedded (pdffonts and the font dictionaries agree), the script's family
    # among them, no glyph 0 drawn
    listed = pdffonts(pdf)
    assert listed and all(emb == "yes" for _, emb in listed), listed
    families = {name.split("+", 1)[1] for name in assert_all_embedded(pdf)}
    assert s.family in families, families
    for font, gids in drawn_glyph_ids(pdf).items():
        assert 0 not in gids, f".notdef drawn in {font}"

    # page 1 renders, with ink where the seller's name is
    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    try:
        page = doc[0]
        image = page.render(scale=1).to_pil().convert("L")
        seller = next(w for w in words(pdf) if w.text in s.seller.split()[0])
        box = (int(seller.x0), int(seller.y0), int(seller.x1) + 1, int(seller.y1) + 1)
        assert image.crop(box).getextrema()[0] < 128, "the seller's name is not drawn"
    finally:
        doc.close()


def test_japanese_kanji_take_the_japanese_typeface_chinese_the_chinese_one(
    sample_invoice: Factory,
) -> None:
    kanji = "東京都"  # no kana: the document's language decides
    for locale, family in (("ja-JP", "IPAexGothic"), ("zh-CN", "DroidSansFallback")):
        inv = sample_invoice(locale=locale, language=None, items=(LineItem(kanji, D(1), D(1)),))
        pdf = render_pdf(inv)
        families = {name.split("+", 1)[1] for name in fonts_of(pdf)}
        assert family in families and families & {"IPAexGothic", "DroidSansFallback"} == {family}, (
            locale,
            families,
        )
        assert kanji in "\n".join(reading_lines(pdf, rtl=False))
    # language ja on a non-Japanese locale: Japanese forms too
    inv = sample_invoice(locale="en-US", language="ja", items=(LineItem(kanji, D(1), D(1)),))
    assert "IPAexGothic" in {n.split("+", 1)[1] for n in fonts_of(render_pdf(inv))}


def test_bold_script_text_takes_the_bold_face(sample_invoice: Factory) -> None:
    # the seller's name is set bold (the company style): its Devanagari in the bold face
    inv = _invoice(sample_invoice, SAMPLES["devanagari"])
    families = {n.split("+", 1)[1] for n in fonts_of(render_pdf(inv))}
    assert {"NotoSansDevanagari-Bold", "NotoSansDevanagari-Regular"} <= families


# --------------------------------------------------------------------------------------------
# mirrored layout
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["arabic", "hebrew"])
def test_a_right_to_left_document_is_mirrored(sample_invoice: Factory, script: str) -> None:
    s = SAMPLES[script]
    inv = _invoice(sample_invoice, s)
    pdf = render_pdf(inv)
    page_w = float(PdfReader(io.BytesIO(pdf)).pages[0].mediabox.width)
    found = words(pdf)

    def word(text: str) -> Word:
        return next(w for w in found if w.text == text)

    # the items table: the amount column left of the description column
    amount = word("300.00") if any(w.text == "300.00" for w in found) else None
    assert amount is not None, [w.text for w in found]
    # the item's first word on the amount's row (the same word may be a label elsewhere)
    item_word = min(
        (w for w in found if w.text == s.item.split()[0]), key=lambda w: abs(w.y0 - amount.y0)
    )
    assert amount.x1 < item_word.x0
    # the description is right-aligned in its cell: it ends near the page's right margin
    assert item_word.x1 > page_w * 0.8
    # the seller (header) on the right, the totals block on the left
    assert word(s.seller.split()[0]).x0 > page_w / 2
    balance = max((w for w in found if w.text.startswith("-") or "€" in w.text), key=lambda w: w.y0)
    assert balance.x1 < page_w / 2, balance
    # the bill-to panel is on the right
    assert word(s.buyer.split()[0]).x0 > page_w / 2


def test_a_left_to_right_document_is_not_mirrored(sample_invoice: Factory) -> None:
    s = SAMPLES["latin"]
    pdf = render_pdf(_invoice(sample_invoice, s))
    page_w = float(PdfReader(io.BytesIO(pdf)).pages[0].mediabox.width)
    found = words(pdf)
    item_word = next(w for w in found if w.text == "Crème")
    amount = next(w for w in found if w.text.startswith("300,00"))
    assert item_word.x1 < amount.x0
    assert next(w for w in found if w.text == "Société").x0 < page_w / 2


def test_numbers_and_latin_inside_right_to_left_text_keep_their_order() -> None:
    chain = scripts.FontChain(rtl=True)
    text = "فاتورة رقم INV-2026-001 بتاريخ 2026/03/05"
    runs = scripts.layout_line(text, chain, rtl=True)
    # visual order, left to right: the date, then the number, then the Arabic words' glyphs
    visual = "".join(
        scripts.to_unicode_text(_ps(g.font), ord(c)) or c for g in runs for c in g.codes
    )
    assert visual.startswith("2026/03/05")
    assert "INV-2026-001" in visual
    assert visual.index("2026/03/05") < visual.index("INV-2026-001")


def _ps(font: str) -> str:
    from reportlab.pdfbase import pdfmetrics

    name = pdfmetrics.getFont(font).face.name
    return name.decode() if isinstance(name, bytes) else str(name)


# --------------------------------------------------------------------------------------------
# fonts per run, coverage
# --------------------------------------------------------------------------------------------


def test_each_run_takes_the_first_family_that_has_it() -> None:
    dejavu = scripts.FontChain()
    runs = dejavu.runs("Hello ไทย मराठी 中文")
    assert "".join(t for _, t in runs) == "Hello ไทย मराठी 中文"
    by_text = {t.strip(): f.regular for f, t in runs}
    assert by_text["ไทย"] == "NotoSansThai"
    assert by_text["मराठी"] == "NotoSansDevanagari"
    assert by_text["中文"] == "DroidSansFallback"
    liberation = scripts.FontChain(
        scripts.Face(
            "LiberationSans",
            "LiberationSans-Bold",
            "LiberationSans-Regular.ttf",
            "LiberationSans-Bold.ttf",
        )
    )
    # Liberation Sans has Hebrew but no Arabic: Noto Sans Arabic takes the Arabic word
    arabic = {t.strip(): f.regular for f, t in liberation.runs("Total مجموع שלום")}
    assert arabic == {
        "Total": "LiberationSans",
        "مجموع": "NotoSansArabic",
        "שלום": "LiberationSans",
    }
    # digits in a CJK word stay in the base family (Droid Sans Fallback has none)
    date = [(f.regular, t) for f, t in dejavu.runs("2026年3月5日")]
    assert date == [
        ("DejaVuSans", "2026"),
        ("DroidSansFallback", "年"),
        ("DejaVuSans", "3"),
        ("DroidSansFallback", "月"),
        ("DejaVuSans", "5"),
        ("DroidSansFallback", "日"),
    ]


def test_characters_no_font_has_are_named() -> None:
    assert scripts.unprintable("ok \U0001f600 \U0001d11e x \U000e0100\U0001d11e") == [
        "\U0001d11e",
        "\U000e0100",
    ]
    assert scripts.unprintable("Zoë 中文 ไทย عربي") == []
    assert scripts.unprintable("\ue000") == ["\ue000"]  # private use: no font counts it
    with pytest.raises(RenderError, match=r"U\+1D11E cannot be printed in the PDF"):
        scripts.FontChain().runs("clef \U0001d11e")


@pytest.mark.parametrize(
    ("language", "rtl"),
    [("ar", True), ("he", True), ("fa", True), ("ur", True), ("en", False), ("ja", False)],
)
def test_the_direction_follows_the_language(
    sample_invoice: Factory, language: str, rtl: bool
) -> None:
    assert scripts.right_to_left(sample_invoice(language=language)) is rtl
    # without a language, the locale's
    assert scripts.right_to_left(sample_invoice(locale=f"{language}-001", language=None)) is rtl


def test_plain_table_strings_that_need_layout_become_paragraphs(sample_invoice: Factory) -> None:
    # a label in Arabic (the view's labels may be) is shaped and set right to left like any
    # other text: ReportLab would draw a plain string unshaped, left to right
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.platypus import Paragraph, TableStyle

    from invoiceflow.render import pdf as pdf_module

    ctx = pdf_module._Ctx(sample_invoice(language="ar"))
    cmds = [("FONT", (0, 0), (-1, -1), "DejaVuSans-Bold", 9), ("ALIGN", (1, 0), (1, 0), "RIGHT")]
    table = pdf_module._table(
        ctx, [["المجموع", "Total"]], colWidths=[100, 100], style=TableStyle(cmds)
    )
    # mirrored: the Arabic label is now the second column, right-aligned (a right-to-left
    # document's default), the Latin one the first, aligned left (its RIGHT swapped)
    arabic, latin = table._cellvalues[0][1], table._cellvalues[0][0]
    assert latin == "Total"
    assert isinstance(arabic, Paragraph)
    assert arabic.style.fontName == "DejaVuSans-Bold" and arabic.style.fontSize == 9
    assert arabic.style.alignment == TA_RIGHT
    assert table._cellStyles[0][0].alignment == "LEFT"
    data = render_pdf(sample_invoice(language="ar", notes="المجموع"))
    assert "المجموع" in "\n".join(reading_lines(data, rtl=True))


def _glyphs(text: str, rtl: bool | None = None) -> list[tuple[int, str]]:
    """(glyph id, the text its code extracts as) of each glyph drawn, left to right."""
    from reportlab.pdfbase import pdfmetrics

    out = []
    for run in scripts.layout_line(text, scripts.FontChain(), rtl=rtl):
        face = pdfmetrics.getFont(run.font).face
        for c in run.codes:
            code = ord(c)
            out.append((face.charToGlyph[code], scripts.to_unicode_text(_ps(run.font), code) or c))
    return out


def test_shaping_joins_arabic_and_reorders_devanagari() -> None:
    dejavu = scripts.register_font("DejaVuSans", "DejaVuSans.ttf").face.charToGlyph
    # Arabic: three joined forms (none of them the isolated letter), drawn right to left
    beit = _glyphs("بيت")
    assert [t for _, t in beit] == ["ت", "ي", "ب"]
    assert all(gid != dejavu[ord(t)] for gid, t in beit)
    # lam-alef: one ligature glyph standing for both letters (written in visual order, as
    # poppler and pdfium read a right-to-left glyph's text)
    assert [t for _, t in _glyphs("لا")] == ["ال"]
    # Devanagari: the i-matra is drawn before its consonant but extracts after it
    noto = scripts.register_font("NotoSansDevanagari", "NotoSansDevanagari-Regular.ttf")
    noto = noto.face.charToGlyph
    ki = _glyphs("कि")
    assert [t for _, t in ki] == ["क", "ि"]
    assert ki[0][0] != noto[ord("क")] and ki[1][0] == noto[ord("क")]
    # a conjunct (ksha) is fewer glyphs than characters
    assert len(_glyphs("क्ष")) < 3
    assert "".join(t for _, t in _glyphs("क्ष")) == "क्ष"


def test_a_wrapped_right_to_left_paragraph_reads_on_from_line_to_line(
    sample_invoice: Factory,
) -> None:
    # lines are broken in logical order before each is reordered: the first words are on the
    # first line (at its right end), the text continues on the next line
    vocabulary = "شكرا لكم على ثقتكم الكبيرة في خدماتنا ونتطلع إلى العمل معكم مرة أخرى".split()
    note = " ".join(vocabulary * 4)
    # one line item: the notes on page 1 (reading_lines reads page 1)
    one = (LineItem("استشارات", D(1), D(100)),)
    pdf = render_pdf(sample_invoice(language="ar", notes=note, items=one))
    lines = [
        line
        for line in reading_lines(pdf, rtl=True)
        if line and set(line.split()) <= set(vocabulary)
    ]
    assert len(lines) >= 2, lines
    assert " ".join(lines) == note


def test_shaped_headings_and_labels_are_laid_out_in_the_font_they_are_drawn_in(
    sample_invoice: Factory,
) -> None:
    """Shaped glyphs are code points of one font object: a heading drawn bold must be shaped
    with the bold face (it once was shaped with the regular one, and its codes then showed
    other glyphs, or .notdef, in the bold font). Each fragment's code points read back, in
    the font it is drawn in, as the label's characters."""
    from reportlab.pdfbase import pdfmetrics

    from invoiceflow.render import pdf as pdf_module

    ctx = pdf_module._Ctx(sample_invoice(language="ar"))
    for text, para in (
        ("المبلغ الإجمالي", ctx.heading("المبلغ الإجمالي", 5.0)),
        ("تاريخ الإصدار", ctx.label("تاريخ الإصدار", 5.0)),
    ):
        assert not isinstance(para, str)
        para.wrap(200, 100)
        read = []
        for frag in para.frags:
            face = pdfmetrics.getFont(frag.fontName).face
            name = face.name.decode() if isinstance(face.name, bytes) else str(face.name)
            actual = scripts._ACTUAL_TEXT.get(name, {})
            for ch in frag.text:
                assert ord(ch) in face.charToGlyph, (frag.fontName, hex(ord(ch)))
                read.append(actual.get(ord(ch), ch))
        assert sorted("".join(read).replace(" ", "")) == sorted(text.replace(" ", ""))


def test_the_girocode_caption_reads_back_in_arabic() -> None:
    """The GiroCode's caption in a script payqr's one font cannot draw is laid out as all the
    document's text (shaped, right to left) beside the bare code."""
    from support.einvoice_samples import german_b2b

    pdf = render_pdf(german_b2b(language="ar"))
    caption = "ادفع باستخدام تطبيق البنك"
    assert any(caption in line for line in reading_lines(pdf, rtl=True)), reading_lines(
        pdf, rtl=True
    )
    assert_all_embedded(pdf)
