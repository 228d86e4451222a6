"""The invoice domain: document, money, totals, validation. No I/O beyond reading its schema.

Its names are imported when first used (PEP 562), so that importing a small module of the
package (``invoiceflow.domain.limits`` for the settings) does not load the parser."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoiceflow.domain.limits import DEFAULT_MAX_BYTES
    from invoiceflow.domain.model import Invoice, to_json
    from invoiceflow.domain.parse import Document, load_json, parse_invoice
    from invoiceflow.domain.totals import Totals, compute_totals

#: each public name and the module that defines it
_WHERE = {
    "DEFAULT_MAX_BYTES": "limits",
    "Document": "parse",
    "Invoice": "model",
    "Totals": "totals",
    "compute_totals": "totals",
    "load_json": "parse",
    "parse_invoice": "parse",
    "to_json": "model",
}

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Document",
    "Invoice",
    "Totals",
    "compute_totals",
    "load_json",
    "parse_invoice",
    "to_json",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
