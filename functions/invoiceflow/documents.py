"""The document of an accepted invoice as the render steps and the emails read it: the
completed document (canonical JSON with its number and its owner's defaults, fixed at
acceptance), or, for an invoice accepted before that was stored, the submitted one.

The completed document was written by this service from a document validated when it was
accepted, so it is loaded without validating it again
(:func:`~invoiceflow.domain.parse.load_canonical`); the submitted one of an older invoice
is the client's, so it gets the full parse."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoiceflow.context import Context
    from invoiceflow.domain.model import Invoice
    from invoiceflow.stores.protocols import InvoiceRecord

__all__ = ["stored_document"]

#: no limit on a stored document: it was size-checked when it was accepted
_STORED_DOCUMENT_LIMIT = 1 << 40


def stored_document(ctx: Context, invoice: InvoiceRecord) -> Invoice | None:
    """The invoice's document (None when the document store has lost it); raises what
    :func:`~invoiceflow.domain.parse_invoice` raises for a document it cannot read."""
    raw = ctx.docs.read(invoice.rendered_from)
    if raw is None:
        return None
    from invoiceflow.domain.parse import load_canonical, load_json, parse_invoice

    if invoice.rendered_from != invoice.raw_file_id:  # the completed document
        doc = load_json(raw, max_bytes=_STORED_DOCUMENT_LIMIT)
        try:
            return load_canonical(doc)
        except (KeyError, TypeError, ValueError, AttributeError, AssertionError):
            pass  # not the document acceptance writes: the full parse lists its problems
    return parse_invoice(raw, max_bytes=_STORED_DOCUMENT_LIMIT).invoice
