"""The texts of the emails notify sends: the invoice is ready, or it could not be produced.
The transport (SendGrid or the outbox folder) is :mod:`invoiceflow.mail`."""

from __future__ import annotations

from html import escape

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.mail import Attachment, Message
from invoiceflow.outputs import OUTPUT_FORMATS, file_name
from invoiceflow.stores.protocols import InvoiceRecord, NotificationKind


def _escape(text: str) -> str:
    return escape(text, quote=True)


def ready_message(ctx: Context, invoice: InvoiceRecord, to: str) -> Message:
    base = ctx.settings.public_base_url
    links = {fmt: naming.invoice_url(base, invoice.id, fmt) for fmt in invoice.formats}
    number = invoice.number
    text = (
        f"Your invoice {number} is ready.\n\n"
        + "".join(f"{fmt.upper()}: {url}\n" for fmt, url in links.items())
        + f"\nStatus: {naming.invoice_url(base, invoice.id)}\n"
        "Downloads need your API token (Authorization: Bearer ...).\n"
    )
    html = (
        f"<p>Your invoice <strong>{_escape(number)}</strong> is ready.</p><ul>"
        + "".join(
            f'<li><a href="{_escape(url)}">{fmt.upper()}</a></li>' for fmt, url in links.items()
        )
        + "</ul><p>Downloads need your API token.</p>"
    )
    return Message(
        to=to,
        sender=ctx.settings.mail_from,
        subject=f"Invoice {number} is ready",
        text=text,
        html=html,
        key=naming.email_key(invoice.id, "ready"),
        attachments=_attachments(ctx, invoice),
    )


def _attachments(ctx: Context, invoice: InvoiceRecord) -> tuple[Attachment, ...]:
    """Every file the invoice asked for, in the order asked, each with its file name and
    content type (the same as its download)."""
    attachments = []
    for fmt in invoice.formats:
        artifact = ctx.repo.get_artifact(invoice.id, fmt)
        data = ctx.docs.read(artifact.file_id) if artifact is not None else None
        if data is not None:
            content_type = OUTPUT_FORMATS[fmt].content_type
            attachments.append(Attachment(file_name(invoice.number, fmt), content_type, data))
    return tuple(attachments)


def failed_message(ctx: Context, invoice: InvoiceRecord, to: str) -> Message:
    reason = invoice.error or "unknown reason"
    number = invoice.number
    text = (
        f"Your invoice {number} could not be produced.\n\nReason: {reason}\n\n"
        f"Details: {naming.invoice_url(ctx.settings.public_base_url, invoice.id)}\n"
    )
    html = (
        f"<p>Your invoice <strong>{_escape(number)}</strong> could not be produced.</p>"
        f"<p>Reason: {_escape(reason)}</p>"
    )
    return Message(
        to=to,
        sender=ctx.settings.mail_from,
        subject=f"Invoice {number} could not be produced",
        text=text,
        html=html,
        key=naming.email_key(invoice.id, "failed"),
    )


def message_for(ctx: Context, invoice: InvoiceRecord, kind: NotificationKind, to: str) -> Message:
    """The ``kind`` email of the invoice, to ``to``."""
    return (ready_message if kind == "ready" else failed_message)(ctx, invoice, to)
