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

Each event's id is the same every run (:func:`invoiceflow.naming.redrive_event_id`), from its
own source (``naming.REDRIVE_SOURCE``): a step that processed it already drops a repeat, and
one that did not (the redrive's event was lost too) takes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.events import (
    INVOICE_RENDERED,
    INVOICE_UPLOADED,
    Event,
    make_event,
    rendered_data,
    uploaded_data,
)
from invoiceflow.steps import ALL_RENDERED
from invoiceflow.stores.protocols import StalledInvoice


def stalled(ctx: Context, changed_before: datetime) -> Iterator[StalledInvoice]:
    """Every invoice still ``received`` that has not changed since before ``changed_before``
    (neither its row nor its artifacts), oldest first."""
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
    missing formats, else ``rendered`` (complete) for notify."""
    invoice = found.invoice
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
        id=naming.redrive_event_id(invoice.id, "rendered"),
        extensions={ALL_RENDERED: "true"},
    )


def describe(found: StalledInvoice) -> str:
    """What the redrive does for the invoice, for the operator."""
    steps = render_steps(found)
    if steps:
        return f"missing {','.join(found.missing)}: invoice.uploaded to {', '.join(steps)}"
    return "every file stored: invoice.rendered to notify (makes it ready)"
