"""The renderers check their own output (issue 9, finding 5): a workbook whose XML does not
parse, or a PDF without its header, trailer or cross-reference table, is a RenderError (the
step fails for good and the invoice is ``failed``), never a file behind a ``ready`` invoice.

Validation rejects U+FFFE/U+FFFF today; these tests hand the renderer an invoice that skipped
validation (as one stored by an older version would), so the renderer's own check is what
stands between that text and a broken file.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from invoiceflow.domain.model import Invoice
from invoiceflow.errors import RenderError
from invoiceflow.render.pdf import check_pdf, render_pdf
from invoiceflow.render.xlsx import check_workbook, render_xlsx

MakeInvoice = Callable[..., Invoice]


def _with_text(inv: Invoice, text: str) -> list[Invoice]:
    """The invoice with ``text`` in each kind of place that reaches the workbook."""
    item = dataclasses.replace(inv.items[0], description=inv.items[0].description + text)
    return [
        dataclasses.replace(inv, notes=f"notes {text}"),
        dataclasses.replace(inv, number=f"INV{text}1"),
        dataclasses.replace(inv, items=(item, *inv.items[1:])),
        dataclasses.replace(inv, seller=dataclasses.replace(inv.seller, name=f"S{text}")),
    ]


@pytest.mark.parametrize("char", ["\ufffe", "\uffff"])
def test_a_workbook_that_is_not_xml_is_a_render_error(
    sample_invoice: MakeInvoice, char: str
) -> None:
    for inv in _with_text(sample_invoice(), char):
        with pytest.raises(RenderError, match="not well-formed XML"):
            render_xlsx(inv)


def test_a_good_workbook_passes_its_check(sample_invoice: MakeInvoice) -> None:
    data = render_xlsx(sample_invoice())
    check_workbook(data)  # what render_xlsx ran; here again, explicitly
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert any(n.endswith(".xml") for n in archive.namelist())


def _rezip(data: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            part = change(name, src.read(name))
            if part is not None:
                dst.writestr(name, part)
    return out.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        lambda name, part: part.replace(b"</", b"<", 1) if name.endswith("sheet1.xml") else part,
        lambda name, part: part + b"\xef\xbf\xbf" if name.endswith("workbook.xml.rels") else part,
        lambda name, part: None if name == "[Content_Types].xml" else part,
    ],
)
def test_a_damaged_workbook_fails_the_check(sample_invoice: MakeInvoice, damage: Any) -> None:
    data = _rezip(render_xlsx(sample_invoice()), damage)
    with pytest.raises(RenderError, match="workbook"):
        check_workbook(data)


def test_bytes_that_are_no_zip_fail_the_workbook_check() -> None:
    with pytest.raises(RenderError, match="not a zip"):
        check_workbook(b"PK\x03\x04 not really")


def test_a_good_pdf_passes_and_a_damaged_one_fails(sample_invoice: MakeInvoice) -> None:
    data = render_pdf(sample_invoice())
    check_pdf(data)
    end = data.rindex(b"startxref")
    damaged = [
        data[: len(data) // 2],  # cut short
        b"%!PS" + data[4:],  # not a PDF header
        data[:end] + b"startxref\n12\n%%EOF\n",  # the xref offset points elsewhere
        data.replace(b"trailer", b"trailor"),
    ]
    for bad in damaged:
        with pytest.raises(RenderError, match="PDF is not valid"):
            check_pdf(bad)
