"""The output formats, their content types and file names; renderers are imported lazily so
a function that never renders (login, notify, download) never loads ReportLab or openpyxl."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: importing this module loads no domain code
    from invoiceflow.domain.model import Invoice


@dataclass(frozen=True)
class OutputFormat:
    name: str
    content_type: str
    module: str
    function: str

    def render(self, invoice: Invoice) -> bytes:
        fn: Callable[[Invoice], bytes] = getattr(
            importlib.import_module(self.module), self.function
        )
        return fn(invoice)


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    "pdf": OutputFormat("pdf", "application/pdf", "invoiceflow.render.pdf", "render_pdf"),
    "xlsx": OutputFormat(
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "invoiceflow.render.xlsx",
        "render_xlsx",
    ),
}
#: the content type of every JSON body, file and event data
JSON_CONTENT_TYPE = "application/json"
#: an error answer (RFC 9457), from every function and the local broker
PROBLEM_CONTENT_TYPE = "application/problem+json"

_UNSAFE = re.compile(r"[^\w.-]+")


def file_stem(number: str) -> str:
    """An invoice number as a safe file name stem: INV/2026/001 -> INV-2026-001."""
    stem = _UNSAFE.sub("-", number).strip(".-")
    return stem[:100] or "invoice"


def file_name(number: str, fmt: str) -> str:
    return f"{file_stem(number)}.{fmt}"
