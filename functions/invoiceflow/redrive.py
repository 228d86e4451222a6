"""Redrive: put the invoices stalled in ``received`` back in motion, through the broker.

An invoice stays ``received`` for good when an event of its pipeline is lost for good (the
database down longer than a step's and dead-letter's retries, so the broker drops the event):
an ``uploaded`` event a render step never took, or the ``rendered`` event that would have made
the invoice ``ready``; or when such an event is dead-lettered while the invoice has every
file, which dead-letter leaves ``received`` instead of failing it
(:func:`invoiceflow.steps.dead_letter`). ``invoiceflow invoices redrive`` finds them
(:func:`stalled`) and publishes, for each, the one event that moves it on
(:func:`redrive_event`):

* files missing: an ``uploaded`` event routed only to the render steps of the missing formats;
  a render step reuses every artifact already stored, renders the rest and emits its
  ``rendered`` events, the last of which makes the invoice ready (notify);
* every file stored: a ``rendered`` event saying the invoice is complete, for notify, which
  makes it ready and sends the ready email under its claim (never a second one).

An invoice can also stall after its status, without its email: notify made it ``ready`` (or
dead-letter ``failed``) but could not send the email of that status for the broker's whole
retry window (the provider refusing or unreachable, the database down at the claim or at
marking it sent), so the event was dead-lettered, which changes nothing for such an invoice.
:func:`stalled` finds those too (the email not ``sent``: no claim, a released one, or a claim
older than the window, which is older than :data:`invoiceflow.steps.RECLAIM_AFTER`), and the
event is the one notify sends that email for:

* ``ready``: a ``rendered`` event saying the invoice is complete; notify finds it ready and
  sends the ready email under its claim;
* ``failed``: a ``failed`` event; notify sends the failure email under its claim.

A claim never marked sent is taken over and the email sent again under the same message id
(the ``.eml`` outbox writes nothing the second time; SendGrid may deliver a second copy, the
residual risk docs/operations.md describes).

Each event's id is the same every run (:func:`invoiceflow.naming.redrive_event_id`; for an
email :func:`invoiceflow.naming.redrive_email_event_id`, the same while its claim is
unchanged), from its own source (``naming.REDRIVE_SOURCE``): a step that processed it already
drops a repeat, and one that did not (the redrive's event was lost too) takes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.events import (
    INVOICE_FAILED,
    INVOICE_RENDERED,
    INVOICE_UPLOADED,
    Event,
    make_event,
    rendered_data,
    uploaded_data,
)
from invoiceflow.steps import ALL_RENDERED, RECLAIM_AFTER
from invoiceflow.stores.protocols import NotificationKind, StalledInvoice

#: the most of a failed invoice's reason its redriven ``failed`` event carries (notify reads
#: the reason from the invoice; an event's data is small, events.MAX_DATA_BYTES)
FAILED_REASON_CHARS = 500


def stalled(ctx: Context, changed_before: datetime) -> Iterator[StalledInvoice]:
    """Every invoice that has not changed since before ``changed_before`` and is still
    ``received`` (neither its row nor its artifacts changed), or ``ready`` or ``failed``
    without the email of its status sent (nor claimed since), oldest first. The cutoff is
    never later than RECLAIM_AFTER ago: a younger claim may be a send under way, which
    notify would not take over."""
    changed_before = min(changed_before, datetime.now(UTC) - RECLAIM_AFTER)
    last: StalledInvoice | None = None
    while page := ctx.repo.stalled_invoices(changed_before, after=last):
        yield from page
        last = page[-1]


def render_steps(found: StalledInvoice) -> list[str]:
    """The render steps of the formats the invoice still lacks."""
    return [
        step
        for step, formats in naming.RENDER_STEP_FORMATS.items()
        if any(fmt in found.missing for fmt in formats)
    ]


def redrive_event(found: StalledInvoice) -> Event:
    """The event that moves the stalled invoice on: ``uploaded`` for the render steps of its
    missing formats, else ``rendered`` (complete) for notify; for an email not sent, the
    event notify sends it for (:func:`email_event`)."""
    invoice = found.invoice
    kind = found.unsent_email
    if kind is not None:
        return email_event(found, kind)
    steps = render_steps(found)
    if steps:
        return make_event(
            INVOICE_UPLOADED,
            naming.REDRIVE_SOURCE,
            uploaded_data(
                invoice_id=invoice.id,
                owner_id=invoice.owner_id,
                number=invoice.number,
                raw_file_id=invoice.raw_file_id,
                document_file_id=invoice.document_file_id,
                formats=invoice.formats,
            ),
            subject=invoice.id,
            id=naming.redrive_event_id(invoice.id, "uploaded"),
            extensions={naming.route_attribute(step): naming.ROUTE for step in steps},
        )
    return _complete(found, naming.redrive_event_id(invoice.id, "rendered"))


def _complete(found: StalledInvoice, event_id: str) -> Event:
    """A ``rendered`` event saying the invoice, which has every file, is complete (notify's
    Trigger takes only those)."""
    invoice = found.invoice
    artifact = found.artifacts[invoice.formats[-1]]
    return make_event(
        INVOICE_RENDERED,
        naming.REDRIVE_SOURCE,
        rendered_data(
            invoice_id=invoice.id,
            owner_id=invoice.owner_id,
            fmt=artifact.format,
            file_id=artifact.file_id,
            size=artifact.size,
            sha256=artifact.sha256,
        ),
        subject=invoice.id,
        id=event_id,
        extensions={ALL_RENDERED: "true"},
    )


def email_event(found: StalledInvoice, kind: NotificationKind) -> Event:
    """The event notify sends the invoice's ``kind`` email for: ``rendered`` (complete) for
    a ready invoice, ``failed`` for a failed one; its id changes only with the email's claim
    (:func:`invoiceflow.naming.redrive_email_event_id`)."""
    invoice = found.invoice
    claimed_at = found.email.claimed_at if found.email is not None else None
    event_id = naming.redrive_email_event_id(invoice.id, kind, claimed_at)
    if kind == "ready":
        return _complete(found, event_id)
    return make_event(
        INVOICE_FAILED,
        naming.REDRIVE_SOURCE,
        {
            "invoice_id": invoice.id,
            "owner_id": invoice.owner_id,
            "reason": (invoice.error or "")[:FAILED_REASON_CHARS],
        },
        subject=invoice.id,
        id=event_id,
    )


#: what the redrive publishes for an email not sent, by its kind
_EMAIL_EVENTS = {
    "ready": "invoice.rendered to notify (sends the ready email)",
    "failed": "invoice.failed to notify (sends the failure email)",
}


def _email_state(found: StalledInvoice) -> str:
    """Why the email of the invoice's status is not sent, for the operator."""
    if found.email is None:
        return "never claimed"
    if found.email.state == "released":
        return "its send failed"
    return "claimed but never marked sent: sent again under the same message id"


def describe(found: StalledInvoice) -> str:
    """What the redrive does for the invoice, for the operator."""
    kind = found.unsent_email
    if kind is not None:
        return f"{kind}, email not sent ({_email_state(found)}): {_EMAIL_EVENTS[kind]}"
    steps = render_steps(found)
    if steps:
        return f"missing {','.join(found.missing)}: invoice.uploaded to {', '.join(steps)}"
    return "every file stored: invoice.rendered to notify (makes it ready)"
