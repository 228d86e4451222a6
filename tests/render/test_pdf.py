"""The PDF renderer, checked through the text, fonts, images and metadata of the PDF it makes
(pypdf), not just that bytes come out."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast

import pytest
from pypdf import PdfReader

from invoiceflow.domain.model import Discount, Invoice, LineItem, Logo, Party, PaymentDetails
from invoiceflow.domain.totals import compute_totals
from invoiceflow.errors import PermanentError, RenderError
from invoiceflow.render import localize
from invoiceflow.render.content import tax_line_label
from invoiceflow.render.pdf import render_pdf

Factory = Callable[..., Invoice]
HERE = Path(__file__).resolve().parent


def page_fonts(pdf: bytes) -> Any:
    """The font dictionary of page 1 (pypdf types its objects loosely)."""
    resources: Any = PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]
    return resources["/Font"]


def norm(text: str) -> str:
    """Extracted text as one line: no-break spaces and line breaks (pypdf puts every table
    cell on a line of its own) as single spaces."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " ")).strip()


def squash(text: str) -> str:
    """Without any whitespace (for long strings the PDF wraps over lines)."""
    return re.sub(r"\s+", "", text.replace("\u00a0", " "))


def pages_text(pdf: bytes) -> list[str]:
    return [norm(p.extract_text()) for p in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def sample_pdf(sample_invoice: Factory) -> bytes:
    return render_pdf(sample_invoice())


@pytest.fixture(scope="module")
def long_pdf(sample_invoice: Factory) -> tuple[Invoice, bytes]:
    inv = sample_invoice(n_items=300)
    return inv, render_pdf(inv)


# ----------------------------------------------------------------------------- totals


def test_totals_and_tax_lines_are_printed_formatted(
    sample_invoice: Factory, sample_pdf: bytes
) -> None:
    inv = sample_invoice()
    t = compute_totals(inv)
    text = "\n".join(pages_text(sample_pdf))
    # the figures of compute_totals, formatted for de-DE
    for amount in (
        t.subtotal,
        t.shipping,
        t.total,
        t.balance_due,
        -t.discount,
        -t.amount_paid,
        -t.line_discounts,
        *(g.tax for g in t.tax_breakdown),
    ):
        assert norm(localize.money(amount, inv)) in text
    for g in t.tax_breakdown:
        assert norm(tax_line_label(g, inv)) in text
    # and spelled out, so a formatting regression cannot hide behind fmt
    for line in (
        "Subtotal 3.506,90 €",
        "incl. line discounts -76,50 €",
        "Discount (5 %) -175,35 €",
        "Shipping (VAT 19 %) 25,00 €",
        "VAT 7 % on 221,82 € 15,53 €",
        "VAT 19 % on 3.134,73 € 595,60 €",
        "Total 3.967,68 €",
        "Amount paid -500,00 €",
        "Balance due 3.467,68 €",
    ):
        assert line in text, line


def test_items_meta_parties_payment_and_notes(sample_pdf: bytes) -> None:
    text = pages_text(sample_pdf)[0]
    for expected in (
        "INVOICE",
        "Invoice number INV-2026-0042",
        "Issue date 05.03.2026",
        "Due date 04.04.2026",
        "Payment terms Net 30",
        "Nordlicht Software GmbH",
        "Tax ID: DE123456789",
        "BILL TO",
        "SHIP TO",
        "Acme Warehouse",
        "IBAN DE89370400440532013000",
        "BIC COBADEFFXXX",
        "NOTES",
        "Thank you for your business!",
        "TERMS AND CONDITIONS",
        # a line: quantity with unit, unit price, rate, discount, amount
        "6,5 h 110,00 € 19 % 10 % 643,50 €",
        "10 pcs 12,00 € 7 % 5,00 € 115,00 €",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    # the long description is wrapped inside its cell, not cut
    assert "Software development (sprint 12)," in text
    assert "backend API and database migrations" in text


def test_optional_blocks_are_left_out(sample_invoice: Factory) -> None:
    untaxed = tuple(replace(it, tax_rate=None, discount=None) for it in sample_invoice().items)
    inv = sample_invoice(
        items=untaxed,
        ship_to=None,
        discount=None,
        shipping=D(0),
        amount_paid=D(0),
        payment=None,
        notes=None,
        terms=None,
        logo=None,
        due_date=None,
        payment_terms=None,
    )
    text = "\n".join(pages_text(render_pdf(inv)))
    for absent in (
        "SHIP TO",
        "VAT",
        "Discount",
        "Shipping",
        "Amount paid",
        "PAYMENT DETAILS",
        "NOTES",
        "TERMS",
        "Due date",
        "line discounts",
    ):
        assert absent not in text, absent
    assert "# SKU Description Qty Unit price Amount" in text  # no Tax, no Discount column
    total = norm(localize.money(compute_totals(inv).total, inv))
    assert f"Total {total}" in text and f"Balance due {total}" in text


# ----------------------------------------------------------------------------- pages


def test_300_lines_span_pages_with_header_and_numbering(long_pdf: tuple[Invoice, bytes]) -> None:
    inv, pdf = long_pdf
    texts = pages_text(pdf)
    n = len(texts)
    assert 8 <= n <= 14  # about 45 lines a page
    for i, text in enumerate(texts, start=1):
        assert f"Page {i} of {n}" in text
        # the header row is repeated on every page that holds lines
        if i < n or "SKU-" in text:
            for label in ("#", "SKU", "Description", "Qty", "Unit price", "Tax", "Amount"):
                assert label in text
    assert "Page 2 of" in texts[1] and "continued" in texts[1]
    # every line exactly once, in order, and the totals only at the end
    skus = [m for t in texts for m in re.findall(r"SKU-\d{5}", t)]
    assert skus == [it.sku for it in inv.items]
    assert "Balance due" in texts[-1]
    assert all("Balance due" not in t for t in texts[:-1])


def test_header_row_is_bold_white_on_navy_on_later_pages(long_pdf: tuple[Invoice, bytes]) -> None:
    page = PdfReader(io.BytesIO(long_pdf[1])).pages[1]
    fonts: dict[str, str] = {}

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip() in ("Description", "Unit price", "SKU-00030") and font:
            fonts[text.strip()] = str(font.get("/BaseFont"))

    page.extract_text(visitor_text=visit)
    assert fonts["Description"].endswith("DejaVuSans-Bold")
    assert fonts["Unit price"].endswith("DejaVuSans-Bold")
    assert fonts["SKU-00030"].endswith("+DejaVuSans")
    content = page.get_contents().get_data()  # type: ignore[union-attr]
    # a navy (#1F3A5F) band across the table, white text on it, every other row shaded
    assert re.search(rb"\.121569 \.227451 \.372549 rg\s+n 0 [\d.]+ 493\.2283 -[\d.]+ re f", content)
    assert re.search(rb"1 1 1 rg\s+BT [^\n]* \(#\) Tj", content)
    shaded = re.findall(rb"\.933333 \.94902 \.968627 rg\s+n 0 [\d.]+ 493\.2283", content)
    assert 10 <= len(shaded) <= 25


def test_page_size_follows_the_locale(sample_invoice: Factory, sample_pdf: bytes) -> None:
    a4 = PdfReader(io.BytesIO(sample_pdf)).pages[0].mediabox
    assert (round(float(a4.width)), round(float(a4.height))) == (595, 842)
    us = render_pdf(sample_invoice(locale="en-US", currency="USD"))
    letter = PdfReader(io.BytesIO(us)).pages[0].mediabox
    assert (round(float(letter.width)), round(float(letter.height))) == (612, 792)


# ----------------------------------------------------------------------------- locales


def test_jpy_invoice_has_no_decimals(sample_invoice: Factory) -> None:
    items = (
        LineItem("Consulting", D(3), D(1234), tax_rate=D(10)),
        LineItem("Licence", D(1), D(50000), tax_rate=D(8)),
    )
    inv = sample_invoice(
        items=items,
        currency="JPY",
        locale="en-US",
        shipping=D(500),
        shipping_tax_rate=D(10),
        amount_paid=D(0),
        discount=None,
    )
    text = "\n".join(pages_text(render_pdf(inv)))
    for expected in (
        "¥1,234",
        "¥3,702",
        "¥50,000",
        "¥500",
        "Subtotal ¥53,702",
        "Sales tax 8% on ¥50,000 ¥4,000",
        "Sales tax 10% on ¥4,202 ¥420",
        "Total ¥58,622",
    ):
        assert expected in text, expected
    assert not re.search(r"¥[\d,]+\.\d", text)


def test_japanese_invoice_uses_the_embedded_cjk_font(sample_invoice: Factory) -> None:
    seller = Party(
        name="山田太郎", company="株式会社サンプル", address=("東京都千代田区丸の内1-1-1",)
    )
    items = (
        LineItem(
            "ソフトウェア開発 (Software) 第12スプリント",
            D(10),
            D(12000),
            unit="時間",
            tax_rate=D(10),
        ),
    )
    inv = sample_invoice(
        seller=seller,
        items=items,
        currency="JPY",
        locale="ja-JP",
        shipping=D(0),
        amount_paid=D(0),
        discount=None,
        notes="お支払いは30日以内にお願いします。",
    )
    pdf = render_pdf(inv)
    text = "\n".join(pages_text(pdf))
    for expected in (
        "株式会社サンプル",
        "山田太郎",
        "ソフトウェア開発 (Software) 第12スプリント",
        "お支払いは30日以内にお願いします。",
        "¥12,000",
        "¥120,000",
        "2026/03/05",
        "Consumption tax 10% on ¥120,000 ¥12,000",
    ):
        assert expected in text, expected
    fonts = {str(f["/BaseFont"]) for f in page_fonts(pdf).values()}
    # Japanese text takes the Japanese typeface (Droid Sans Fallback's Kanji are Chinese forms)
    assert any(f.endswith("+IPAexGothic") for f in fonts), fonts
    assert not any(f.endswith("+DroidSansFallback") for f in fonts), fonts


def test_kwd_three_decimals_and_no_bidi_marks(sample_invoice: Factory) -> None:
    items = (LineItem("Service", D(2), D("12.3455"), tax_rate=D(5)),)
    inv = sample_invoice(
        items=items, currency="KWD", locale="ar-KW", shipping=D(0), amount_paid=D(0), discount=None
    )
    text = "\n".join(pages_text(render_pdf(inv)))
    assert "12.3455" in text  # the unit price as given
    assert "24.691" in text  # the line amount, 3 decimals
    assert "25.926" in text  # total incl. 5 % tax (1.235)
    assert "\u200f" not in text and "\u200e" not in text


def test_latin_greek_cyrillic_names_are_extractable(sample_invoice: Factory) -> None:
    ship = Party(name="Ελλάδα Εμπορική", address=("ул. Тверская, 1", "Москва", "Россия"))
    items = (LineItem("Ψηφιακές υπηρεσίες — Цифровые услуги — Łódź", D(1), D(10), tax_rate=D(19)),)
    text = "\n".join(pages_text(render_pdf(sample_invoice(ship_to=ship, items=items))))
    for name in (
        "Zoë Łukasz",
        "Ελλάδα",
        "Москва",
        "ул. Тверская, 1",
        "Ψηφιακές υπηρεσίες — Цифровые услуги — Łódź",
        "Friedrichstraße",
    ):
        assert name in text, name


def test_fonts_are_embedded_from_the_package(sample_pdf: bytes) -> None:
    fonts = page_fonts(sample_pdf)
    embedded = [
        f for f in fonts.values() if "/FontDescriptor" in f and "/FontFile2" in f["/FontDescriptor"]
    ]
    assert {str(f["/BaseFont"]).split("+")[1] for f in embedded} == {
        "DejaVuSans",
        "DejaVuSans-Bold",
    }
    assert (HERE.parents[1] / "functions/invoiceflow/render/fonts/LICENSE.txt").is_file()


# ----------------------------------------------------------------------------- safety

HOSTILE = [
    '<img src="http://127.0.0.1:9/x.png" width="10" height="10"/>',
    '<img src="/etc/passwd"/>',
    '<a href="http://evil.example/">click</a>',
    '<link href="file:///etc/passwd">l</link>',
    '<font color="red" face="Courier">red</font>',
    "AT&T &amp; &lt;b&gt; &#65; &nbsp; &unknown;",
    # CVE-2023-33733: code in a colour attribute evaluated by rl_safe_eval
    "<font color=\"[[[getattr(pow, Word('__globals__'))['os'].system('touch /tmp/rl-pwned') "
    "for Word in [ orgTypeFun( 'Word', (str,), { 'mutated': 1 } ) ] ] "
    "for orgTypeFun in [type(type(1))] ] and 'red'\">exploit</font>",
    "<b>bold</b><br/><para>x</para><![CDATA[ y ]]>",
]


def _hostile_invoice(sample_invoice: Factory) -> Invoice:
    h = HOSTILE
    party = Party(name=h[0], company=h[2], address=tuple(h), email=h[3], phone=h[5], tax_id=h[6])
    items = tuple(LineItem(x, D(1), D("1.00"), unit=x[:12], sku=x[:40], tax_rate=D(19)) for x in h)
    return sample_invoice(
        number="<b>N&1</b>",
        seller=party,
        bill_to=party,
        ship_to=party,
        items=items,
        payment_terms=h[2],
        notes="\n".join(h),
        terms=h[6],
        logo=None,
        payment=PaymentDetails(h[0], h[1], h[2], h[3], h[4], h[5]),
    )


def test_markup_in_any_field_prints_literally_and_opens_nothing(
    sample_invoice: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = _hostile_invoice(sample_invoice)
    render_pdf(inv)  # warm up: fonts are read from the package once per process
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args!r}")
            raise OSError(f"rendering must not use {what}")

        return _refuse

    monkeypatch.setattr(socket, "socket", refuse("socket"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(urllib.request, "urlopen", refuse("urlopen"))
    monkeypatch.setattr(builtins, "open", refuse("open"))
    monkeypatch.setattr(io, "open", refuse("io.open"))
    monkeypatch.setattr(os, "open", refuse("os.open"))
    pdf = render_pdf(inv)
    monkeypatch.undo()
    assert attempts == []

    reader = PdfReader(io.BytesIO(pdf))
    text = squash("\n".join(p.extract_text() for p in reader.pages))
    for payload in HOSTILE:
        assert squash(payload) in text, payload
    assert squash("<b>N&1</b>") in text
    for page in reader.pages:
        assert not page.images  # no <img> was honoured
        assert "/Annots" not in page  # no <a href>/<link> became a link
    assert b"/URI" not in pdf and not re.search(rb"/Subtype\s*/Image", pdf)
    assert not Path("/tmp/rl-pwned").exists()


# ----------------------------------------------------------------------------- logo


def test_logo_is_embedded_scaled(sample_pdf: bytes) -> None:
    images = PdfReader(io.BytesIO(sample_pdf)).pages[0].images
    assert len(images) == 1
    assert images[0].image is not None and images[0].image.size == (96, 96)


def test_jpeg_logo(sample_invoice: Factory) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 100), (31, 58, 95)).save(buf, "JPEG")
    pdf = render_pdf(sample_invoice(logo=Logo("image/jpeg", buf.getvalue())))
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 1


@pytest.mark.parametrize(("fmt", "orientation"), [("JPEG", 6), ("JPEG", 8), ("PNG", 6)])
def test_a_logo_is_drawn_the_way_its_exif_orientation_says(
    sample_invoice: Factory, fmt: str, orientation: int
) -> None:
    """A phone's photo is stored sideways with an EXIF Orientation tag (6: turn 90 degrees
    clockwise, 8: counter-clockwise): a logo stored 300x100 with such a tag is drawn upright,
    taller than wide, its top (red) at the top. It was drawn as stored, lying on its side."""
    import pypdfium2 as pdfium
    from PIL import Image

    im = Image.new("RGB", (300, 100), (255, 255, 255))
    # the stored image's top row is what the upright logo shows at its top once turned: for
    # 6 the stored left column, for 8 the stored right column
    top = (0, 0, 20, 100) if orientation == 6 else (280, 0, 300, 100)
    im.paste((255, 0, 0), top)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, fmt, exif=exif.tobytes())
    media = "image/jpeg" if fmt == "JPEG" else "image/png"
    pdf = render_pdf(sample_invoice(logo=Logo(media, buf.getvalue())))  # type: ignore[arg-type]
    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[0]
        image = next(o for o in page.get_objects() if o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE)
        left, bottom, right, top_y = image.get_bounds()
        assert top_y - bottom > 2 * (right - left), (left, bottom, right, top_y)
        height = page.get_height()
        bitmap = page.render(scale=2).to_pil().convert("RGB")
        x = int(left + right)  # the middle, at scale 2
        near_top = int(2 * (height - top_y) + 4)
        near_bottom = int(2 * (height - bottom) - 4)
        red, green, _ = bitmap.getpixel((x, near_top))
        assert red > 200 and green < 80, bitmap.getpixel((x, near_top))
        assert bitmap.getpixel((x, near_bottom))[1] > 200  # white at the bottom
    finally:
        doc.close()


def _logo_pixel(pdf: bytes) -> tuple[int, ...]:
    """The colour in the middle of the logo (the only image, top left), rendered by pdfium."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[0]
        image = next(o for o in page.get_objects() if o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE)
        left, bottom, right, top = image.get_bounds()
        height = page.get_height()
        bitmap = page.render(scale=2).to_pil().convert("RGB")
        x, y = (left + right), 2 * height - (bottom + top)  # the centre, at scale 2
        return tuple(bitmap.getpixel((int(x), int(y))))
    finally:
        doc.close()


@pytest.mark.parametrize(
    ("mode", "fmt", "colour", "expected"),
    [
        pytest.param("CMYK", "JPEG", (0, 255, 255, 0), (255, 0, 0), id="cmyk-red"),
        pytest.param("I;16", "PNG", 32896, (128, 128, 128), id="grey16-half"),
        pytest.param("1", "PNG", 1, (255, 255, 255), id="bilevel-white"),
        pytest.param("RGB", "JPEG", (0, 0, 255), (0, 0, 255), id="rgb-blue"),
    ],
)
def test_logo_colour_modes_print_their_colours(
    sample_invoice: Factory, mode: str, fmt: str, colour: Any, expected: tuple[int, ...]
) -> None:
    """A CMYK JPEG and a 16-bit or bilevel PNG are converted to RGB or grey before ReportLab
    gets them (no /DeviceCMYK; 16-bit grey scaled, not clipped to white)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (60, 30), colour).save(buf, fmt)
    media = "image/jpeg" if fmt == "JPEG" else "image/png"
    pdf = render_pdf(sample_invoice(logo=Logo(media, buf.getvalue())))  # type: ignore[arg-type]
    assert b"/DeviceCMYK" not in pdf
    pixel = _logo_pixel(pdf)
    assert all(abs(a - b) <= 8 for a, b in zip(pixel, expected, strict=True)), pixel


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"definitely not an image", "not a PNG or JPEG"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "not a PNG or JPEG"),
        ("truncated", "damaged"),
        ("huge", "too many pixels"),
    ],
)
def test_undecodable_logo_is_a_render_error(
    sample_invoice: Factory, logo_png: bytes, data: bytes | str, message: str
) -> None:
    if data == "truncated":
        data = logo_png[:120]
    elif data == "huge":  # 20000 x 20000 pixels in a few bytes
        import struct
        import zlib

        def chunk(kind: bytes, body: bytes) -> bytes:
            return (
                struct.pack(">I", len(body))
                + kind
                + body
                + struct.pack(">I", zlib.crc32(kind + body))
            )

        data = (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + chunk(b"IEND", b"")
        )
    assert isinstance(data, bytes)
    with pytest.raises(RenderError, match=message) as err:
        render_pdf(sample_invoice(logo=Logo("image/png", data)))
    assert isinstance(err.value, PermanentError)
    if message == "damaged":  # the owner sees this: no library's message after it
        assert err.value.detail == "the logo image is damaged and cannot be decoded"


def test_unknown_locale_is_a_render_error(sample_invoice: Factory) -> None:
    with pytest.raises(RenderError):
        render_pdf(sample_invoice(locale="xx-YY"))


# ----------------------------------------------------------------------------- output


def test_same_document_same_bytes(sample_invoice: Factory, sample_pdf: bytes) -> None:
    again = render_pdf(sample_invoice())
    assert again == sample_pdf
    other = render_pdf(sample_invoice(number="INV-2026-0043"))
    ids = [cast(Any, PdfReader(io.BytesIO(p)).trailer)["/ID"][0] for p in (sample_pdf, other)]
    assert ids[0] != ids[1]


def test_same_bytes_in_another_process(sample_pdf: bytes) -> None:
    code = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]); "
        "from conftest import make_invoice; "
        "from invoiceflow.render.pdf import render_pdf; "
        "print(hashlib.sha256(render_pdf(make_invoice())).hexdigest())"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
        "SOURCE_DATE_EPOCH": "1000000000",
        "TZ": "Pacific/Auckland",
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(HERE)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == hashlib.sha256(sample_pdf).hexdigest()


def test_metadata(sample_pdf: bytes) -> None:
    meta = PdfReader(io.BytesIO(sample_pdf)).metadata
    assert meta is not None
    assert meta.title == "Invoice INV-2026-0042"
    assert meta.author == "Anna Schmidt"
    assert meta.subject == "Invoice INV-2026-0042, 05.03.2026, Acme Trading Ltd."
    assert meta.creator == "invoiceflow"
    assert str(meta["/CreationDate"]) == "D:20260305000000+00'00'"
    assert str(meta["/ModDate"]) == "D:20260305000000+00'00'"


def test_extreme_content_still_lays_out(sample_invoice: Factory) -> None:
    long = ("Lorem ipsum dolor sit amet " * 40)[:1000]
    word = "X" * 1000
    party = Party(
        name=long, company=word, address=(long,) * 9 + (word,), email=word, phone=long, tax_id=long
    )
    items = (
        LineItem("\n" * 600 + "the end", D(1), D(1)),
        LineItem(
            long,
            D("1.5"),
            D("2"),
            unit=long,
            sku=word,
            tax_rate=D("19"),
            discount=Discount("amount", D(1)),
        ),
        LineItem(word, D(1), D(1)),
        LineItem("controls\x00\x07\x1b and a lone surrogate \ud800\ufeff\r\nend", D(1), D(1)),
    )
    party = replace(party, name="Zoë \ud83d\x00" + long)
    inv = sample_invoice(
        seller=party,
        bill_to=party,
        ship_to=party,
        items=items,
        notes=long,
        terms=word,
        payment_terms=long,
        number="N" * 100,
        payment=PaymentDetails(long, long, long, long, long, long),
    )
    texts = pages_text(render_pdf(inv))
    assert len(texts) > 5
    assert "the end" in "".join(texts)
    assert "controls and a lone surrogate \ufffd end" in " ".join(texts)
    balance = norm(localize.money(compute_totals(inv).balance_due, inv))
    assert f"Balance due {balance}" in " ".join(texts)
