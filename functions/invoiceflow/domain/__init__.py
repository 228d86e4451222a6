"""The invoice domain: document, money, totals, validation. No I/O beyond reading its schema."""

from invoiceflow.domain.model import Invoice, to_json
from invoiceflow.domain.parse import DEFAULT_MAX_BYTES, Document, load_json, parse_invoice
from invoiceflow.domain.totals import Totals, compute_totals

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
