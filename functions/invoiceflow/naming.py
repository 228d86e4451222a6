"""The id and URL schemes, one home each: document-store file ids, the ids and sources of the
events the steps emit, and the public paths of an invoice and its files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

#: the public paths of the HTTP functions (the routes in openapi.yaml)
UPLOAD_PATH = "/upload"
#: the owner's branding settings (GET/PUT), served by the upload function
SETTINGS_BRANDING_PATH = "/settings/branding"
DOWNLOAD_PATH = "/download"
#: the owner's invoice number series (GET/PUT), served by the upload function
SETTINGS_NUMBERING_PATH = "/settings/numbering"
INVOICES_PATH = "/invoices"
OPENAPI_PATH = "/openapi.json"
#: the web app (served by the download function): its page, and its assets below ``/app/``
WEBAPP_PATH = "/"
WEBAPP_ASSETS_PATH = "/app"
#: the format name of the submitted document (its file is the ``json`` file of the invoice):
#: the client's bytes as they came, kept for the record
SUBMITTED_FORMAT = "json"
#: the format name of the completed document: the canonical JSON of the accepted invoice with
#: its number (assigned by the server when the upload had none), which the renderers read
DOCUMENT_FORMAT = "document"


def file_id(invoice_id: str, fmt: str) -> str:
    """The document-store id of an invoice's file in ``fmt`` (``json``: the submitted
    document, ``document``: the completed one)."""
    return f"{invoice_id}-{fmt}"


def step_source(step: str) -> str:
    """The CloudEvents ``source`` of the events that function ``step`` emits."""
    return f"/invoiceflow/{step}"


#: the source of every ``uploaded`` event (upload and intake both accept documents)
UPLOAD_SOURCE = step_source("upload")


def uploaded_event_id(invoice_id: str) -> str:
    return f"{invoice_id}.uploaded"


#: the render steps and the formats each renders (every output format by exactly one)
RENDER_STEP_FORMATS: dict[str, tuple[str, ...]] = {
    "render-pdf": ("pdf", "facturx"),
    "render-xlsx": ("xlsx",),
    "render-xml": ("cii", "ubl"),
}
#: the value of a render step's routing attribute on an ``uploaded`` event it has work in
ROUTE = "true"


def route_attribute(step: str) -> str:
    """The CloudEvents extension attribute that routes ``uploaded`` events to render step
    ``step`` (``render-xml`` -> ``renderxml``); its Trigger filters on it (``knative/``)."""
    return step.replace("-", "")


def uploaded_routes(formats: object) -> dict[str, str]:
    """The routing attributes of an ``uploaded`` event whose invoice asks for ``formats``:
    ``{"renderpdf": "true", ...}`` for each render step that renders one of them, none for the
    others, so their Triggers never deliver it. ``formats`` that are not a list of names
    (never written by this version) route to every render step, whose own check skips it."""
    if not isinstance(formats, list | tuple) or not all(isinstance(f, str) for f in formats):
        return {route_attribute(step): ROUTE for step in RENDER_STEP_FORMATS}
    return {
        route_attribute(step): ROUTE
        for step, rendered in RENDER_STEP_FORMATS.items()
        if any(fmt in formats for fmt in rendered)
    }


def rendered_event_id(invoice_id: str, fmt: str) -> str:
    return f"{invoice_id}.rendered.{fmt}"


def notified_event_id(invoice_id: str, kind: str) -> str:
    return f"{invoice_id}.notified.{kind}"


def failed_event_id(invoice_id: str) -> str:
    return f"{invoice_id}.failed"


#: the source of the events ``invoiceflow invoices redrive`` publishes for a stalled invoice
REDRIVE_SOURCE = step_source("redrive")


def redrive_event_id(invoice_id: str, event: str) -> str:
    """The id of the ``event`` (``uploaded``, ``rendered``) the redrive publishes for the
    invoice: the same every run, so the steps drop a repeat of one they already processed."""
    return f"{invoice_id}.redrive.{event}"


def redrive_email_event_id(invoice_id: str, kind: str, last_claim: datetime | None) -> str:
    """The id of the event the redrive publishes to send the invoice's ``kind`` email, whose
    last claim was taken at ``last_claim`` (None: never claimed): the same every run while the
    claim is unchanged, so notify drops a repeat; a new one once a delivery claimed the email
    since and did not send it (notify may have dropped the earlier one as "sending
    elsewhere" while that delivery held the claim)."""
    stamp = "unclaimed" if last_claim is None else f"{last_claim.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"
    return f"{invoice_id}.redrive.{kind}-email.{stamp}"


def email_key(invoice_id: str, kind: str) -> str:
    """The key of an invoice's ``kind`` email (``ready``/``failed``): its outbox file name and
    the left part of its Message-ID, the same for every resend."""
    return f"{invoice_id}-{kind}"


def requested_idempotency_key(source: str, event_id: str) -> str:
    """The Idempotency-Key of the invoice an ``invoice.requested`` event asks for: its source
    and id, so a redelivery creates nothing new."""
    return "ce:" + hashlib.sha256(f"{source}\n{event_id}".encode()).hexdigest()


def invoice_path(invoice_id: str, fmt: str | None = None) -> str:
    """``/invoices/{id}`` (the status) or ``/invoices/{id}/{fmt}`` (a file)."""
    path = f"{INVOICES_PATH}/{invoice_id}"
    return path if fmt is None else f"{path}/{fmt}"


def invoice_url(base_url: str, invoice_id: str, fmt: str | None = None) -> str:
    return base_url + invoice_path(invoice_id, fmt)


def download_url(base_url: str, file_id: str) -> str:
    return f"{base_url}{DOWNLOAD_PATH}?fid={file_id}"


def invoice_links(base_url: str, invoice_id: str, formats: Iterable[str]) -> dict[str, str]:
    """The ``links`` of an invoice: its status, the files of the formats it asked for
    (``invoice.formats``) and the submitted document."""
    formats = [*formats, SUBMITTED_FORMAT]
    return {
        "self": invoice_url(base_url, invoice_id),
        **{fmt: invoice_url(base_url, invoice_id, fmt) for fmt in formats},
    }
