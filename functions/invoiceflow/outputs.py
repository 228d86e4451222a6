"""The output formats, their content types and file names; renderers are imported lazily so
a function that never renders (login, notify, download) never loads ReportLab or openpyxl.

Which formats an invoice gets is chosen per request (``?formats=`` on upload, ``formats`` in
an ``invoice.requested`` event) or by ``INVOICE_FORMATS``; :func:`check_formats` is the one
rule for all of them (known names, ``pdf`` and ``facturx`` never together)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from invoiceflow.errors import Problem
from invoiceflow.naming import DOCUMENT_FORMAT
from invoiceflow.records import record

if TYPE_CHECKING:  # only annotations: importing this module loads no domain code
    from invoiceflow.domain.model import Invoice


@record
class OutputFormat:
    name: str
    content_type: str
    module: str
    function: str
    #: what follows the number in the file name: ``.pdf``, ``-ubl.xml``
    suffix: str
    #: an EN 16931 e-invoice: the document is held to the business rules before it is accepted
    einvoice: bool = False

    def render(self, invoice: Invoice) -> bytes:
        fn: Callable[[Invoice], bytes] = getattr(
            importlib.import_module(self.module), self.function
        )
        return fn(invoice)


PDF_CONTENT_TYPE = "application/pdf"
XML_CONTENT_TYPE = "application/xml"

OUTPUT_FORMATS: dict[str, OutputFormat] = {
    "pdf": OutputFormat("pdf", PDF_CONTENT_TYPE, "invoiceflow.render.pdf", "render_pdf", ".pdf"),
    "xlsx": OutputFormat(
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "invoiceflow.render.xlsx",
        "render_xlsx",
        ".xlsx",
    ),
    # UN/CEFACT CII D16B (EN 16931, or XRechnung 3.0 for German invoices with a buyer reference)
    "cii": OutputFormat(
        "cii", XML_CONTENT_TYPE, "invoiceflow.einvoice.cii", "render_cii", ".xml", einvoice=True
    ),
    # UBL 2.1 Invoice/CreditNote, Peppol BIS Billing 3.0
    "ubl": OutputFormat(
        "ubl", XML_CONTENT_TYPE, "invoiceflow.einvoice.ubl", "render_ubl", "-ubl.xml", einvoice=True
    ),
    # the PDF as PDF/A-3b with the CII inside (factur-x.xml, or xrechnung.xml): in place of the
    # plain PDF
    "facturx": OutputFormat(
        "facturx",
        PDF_CONTENT_TYPE,
        "invoiceflow.render.facturx",
        "render_facturx",
        ".pdf",
        einvoice=True,
    ),
}
#: what an invoice gets when neither the request nor INVOICE_FORMATS says otherwise
DEFAULT_FORMATS = ("pdf", "xlsx")
#: the e-invoice formats, each held to the EN 16931 rules (domain.en16931's syntaxes)
EINVOICE_FORMATS = tuple(name for name, fmt in OUTPUT_FORMATS.items() if fmt.einvoice)
#: formats that share a file name and stand for the same thing: at most one of each group
EXCLUSIVE_FORMATS: tuple[frozenset[str], ...] = (frozenset({"pdf", "facturx"}),)
#: the content type of every JSON body, file and event data
JSON_CONTENT_TYPE = "application/json"
#: an error answer (RFC 9457), from every function and the local broker
PROBLEM_CONTENT_TYPE = "application/problem+json"

_UNSAFE = re.compile(r"[^\w.-]+")


def split_formats(text: str) -> list[str]:
    """``"pdf, cii"`` -> ``["pdf", "cii"]`` (blank entries dropped)."""
    return [f.strip() for f in text.split(",") if f.strip()]


def check_formats(names: Iterable[str], pointer: str = "/formats") -> list[Problem]:
    """Every problem of a list of requested formats: none, unknown names, ``pdf`` with
    ``facturx``. An empty list means the formats can be used."""
    names = list(names)
    known = ", ".join(OUTPUT_FORMATS)
    if not names:
        return [Problem(pointer, f"name at least one format of {known}")]
    problems = [
        Problem(pointer, f"{name!r} is not an output format; the formats: {known}")
        for name in dict.fromkeys(names)
        if name not in OUTPUT_FORMATS
    ]
    for group in EXCLUSIVE_FORMATS:
        if group <= set(names):
            both = " and ".join(f for f in OUTPUT_FORMATS if f in group)
            problems.append(
                Problem(
                    pointer,
                    f"ask for one of {both}, not both: facturx is the PDF with the e-invoice "
                    "inside, under the same file name",
                )
            )
    return problems


def ordered_formats(names: Iterable[str]) -> tuple[str, ...]:
    """Known formats in their canonical order (that of OUTPUT_FORMATS), each once: the same
    request in any order is the same request."""
    wanted = set(names)
    return tuple(name for name in OUTPUT_FORMATS if name in wanted)


def file_stem(number: str) -> str:
    """An invoice number as a safe file name stem: INV/2026/001 -> INV-2026-001."""
    stem = _UNSAFE.sub("-", number).strip(".-")
    return stem[:100] or "invoice"


#: the suffix of the completed document's file (format ``document``), so that it and the
#: submitted one (``json``: ``<number>.json``) never share a name in a download folder
COMPLETED_DOCUMENT_SUFFIX = ".completed.json"


def file_name(number: str, fmt: str) -> str:
    """The file name of an invoice's ``fmt`` file (``json``: the submitted document,
    ``document``: the completed one)."""
    known = OUTPUT_FORMATS.get(fmt)
    if known is not None:
        return file_stem(number) + known.suffix
    if fmt == DOCUMENT_FORMAT:
        return file_stem(number) + COMPLETED_DOCUMENT_SUFFIX
    return f"{file_stem(number)}.{fmt}"
