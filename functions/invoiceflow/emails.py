"""The texts of the emails notify sends: the document is ready, or it could not be produced.
The transport (SendGrid or the outbox folder) is :mod:`invoiceflow.mail`.

The words come from the document's view (:func:`invoiceflow.render.view.build_view`): the
subject and body are in the document's language, name it by its type (invoice, credit note,
corrected invoice) and give its total and due date as the PDF prints them; the HTML part
takes the branding's accent colour. A document that cannot be read (a failed upload) gets
the English texts of an invoice."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.mail import Attachment, Message
from invoiceflow.outputs import OUTPUT_FORMATS, file_name
from invoiceflow.stores.protocols import Artifact, InvoiceRecord, NotificationKind

if TYPE_CHECKING:
    from invoiceflow.render.view import EmailTexts

log = logging.getLogger(__name__)


def _escape(text: str) -> str:
    return escape(text, quote=True)


def email_texts(ctx: Context, invoice: InvoiceRecord) -> EmailTexts:
    """The words of the emails about ``invoice``, from its stored document's view; English
    (an invoice's) when the document cannot be read or rendered, also by an internal error of
    the renderer (which render_document turns into the invoice's failure: its email must still
    go out). A transient fault on the way (:class:`~invoiceflow.errors.TransientError`,
    ConfigError) is raised, never answered with the English texts."""
    from invoiceflow.documents import stored_document
    from invoiceflow.domain.totals import compute_totals
    from invoiceflow.errors import InvoiceflowError
    from invoiceflow.render.view import build_view, email_texts

    try:
        document = stored_document(ctx, invoice)
        if document is not None:
            return build_view(document, compute_totals(document)).email
    except (InvoiceflowError, ArithmeticError) as exc:
        if isinstance(exc, InvoiceflowError) and exc.retryable:
            raise  # the store (or the database) failing for now, not the document: retried
        log.info("the email of invoice %s is in English: %s", invoice.id, exc)
    except Exception:
        log.exception("the email of invoice %s is in English: its view failed", invoice.id)
    return email_texts(None, invoice.number)


def _strong(number: str, accent: str | None) -> str:
    style = f' style="color:{_escape(accent)}"' if accent else ""
    return f"<strong{style}>{_escape(number)}</strong>"


def ready_message(
    ctx: Context,
    invoice: InvoiceRecord,
    to: str,
    artifacts: Mapping[str, Artifact] | None = None,
) -> Message:
    base = ctx.settings.public_base_url
    links = {fmt: naming.invoice_url(base, invoice.id, fmt) for fmt in invoice.formats}
    number = invoice.number
    words = email_texts(ctx, invoice)
    figures = "".join(f"{line}\n" for line in (words.total, words.due_date) if line)
    text = (
        words.ready_intro % {"number": number}
        + "\n\n"
        + (f"{figures}\n" if figures else "")
        + "".join(f"{fmt.upper()}: {url}\n" for fmt, url in links.items())
        + f"\n{words.status}: {naming.invoice_url(base, invoice.id)}\n"
        + f"{words.downloads_text}\n"
    )
    link_style = f' style="color:{_escape(words.accent_color)}"' if words.accent_color else ""
    html = (
        f"<p>{_escape(words.ready_intro) % {'number': _strong(number, words.accent_color)}}</p>"
        + "".join(f"<p>{_escape(line)}</p>" for line in (words.total, words.due_date) if line)
        + "<ul>"
        + "".join(
            f'<li><a href="{_escape(url)}"{link_style}>{fmt.upper()}</a></li>'
            for fmt, url in links.items()
        )
        + f"</ul><p>{_escape(words.downloads_html)}</p>"
    )
    return Message(
        to=to,
        sender=ctx.settings.mail_from,
        subject=words.ready_subject,
        text=text,
        html=html,
        key=naming.email_key(invoice.id, "ready"),
        attachments=_attachments(ctx, invoice, artifacts),
        without_attachments=words.attachments_too_large,
    )


def _attachments(
    ctx: Context, invoice: InvoiceRecord, artifacts: Mapping[str, Artifact] | None
) -> tuple[Attachment, ...]:
    """Every file the invoice asked for, in the order asked, each with its file name and
    content type (the same as its download). ``artifacts`` (by format): the invoice's, as
    read already; else each is read from the repository."""
    attachments = []
    for fmt in invoice.formats:
        artifact = (
            artifacts.get(fmt) if artifacts is not None else ctx.repo.get_artifact(invoice.id, fmt)
        )
        data = ctx.docs.read(artifact.file_id) if artifact is not None else None
        if data is not None:
            content_type = OUTPUT_FORMATS[fmt].content_type
            attachments.append(Attachment(file_name(invoice.number, fmt), content_type, data))
    return tuple(attachments)


def failed_message(ctx: Context, invoice: InvoiceRecord, to: str) -> Message:
    words = email_texts(ctx, invoice)
    reason = invoice.error or words.unknown_reason
    number = invoice.number
    text = (
        f"{words.failed_intro % {'number': number}}\n\n{words.reason}: {reason}\n\n"
        f"{words.details}: {naming.invoice_url(ctx.settings.public_base_url, invoice.id)}\n"
    )
    html = (
        f"<p>{_escape(words.failed_intro) % {'number': _strong(number, words.accent_color)}}</p>"
        f"<p>{_escape(words.reason)}: {_escape(reason)}</p>"
    )
    return Message(
        to=to,
        sender=ctx.settings.mail_from,
        subject=words.failed_subject,
        text=text,
        html=html,
        key=naming.email_key(invoice.id, "failed"),
    )


def message_for(
    ctx: Context,
    invoice: InvoiceRecord,
    kind: NotificationKind,
    to: str,
    *,
    artifacts: Mapping[str, Artifact] | None = None,
) -> Message:
    """The ``kind`` email of the invoice, to ``to`` (``artifacts``: see _attachments)."""
    if kind == "ready":
        return ready_message(ctx, invoice, to, artifacts)
    return failed_message(ctx, invoice, to)
