"""Accepting a submitted invoice document, shared by its two doors: the upload function (HTTP)
and the intake step (signed ``invoice.requested`` events). No HTTP here."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any, cast

from invoiceflow import naming, numbering
from invoiceflow.branding import load_settings
from invoiceflow.context import Context
from invoiceflow.domain import Document, parse_invoice
from invoiceflow.errors import (
    BusinessRuleViolation,
    IdempotencyConflict,
    NumberAlreadyUsed,
    Problem,
    Unavailable,
    ValidationError,
)
from invoiceflow.events import INVOICE_UPLOADED, uploaded_data
from invoiceflow.logs import bind
from invoiceflow.outbox import relay_after_commit
from invoiceflow.outputs import (
    EINVOICE_FORMATS,
    JSON_CONTENT_TYPE,
    OUTPUT_FORMATS,
    PDF_CONTENT_TYPE,
    check_formats,
    file_name,
    ordered_formats,
    split_formats,
)
from invoiceflow.render.scripts import check_printable, unprintable_problems
from invoiceflow.stores.protocols import (
    InvoiceRecord,
    InvoiceSource,
    NewInvoiceRecord,
    NewOutboxEvent,
    NumberAssignment,
    User,
)

log = logging.getLogger(__name__)


def formats_parameter(value: str | None) -> list[str] | None:
    """The formats of the ``formats`` query parameter of an upload (``pdf,cii``), unchecked
    (:func:`accept_document` checks them); None when it is absent."""
    return None if value is None else split_formats(value)


def check_business_rules(document: Document, formats: Sequence[str]) -> None:
    """Hold the document to the EN 16931 rules when an e-invoice format is asked for: one
    BusinessRuleViolation listing every broken rule of every such format (each once), each
    pointing into the client's own document (a legacy or invoice-generator upload's own
    fields, see ``Document.client_pointer``)."""
    from invoiceflow.domain.en16931 import Syntax, require_conformance

    problems: dict[Problem, None] = {}
    for fmt in (f for f in formats if f in EINVOICE_FORMATS):
        try:
            require_conformance(document.invoice, cast(Syntax, fmt))
        except BusinessRuleViolation as exc:
            found = document.client_problems(exc.problems)
            if document.needs_number:  # BR-02 holds once the number is assigned
                found = [p for p in found if p.rule != NUMBER_REQUIRED_RULE]
            problems.update(dict.fromkeys(found))
    if problems:
        n = len(problems)
        asked = ", ".join(f for f in formats if f in EINVOICE_FORMATS)
        raise BusinessRuleViolation(
            list(problems),
            f"{n} broken e-invoicing rule{'s' if n != 1 else ''} ({asked} asked for)",
        )


#: the EN 16931 rule "an invoice has a number" (BT-1), met by a number the server assigns
NUMBER_REQUIRED_RULE = "BR-02"


def request_digest(data: bytes, formats: Sequence[str]) -> str:
    """The digest an Idempotency-Key is bound to: the document and the formats asked for."""
    return hashlib.sha256(data + b"\n#formats=" + ",".join(formats).encode()).hexdigest()


def replayed(
    ctx: Context,
    owner: User,
    data: bytes,
    formats: Sequence[str] | None,
    idempotency_key: str | None,
) -> InvoiceRecord | None:
    """The invoice an earlier request with the owner's ``idempotency_key`` made when this
    request is its repeat (the same document and formats): None for no key, a new key, or
    formats that cannot be produced (never those of an accepted request: validate_request
    lists their problems). Asked before anything a repeat may find changed since the first
    request (the owner's settings, which fill the document and decide its rules; whether the
    owner is still active), so a repeat gets the first answer, as at-least-once delivery and
    a client retrying a lost answer need. The key used with another document or other
    formats is an :class:`IdempotencyConflict` (422)."""
    if idempotency_key is None or (formats is not None and check_formats(formats)):
        return None
    earlier = ctx.repo.find_invoice_by_idempotency_key(owner.id, idempotency_key)
    if earlier is None:
        return None
    wanted = ordered_formats(formats) if formats is not None else ctx.settings.invoice_formats
    # a record from before the formats were part of the digest: the document's hash
    legacy = earlier.request_sha256 == hashlib.sha256(data).hexdigest()
    if earlier.request_sha256 != request_digest(data, wanted) and not (
        legacy and earlier.formats == wanted
    ):
        raise IdempotencyConflict(
            f"the Idempotency-Key {idempotency_key!r} was used with a different "
            "document or other formats"
        )
    return earlier


def validate_request(
    ctx: Context, data: bytes, formats: Sequence[str] | None, *, owner: User | None
) -> tuple[Document, tuple[str, ...]]:
    """The parsed document and the formats it gets, or one 422 with every problem: the
    formats' (unknown, pdf with facturx) with the document's, then the broken e-invoicing
    rules when an e-invoice format is asked for, with the text the PDF cannot print when a
    PDF is. The fields the document leaves out are
    taken from the ``owner``'s branding settings (None: an unknown owner, no settings).
    Nothing is stored."""
    problems = check_formats(formats) if formats is not None else []
    defaults = load_settings(ctx.repo, owner.id) if owner is not None else None
    try:
        document = parse_invoice(data, max_bytes=ctx.settings.max_document_bytes, defaults=defaults)
    except ValidationError as exc:
        if problems:
            raise ValidationError([*problems, *exc.problems]) from exc
        raise
    if problems:
        raise ValidationError(problems, "the requested formats cannot be produced")
    wanted = ordered_formats(formats) if formats is not None else ctx.settings.invoice_formats
    printed = any(OUTPUT_FORMATS[f].content_type == PDF_CONTENT_TYPE for f in wanted)
    try:
        check_business_rules(document, wanted)
    except BusinessRuleViolation as exc:  # listed with the text the PDF cannot print
        unprintable = unprintable_problems(document) if printed else []
        if unprintable:
            n = len(unprintable)
            raise BusinessRuleViolation(
                [*exc.problems, *unprintable],
                f"{exc.detail}; {n} text field{'s' if n != 1 else ''} with characters the "
                "PDF cannot print",
            ) from exc
        raise
    if printed:
        check_printable(document)  # characters no font of the PDF has: 422, never a box
    return document, wanted


def accept_document(
    ctx: Context,
    owner: User,
    data: bytes,
    *,
    source: InvoiceSource,
    idempotency_key: str | None = None,
    formats: Sequence[str] | None = None,
) -> tuple[InvoiceRecord, bool]:
    """Validate (the document, then the e-invoicing rules when an e-invoice format is asked
    for), store the raw document, and record the invoice with its ``uploaded`` event in one
    transaction (the outbox). ``formats``: what the request asked for (unknown names and pdf
    with facturx are 422s, listed with the document's problems), else INVOICE_FORMATS.
    A repeat of an accepted request (:func:`replayed`) is its invoice again, whatever
    changed since. Returns (invoice, created)."""
    earlier = replayed(ctx, owner, data, formats, idempotency_key)
    if earlier is not None:
        return earlier, False
    document, wanted = validate_request(ctx, data, formats, owner=owner)
    return record_accepted(
        ctx, owner, data, document, wanted, source=source, idempotency_key=idempotency_key
    )


def number_assignment(ctx: Context, owner: User, document: Document) -> NumberAssignment | None:
    """How the repository numbers the document: None when it brings its own number, else
    the next number of the owner's series (their settings, else numbering.DEFAULT_SERIES)."""
    if not document.needs_number:
        return None
    return numbering.assignment(
        numbering.series_of(ctx.repo, owner.id), document.invoice.issue_date
    )


def record_accepted(
    ctx: Context,
    owner: User,
    data: bytes,
    document: Document,
    wanted: tuple[str, ...],
    *,
    source: InvoiceSource,
    idempotency_key: str | None = None,
) -> tuple[InvoiceRecord, bool]:
    """Store the submitted document and record the invoice with its ``uploaded`` event in
    one transaction (the outbox), for a request :func:`replayed` found new and
    :func:`validate_request` has let through (its document and formats). The invoice's number
    (the uploaded one, or the next of the owner's series) is fixed in that transaction, which
    also stores the completed document (the canonical JSON with the number) that the render
    steps read; a concurrent request with the same key that committed first is answered
    instead. Returns (invoice, created)."""
    invoice_id = str(uuid.uuid4())
    raw_id = naming.file_id(invoice_id, naming.SUBMITTED_FORMAT)
    document_id = naming.file_id(invoice_id, naming.DOCUMENT_FORMAT)
    ctx.docs.put(
        data,
        file_id=raw_id,
        filename=file_name(document.invoice.number or invoice_id, naming.SUBMITTED_FORMAT),
        content_type=JSON_CONTENT_TYPE,
        owner=owner.id,
        invoice_id=invoice_id,
        kind="raw",
    )

    def complete(number: str) -> list[NewOutboxEvent]:
        """Inside the accepting transaction: the completed document, and the event."""
        # the canonical JSON with the number fixed here (to_json of the invoice with it)
        completed = {**document.canonical, "number": number}
        ctx.docs.put(
            # compact: json's C encoder (indented JSON is written by its Python one, ~10x slower)
            json.dumps(completed, ensure_ascii=False, separators=(",", ":")).encode(),
            file_id=document_id,
            filename=file_name(number, naming.DOCUMENT_FORMAT),
            content_type=JSON_CONTENT_TYPE,
            owner=owner.id,
            invoice_id=invoice_id,
            kind=naming.DOCUMENT_FORMAT,
        )
        return [
            NewOutboxEvent(
                event_id=naming.uploaded_event_id(invoice_id),
                type=INVOICE_UPLOADED,
                source=naming.UPLOAD_SOURCE,
                subject=invoice_id,
                data=uploaded_data(
                    invoice_id=invoice_id,
                    owner_id=owner.id,
                    number=number,
                    raw_file_id=raw_id,
                    document_file_id=document_id,
                    formats=wanted,
                    source_format=document.source_format,
                ),
                # which render steps' Triggers deliver it (knative/50-triggers.yaml)
                extensions=naming.uploaded_routes(wanted),
            )
        ]

    try:
        accepted = ctx.repo.accept_invoice(
            NewInvoiceRecord(
                id=invoice_id,
                owner_id=owner.id,
                number=document.invoice.number,
                source=source,
                raw_file_id=raw_id,
                formats=wanted,
                idempotency_key=idempotency_key,
                request_sha256=request_digest(data, wanted),
                document_file_id=document_id,
                assign_number=number_assignment(ctx, owner, document),
            ),
            complete=complete,
        )
    except (IdempotencyConflict, NumberAlreadyUsed):  # refused: nothing of this request stays
        _discard(ctx, document_id, raw_id)
        raise
    if not accepted.created:  # a concurrent request with the same key won the race
        _discard(ctx, document_id, raw_id)
        return accepted.invoice, False
    bind(invoice=invoice_id)
    log.info("accepted invoice %s (%s format)", accepted.invoice.number, document.source_format)
    return accepted.invoice, True


def _discard(ctx: Context, *file_ids: str) -> None:
    """Delete the files of a refused request (an unreachable store leaves orphans, no harm)."""
    for file_id in file_ids:
        try:
            ctx.docs.delete(file_id)
        except Unavailable:
            log.warning("could not delete %s of a refused request", file_id)


def relay_uploaded(ctx: Context, invoice: InvoiceRecord) -> None:
    """Hand the invoice's ``uploaded`` event to the broker now (else the relay sends it)."""
    relay_after_commit(ctx, [(naming.UPLOAD_SOURCE, naming.uploaded_event_id(invoice.id))])


def accepted_body(ctx: Context, invoice: InvoiceRecord) -> dict[str, Any]:
    """The answer to an accepted document (upload and intake: the same body)."""
    return {
        "invoice_id": invoice.id,
        "status": invoice.status,
        "number": invoice.number,
        "formats": list(invoice.formats),
        "links": naming.invoice_links(ctx.settings.public_base_url, invoice.id, invoice.formats),
    }
