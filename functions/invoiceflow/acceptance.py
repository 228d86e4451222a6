"""Accepting a submitted invoice document, shared by its two doors: the upload function (HTTP)
and the intake step (signed ``invoice.requested`` events). No HTTP here."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.domain import parse_invoice
from invoiceflow.errors import IdempotencyConflict
from invoiceflow.events import INVOICE_UPLOADED
from invoiceflow.logs import bind
from invoiceflow.outbox import relay_after_commit
from invoiceflow.outputs import JSON_CONTENT_TYPE, file_name
from invoiceflow.stores.protocols import (
    InvoiceRecord,
    InvoiceSource,
    NewInvoiceRecord,
    NewOutboxEvent,
    User,
)

log = logging.getLogger(__name__)


def accept_document(
    ctx: Context,
    owner: User,
    data: bytes,
    *,
    source: InvoiceSource,
    idempotency_key: str | None = None,
) -> tuple[InvoiceRecord, bool]:
    """Validate, store the raw document, and record the invoice with its ``uploaded`` event
    in one transaction (the outbox). Returns (invoice, created)."""
    settings = ctx.settings
    document = parse_invoice(data, max_bytes=settings.max_document_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if idempotency_key is not None:
        earlier = ctx.repo.find_invoice_by_idempotency_key(owner.id, idempotency_key)
        if earlier is not None:
            if earlier.request_sha256 != digest:
                raise IdempotencyConflict(
                    f"the Idempotency-Key {idempotency_key!r} was used with a different document"
                )
            return earlier, False
    invoice_id = str(uuid.uuid4())
    raw_id = naming.file_id(invoice_id, naming.SUBMITTED_FORMAT)
    ctx.docs.put(
        data,
        file_id=raw_id,
        filename=file_name(document.invoice.number, naming.SUBMITTED_FORMAT),
        content_type=JSON_CONTENT_TYPE,
        owner=owner.id,
        invoice_id=invoice_id,
        kind="raw",
    )
    event = NewOutboxEvent(
        event_id=naming.uploaded_event_id(invoice_id),
        type=INVOICE_UPLOADED,
        source=naming.UPLOAD_SOURCE,
        subject=invoice_id,
        data={
            "invoice_id": invoice_id,
            "owner_id": owner.id,
            "number": document.invoice.number,
            "raw_file_id": raw_id,
            "formats": list(settings.invoice_formats),
            "source_format": document.source_format,
        },
    )
    try:
        accepted = ctx.repo.accept_invoice(
            NewInvoiceRecord(
                id=invoice_id,
                owner_id=owner.id,
                number=document.invoice.number,
                source=source,
                raw_file_id=raw_id,
                formats=settings.invoice_formats,
                idempotency_key=idempotency_key,
                request_sha256=digest,
            ),
            [event],
        )
    except IdempotencyConflict:  # a concurrent request with the same key and another body
        ctx.docs.delete(raw_id)
        raise
    if not accepted.created:  # a concurrent request with the same key won the race
        ctx.docs.delete(raw_id)
        return accepted.invoice, False
    bind(invoice=invoice_id)
    log.info("accepted invoice %s (%s format)", document.invoice.number, document.source_format)
    return accepted.invoice, True


def relay_uploaded(ctx: Context, invoice: InvoiceRecord) -> None:
    """Hand the invoice's ``uploaded`` event to the broker now (else the relay sends it)."""
    relay_after_commit(ctx, [(naming.UPLOAD_SOURCE, naming.uploaded_event_id(invoice.id))])


def accepted_body(ctx: Context, invoice: InvoiceRecord) -> dict[str, Any]:
    """The answer to an accepted document (upload and intake: the same body)."""
    return {
        "invoice_id": invoice.id,
        "status": invoice.status,
        "number": invoice.number,
        "links": naming.invoice_links(ctx.settings.public_base_url, invoice.id),
    }
