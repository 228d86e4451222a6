"""The event steps: intake, render-pdf, render-xlsx, render-xml, notify and dead-letter.

Each is ``step(event, ctx) -> StepResult`` and knows no HTTP: the edge
(:func:`invoiceflow.edge.serve_event`) parses the CloudEvent, refuses a type the step does not
take (:func:`takes`) and answers the result, or the exception's status (errors.py). A step
does its work idempotently and returns only once its effects are stored and the event it
emits was accepted by the broker. Idempotency is keyed twice: by the CloudEvent ``source`` +
``id`` (``processed_events``: a redelivery is answered at once) and by the invoice id (an
invoice, an artifact, a ``ready`` status or a notification that exists is never made twice),
so even a redelivery with a new id has no second effect.

Event data (schemas in ``events/schemas/``) carries ids, never documents.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.errors import (
    BadRequest,
    Conflict,
    EventRefused,
    IdempotencyConflict,
    InvoiceflowError,
    NumberAlreadyUsed,
    Problem,
    RenderError,
    Unavailable,
    UnknownOwner,
    ValidationError,
)
from invoiceflow.events import (
    INVOICE_FAILED,
    INVOICE_NOTIFIED,
    INVOICE_RENDERED,
    INVOICE_REQUESTED,
    INVOICE_UPLOADED,
    Event,
    forbidden_character,
    make_event,
    rendered_data,
)
from invoiceflow.logs import bind
from invoiceflow.outbox import relay_after_commit
from invoiceflow.outputs import OUTPUT_FORMATS, file_name
from invoiceflow.records import record
from invoiceflow.stores.protocols import (
    Artifact,
    InvoiceRecord,
    NewOutboxEvent,
    NotificationKind,
)

log = logging.getLogger(__name__)

#: a claimed email whose sender vanished (crash) may be taken over after this long: longer
#: than a send can take (mail.SEND_TIMEOUT), shorter than notify's retry schedule in
#: knative/50-triggers.yaml, so a duplicate delivery waits it out and never sends twice
RECLAIM_AFTER = timedelta(seconds=45)
#: after a send the provider accepted, marking it sent is retried this long (seconds) while
#: the database is unavailable: with mail.SEND_TIMEOUT well inside RECLAIM_AFTER, so nobody
#: takes the claim over while its sender still knows the email went out
MARK_SENT_RETRY_FOR = 25.0
#: the pauses between those retries (the last one repeats)
MARK_SENT_BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)
#: the least age at which ``invoiceflow outbox prune`` deletes a step's record of an event it
#: processed (``processed_events``). A repeat of an event comes within the broker's retries
#: (notify's, the longest, about 13 minutes; knative/50-triggers.yaml), a relay's re-send of
#: a row it sent but could not mark (the next relay: minutes, unless the broker is down) or a
#: redrive run again (invoiceflow.redrive): a week is hundreds of times that. A repeat after
#: its record is gone is taken again and still has no second effect, as the state checks keep
#: it (the artifact reused, the same ``rendered`` id, the email sent once by its claim, only a
#: ``received`` invoice failed), so the record only saves the work
PROCESSED_KEPT = timedelta(days=7)


class _MissingDocument(Exception):
    """The document store has lost an accepted invoice's document."""


@record
class StepResult:
    """What a step answers: the JSON ``body``; ``accepted`` when the work only starts here and
    goes on downstream (intake: 202), else the event is done (200)."""

    body: dict[str, Any]
    accepted: bool = False


StepFunction = Callable[[Event, Context], StepResult]


@record
class EventStep:
    """An event step and the event types it takes (``None``: any type)."""

    run: StepFunction
    accepts: tuple[str, ...] | None

    def __call__(self, event: Event, ctx: Context) -> StepResult:
        return self.run(event, ctx)


def takes(*types: str) -> Callable[[StepFunction], EventStep]:
    """Declare the event types a step takes; the edge refuses any other with a 400."""

    def declare(run: StepFunction) -> EventStep:
        return EventStep(run, types)

    return declare


def takes_any_type(run: StepFunction) -> EventStep:
    """Declare a step that takes every event type (dead-letter)."""
    return EventStep(run, None)


def _invoice_id(event: Event) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    invoice_id = data.get("invoice_id") or event.get("subject")
    if not isinstance(invoice_id, str) or not invoice_id:
        raise BadRequest("the event names no invoice (data.invoice_id)")
    if (forbidden := forbidden_character(invoice_id)) is not None:  # NUL: PostgreSQL text
        raise BadRequest(f"data.invoice_id holds {forbidden}, which no invoice id does")
    bind(invoice=invoice_id)
    return invoice_id


def _known_invoice(ctx: Context, invoice_id: str) -> InvoiceRecord:
    return _existing(ctx.repo.get_invoice(invoice_id), invoice_id)


def _existing(invoice: InvoiceRecord | None, invoice_id: str) -> InvoiceRecord:
    """``invoice`` as read for ``invoice_id``; a 422 when there is none."""
    if invoice is None:
        # permanent (never 404, which Knative would retry): the event is dead-lettered
        raise ValidationError([], f"invoice {invoice_id} does not exist")
    return invoice


# ------------------------------------------------------------------------------ intake


@takes(INVOICE_REQUESTED)
def intake(event: Event, ctx: Context) -> StepResult:
    """``invoice.requested``: data is ``{"owner_email", "invoice": {...document...}}`` and
    optionally ``"formats": ["pdf", "cii"]`` (else INVOICE_FORMATS), signed by a producer
    (:mod:`invoiceflow.signing`). An unsigned or wrongly signed event is a 401 (permanent:
    dead-lettered). Unknown formats, pdf with facturx and (for an e-invoice format) broken
    EN 16931 rules are 422s listing every problem. A document without a number gets the
    next number of the owner's series; a number the owner already used is a 422 (not the
    upload's 409, which the broker would retry), unless the event is a redelivery of the one
    that made that invoice (the same answer again). The owner is looked up first: a redelivery
    of an accepted event is its first answer before anything else is checked (the owner's
    settings or account may have changed since; :func:`~invoiceflow.acceptance.replayed`),
    and an active owner's branding settings fill the fields the document leaves out; an
    unknown and a disabled owner get the same 422 (the document checked without settings), so
    the answer to an event says nothing about which accounts exist beyond what the signing
    producer already names."""
    # only the intake function loads the domain and the signing code
    from invoiceflow.acceptance import (
        accepted_body,
        record_accepted,
        relay_uploaded,
        replayed,
        validate_request,
    )
    from invoiceflow.signing import verify_event

    producer = verify_event(event, ctx.settings.event_producer_keys)
    bind(producer=producer)
    data = event.data if isinstance(event.data, dict) else None
    if (
        data is None
        or not isinstance(data.get("owner_email"), str)
        or not isinstance(data.get("invoice"), dict)
    ):
        raise BadRequest(
            "the event data must be an object with 'owner_email' (string) and "
            "'invoice' (the invoice document)"
        )
    formats = data.get("formats")
    if formats is not None and (
        not isinstance(formats, list) or not all(isinstance(f, str) for f in formats)
    ):
        raise ValidationError(
            [Problem("/formats", "must be an array of format names")], "invalid formats"
        )
    document = json.dumps(data["invoice"], ensure_ascii=False).encode()
    owner = ctx.repo.get_user_by_email(data["owner_email"])
    key = naming.requested_idempotency_key(event["source"], event["id"])
    # a redelivery first: the first answer again, whatever the owner changed since (their
    # settings, their account disabled); it tells nothing the first answer did not
    try:
        earlier = replayed(ctx, owner, document, formats, key) if owner is not None else None
    except IdempotencyConflict:
        if owner is not None and not owner.disabled:
            raise
        earlier = None  # another event under a disabled owner's key: as for an unknown owner
    if earlier is not None:
        relay_uploaded(ctx, earlier)
        return StepResult(accepted_body(ctx, earlier), accepted=True)
    # the document's problems first (with the owner's branding settings when the owner is
    # an active user), then an unknown owner
    active = owner if owner is not None and not owner.disabled else None
    parsed, wanted = validate_request(ctx, document, formats, owner=active)
    if owner is None or owner.disabled:
        log.info(
            "invoice.requested %s from producer %s names no active user", event["id"], producer
        )
        raise UnknownOwner("the owner_email of the event names no active user")
    try:
        invoice, _ = record_accepted(
            ctx, owner, document, parsed, wanted, source="event", idempotency_key=key
        )
    except NumberAlreadyUsed as exc:
        # permanent (Knative would retry a 409): the request is dead-lettered, as a 422 is;
        # a redelivery of the event that made the invoice is its replay (replayed), never this
        raise ValidationError(
            [Problem("/invoice/number", exc.detail)], "the invoice number is already used"
        ) from exc
    relay_uploaded(ctx, invoice)
    return StepResult(accepted_body(ctx, invoice), accepted=True)


# ------------------------------------------------------------------------------ render


#: render_document's ``artifact`` when the caller did not read it
_UNREAD: Any = object()


def render_document(
    ctx: Context, invoice: InvoiceRecord, fmt: str, artifact: Artifact | None = _UNREAD
) -> tuple[str, int, str]:
    """Render and store ``fmt`` for the invoice unless it exists; (file id, size, sha256).
    ``artifact``: the invoice's artifact of ``fmt`` as the caller read it (None: none).
    A document that cannot be read or rendered is a :class:`RenderError` (permanent); a
    transient fault on the way (:class:`TransientError`, :class:`ConfigError`) stays one."""
    if artifact is _UNREAD:
        artifact = ctx.repo.get_artifact(invoice.id, fmt)
    if artifact is not None:
        return artifact.file_id, artifact.size, artifact.sha256
    file_id = naming.file_id(invoice.id, fmt)
    stored = ctx.docs.get(file_id)  # stored before a crash, but not yet recorded
    if stored is None:
        # the completed document (its number fixed at acceptance); an invoice from before it
        # existed has only the submitted one, which carries its number
        from invoiceflow.documents import stored_document

        try:
            document = stored_document(ctx, invoice)
            if document is None:
                raise _MissingDocument
            data = OUTPUT_FORMATS[fmt].render(document)
        except _MissingDocument:
            raise RenderError(
                f"the invoice's document {invoice.rendered_from} is missing"
            ) from None
        except InvoiceflowError as exc:
            if exc.retryable:
                # the document store (or the database) failing for now, not the document:
                # unchanged, so the broker retries (a 503 whose body says nothing internal;
                # its detail, which may name a server path, goes to the log only)
                raise
            raise RenderError(f"the {fmt} cannot be rendered: {exc.detail}", exc.problems) from exc
        except Exception as exc:
            log.exception("renderer failed")
            # the invoice's error is shown to its owner (API, email): no internal text there
            raise RenderError(
                f"the {fmt} cannot be rendered from this document (an internal "
                "error of the renderer; its log has the details)"
            ) from exc
        stored = ctx.docs.put(
            data,
            file_id=file_id,
            filename=file_name(invoice.number, fmt),
            content_type=OUTPUT_FORMATS[fmt].content_type,
            owner=invoice.owner_id,
            invoice_id=invoice.id,
            kind=fmt,
        )
    artifact = ctx.repo.record_artifact(invoice.id, fmt, stored.file_id, stored.size, stored.sha256)
    return artifact.file_id, artifact.size, artifact.sha256


#: the extension attribute of an ``invoice.rendered`` event: "true" when, once its artifact
#: was recorded, every format of the invoice had one (notify-rendered filters on it)
ALL_RENDERED = "allrendered"


def _emit(ctx: Context, event: Event) -> None:
    """Send a step's own event. A refusal for good (:class:`~invoiceflow.errors.EventRefused`)
    is answered 503 like an outage, not 422: the step's work is stored, and dead-lettering
    its event would fail an invoice whose other file is not stored yet, every invoice in
    flight when the sink is misconfigured (Knative's ingress answers 400 to a wrong path). The
    broker's retries end in dead-letter, which leaves a complete invoice for the redrive."""
    try:
        ctx.emitter.send(event)
    except EventRefused as exc:
        log.error(
            "the event broker refuses %s %s for good (HTTP %s): check K_SINK and the broker; "
            "the step answers 503 until it takes it",
            event["type"],
            event["id"],
            exc.broker_status,
        )
        raise Unavailable(exc.detail) from None


def _has_every_file(ctx: Context, invoice: InvoiceRecord) -> bool:
    """Whether every format the invoice asked for has its artifact, as committed now
    (artifacts are never removed: once true, true for good)."""
    have = {artifact.format for artifact in ctx.repo.list_artifacts(invoice.id)}
    return bool(invoice.formats) and have >= set(invoice.formats)


def _all_rendered(ctx: Context, invoice: InvoiceRecord) -> str:
    """``ALL_RENDERED``'s value, read after this step's artifact was committed: of the
    renderers finishing an invoice, the last to commit sees every artifact, so at least one
    ``rendered`` event of every complete invoice says "true" (two may: notify is idempotent)."""
    return "true" if _has_every_file(ctx, invoice) else "false"


def _render(event: Event, ctx: Context, step: str) -> StepResult:
    """Render, store and announce each of ``step``'s formats the invoice asked for: each
    idempotent by its artifact, one ``invoice.rendered`` event per format (its id from the
    invoice and the format, so a repeat is the same event), which says whether the invoice
    is then complete (``ALL_RENDERED``: only those reach notify)."""
    invoice_id = _invoice_id(event)
    formats = naming.RENDER_STEP_FORMATS[step]
    # whether it is a redelivery, the invoice and the artifacts of the step's formats: one read
    found = ctx.repo.step_invoice(step, event["source"], event["id"], invoice_id, formats)
    if found.processed:
        return StepResult({"duplicate": True})
    invoice = _existing(found.invoice, invoice_id)
    wanted = [fmt for fmt in formats if fmt in invoice.formats]
    if not wanted or invoice.status == "failed":
        ctx.repo.mark_processed(step, event["source"], event["id"])
        names = " or ".join(formats)
        return StepResult({"skipped": f"{names} not wanted or invoice {invoice.status}"})
    rendered: dict[str, str] = {}
    for fmt in wanted:
        file_id, size, sha256 = render_document(ctx, invoice, fmt, found.artifacts.get(fmt))
        _emit(
            ctx,
            make_event(
                INVOICE_RENDERED,
                naming.step_source(step),
                subject=invoice.id,
                id=naming.rendered_event_id(invoice.id, fmt),
                data=rendered_data(
                    invoice_id=invoice.id,
                    owner_id=invoice.owner_id,
                    fmt=fmt,
                    file_id=file_id,
                    size=size,
                    sha256=sha256,
                ),
                extensions={ALL_RENDERED: _all_rendered(ctx, invoice)},
            ),
        )
        rendered[fmt] = file_id
        log.info("rendered %s (%d bytes)", fmt, size)
    ctx.repo.mark_processed(step, event["source"], event["id"])
    return StepResult({"invoice_id": invoice.id, "rendered": rendered})


@takes(INVOICE_UPLOADED)
def render_pdf(event: Event, ctx: Context) -> StepResult:
    """The PDF, or the Factur-X PDF (the PDF/A-3 with the CII inside) in its place."""
    return _render(event, ctx, "render-pdf")


@takes(INVOICE_UPLOADED)
def render_xlsx(event: Event, ctx: Context) -> StepResult:
    return _render(event, ctx, "render-xlsx")


@takes(INVOICE_UPLOADED)
def render_xml(event: Event, ctx: Context) -> StepResult:
    """The XML e-invoices: CII and UBL, each when the invoice asked for it."""
    return _render(event, ctx, "render-xml")


# ------------------------------------------------------------------------------ notify


def _mark_sent(
    ctx: Context,
    invoice: InvoiceRecord,
    kind: NotificationKind,
    provider_id: str | None,
    started: float,
) -> None:
    """Record a send the provider accepted. While the database is unavailable, retry within
    MARK_SENT_RETRY_FOR of the claim; after that the error goes to the broker, which retries
    the event, and the takeover of the claim resends under the same message id (the outbox
    writes nothing the second time; see docs/operations.md for SendGrid)."""
    pauses = iter(MARK_SENT_BACKOFF)
    pause = 0.0
    while True:
        try:
            ctx.repo.mark_notification_sent(
                invoice.id,
                kind,
                provider_id,
            )
            return
        except Unavailable:
            pause = next(pauses, pause)
            if time.monotonic() + pause - started > MARK_SENT_RETRY_FOR:
                log.error(
                    "the %s email for invoice %s was sent but cannot be marked sent",
                    kind,
                    invoice.id,
                )
                raise
            log.warning("the %s email was sent; marking it sent failed, retrying", kind)
            time.sleep(pause)


class SendingElsewhere(Exception):
    """Another event's delivery holds a fresh claim on the email (see :func:`send_once`)."""


def claimer_of(event: Event) -> str:
    """The claimer recorded on a notification claim: the event's source and id (a
    redelivery of the same event is the same claimer)."""
    return json.dumps([event["source"], event["id"]], separators=(",", ":"))


@record
class EmailSent:
    """What :func:`send_once` did: whether this call sent the email, and for which event's
    delivery the email was sent (its claimer; None when it was not sent)."""

    now: bool
    claimer: str | None


def send_once(
    ctx: Context,
    invoice: InvoiceRecord,
    kind: NotificationKind,
    *,
    claimer: str | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
) -> EmailSent:
    """Send the ``kind`` email for the invoice exactly once; whether this call sent it, and
    for which claimer it was sent (this one, or an earlier delivery's when it had been sent).

    The claim row (``notifications``) is the intent, written before the send: ``claimed``
    with the time and the claimer (the CloudEvent being handled). A send the provider refused
    releases it at once; a send whose outcome is unknown (no answer, or marking it sent
    failed) keeps it, and only a delivery after RECLAIM_AFTER takes it over and sends again,
    with the same message id (:func:`invoiceflow.mail.message_id`), which the outbox turns
    into a no-op.

    A fresh claim held by another event raises :class:`SendingElsewhere`: the broker keeps
    that event until its delivery is answered, so it sends the email, or a redelivery of it
    takes the claim over after RECLAIM_AFTER; this event has nothing left to do. A fresh claim
    held by the same event (a redelivery racing the delivery that claimed it, or following
    one that died) or by an unknown claimer raises :class:`Conflict` (409: retried, and it
    takes the claim over once it is RECLAIM_AFTER old). Without ``claimer`` every fresh claim
    is a Conflict. ``artifacts`` (the invoice's, by format) saves reading them again."""
    # the email modules (and the email package under them) only where an email is sent:
    # the render steps never send one (~5 ms of their cold start)
    from invoiceflow.emails import message_for
    from invoiceflow.mail import MailOutcomeUnknown, mailer_for

    owner = ctx.repo.get_user(invoice.owner_id)
    if owner is None:
        raise ValidationError([], f"the owner of invoice {invoice.id} no longer exists")
    started = time.monotonic()
    claim = ctx.repo.claim_notification_for(
        invoice.id,
        kind,
        owner.email,
        claimer or "",
        reclaim_after=RECLAIM_AFTER,
    )
    found = claim.found
    if not claim.claimed:
        if found is not None and found.state == "sent":
            return EmailSent(now=False, claimer=found.claimed_by)
        if claimer and found is not None and found.claimed_by not in (None, "", claimer):
            raise SendingElsewhere
        raise Conflict("another delivery is sending this email; retry later")
    try:
        message = message_for(ctx, invoice, kind, owner.email, artifacts=artifacts)
    except BaseException:
        ctx.repo.release_notification(invoice.id, kind)  # nothing was sent: retried at once
        raise
    if found is not None and found.state == "claimed":
        log.warning(
            "taking over the %s email of a sender that never marked it sent; "
            "resending it under the same message id (key %s)",
            kind,
            message.key,
        )
    try:
        provider_id = mailer_for(ctx.settings).send(message)
    except MailOutcomeUnknown:
        raise  # it may have gone out: keep the claim (a takeover resends it, same id)
    except BaseException:
        ctx.repo.release_notification(invoice.id, kind)
        raise
    _mark_sent(ctx, invoice, kind, provider_id, started)
    log.info("sent the %s email for invoice %s", kind, invoice.number)
    return EmailSent(now=True, claimer=claimer or "")


@takes(INVOICE_RENDERED, INVOICE_FAILED)
def notify(event: Event, ctx: Context) -> StepResult:
    """Send the invoice's ``ready`` email once every format it asked for is rendered (an
    ``invoice.rendered`` event), or its ``failed`` email (``invoice.failed``), exactly once
    (:func:`send_once`). A ``rendered`` event that finds formats missing answers 200
    ``waiting`` (the last renderer's event comes later); one that finds the email being sent
    by another event's delivery answers 200 ``sending_elsewhere``."""
    if ctx.repo.is_processed("notify", event["source"], event["id"]):
        return StepResult({"duplicate": True})
    invoice_id = _invoice_id(event)
    artifacts: Mapping[str, Artifact] | None = None
    if event["type"] == INVOICE_RENDERED:
        # one transaction: the invoice, its artifacts, and ready when they are complete
        state = ctx.repo.mark_ready_and_get(invoice_id)
        if state is None:
            raise ValidationError([], f"invoice {invoice_id} does not exist")
        invoice, artifacts = state.invoice, state.artifacts
        if invoice.status != "ready":
            ctx.repo.mark_processed("notify", event["source"], event["id"])
            return StepResult({"waiting": state.missing})
    else:
        invoice = _known_invoice(ctx, invoice_id)
    kind: NotificationKind = "ready" if event["type"] == INVOICE_RENDERED else "failed"
    claimer = claimer_of(event)
    try:
        sent = send_once(ctx, invoice, kind, claimer=claimer, artifacts=artifacts)
    except SendingElsewhere:
        log.info("the %s email of invoice %s is being sent for another event", kind, invoice.id)
        ctx.repo.mark_processed("notify", event["source"], event["id"])
        return StepResult(
            {"invoice_id": invoice.id, "email": kind, "sent": False, "sending_elsewhere": True}
        )
    if sent.claimer == claimer:
        # sent now, or by this event's earlier delivery that then failed (or died) before
        # the broker took ``notified``: the same event id, which consumers drop when repeated
        # (another event's delivery that sent it emits its own)
        _emit(
            ctx,
            make_event(
                INVOICE_NOTIFIED,
                naming.step_source("notify"),
                subject=invoice.id,
                id=naming.notified_event_id(invoice.id, kind),
                data={
                    "invoice_id": invoice.id,
                    "owner_id": invoice.owner_id,
                    "kind": kind,
                    "status": invoice.status,
                },
            ),
        )
    ctx.repo.mark_processed("notify", event["source"], event["id"])
    return StepResult({"invoice_id": invoice.id, "email": kind, "sent": sent.now})


# ------------------------------------------------------------------------- dead letter


#: the start of a problem body as the edge writes it (status, title, detail in this order):
#: what is left of one the broker cut short
_PROBLEM_START = re.compile(
    r'\s*\{\s*"status"\s*:\s*\d+\s*,\s*"title"\s*:\s*"(?:[^"\\]|\\.)*"\s*,'
    r'\s*"detail"\s*:\s*("(?:[^"\\]|\\.)*")'
)
#: a step's name: a Knative Service's or the local runtime's function path's
_STEP_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


def _error_answer(event: Event) -> str:
    """The subscriber's answer as text, which the broker passes on base64 encoded and cut
    short (``knativeerrordata``). Anything at all: a problem body, a proxy's HTML page, the
    broker's own ``dispatch error: ...`` with the subscriber's URL when there was no answer.
    For the log only: :func:`_problem_reason` is what an owner may see."""
    raw = event.get("knativeerrordata") or ""
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return str(raw)


def _problem_reason(answer: str) -> str:
    """The reason a problem+json answer (the edge's, :func:`invoiceflow.edge.error_response`)
    gives: its detail (else title) and first problems; ``""`` for any other answer, whose
    text may be a library's message, a path or an internal URL."""
    try:
        body = json.loads(answer)
    except (ValueError, RecursionError):
        # cut short: the problem body starts with status, title and detail, so the detail
        # usually survives whole
        match = _PROBLEM_START.match(answer)
        return str(json.loads(match.group(1)))[:500] if match else ""
    if not (
        isinstance(body, dict)
        and isinstance(body.get("status"), int)
        and isinstance(body.get("title"), str)
    ):
        return ""
    detail = body.get("detail")
    reason = detail if isinstance(detail, str) and detail else body["title"]
    problems = body.get("problems")
    if isinstance(problems, list):
        listed = [
            f"{p['pointer']}: {p['message']}"
            for p in problems[:5]
            if isinstance(p, dict)
            and isinstance(p.get("pointer"), str)
            and isinstance(p.get("message"), str)
        ]
        if listed:
            reason += "; " + "; ".join(listed)
    return reason[:500]


def _step_name(destination: str) -> str:
    """The step a dead-lettered event was for, from its subscriber's URL: the last path
    segment (the local runtime's ``http://127.0.0.1:8080/_functions/render-pdf``) or else the
    host's first label (Knative's ``http://render-pdf.invoiceflow.svc.cluster.local``); never
    a host or port."""
    parts = urlsplit(destination)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1] or (parts.hostname or "").split(".")[0]
    return name if _STEP_NAME.fullmatch(name) else "a step"


@takes_any_type
def dead_letter(event: Event, ctx: Context) -> StepResult:
    """Receives what every trigger gave up on, whatever its type. Marks the invoice failed
    with a readable reason and emits ``failed`` (through the outbox, in the same
    transaction). The reason, which the owner sees (API, failure email), names the step and
    the status and quotes only a problem+json answer; any other answer (the broker's
    ``dispatch error`` naming the subscriber's URL, a proxy's HTML page) goes to the log.

    A ``received`` invoice that has every file it asked for is not failed: what gave up was
    a step after its files (notify before it marked the invoice ready, a renderer whose
    ``rendered`` event the broker refused), so nothing failed that the owner could be told
    of, and a failure email would be followed by the ready email of the next ``rendered``
    delivery. It stays ``received``, as when the broker drops such an event, for the next
    delivery or ``invoiceflow invoices redrive`` (:mod:`invoiceflow.redrive`) to make it
    ready with its one ready email; the log says so."""
    code = str(event.get("knativeerrorcode") or "?")
    code = code if code.isdigit() and len(code) == 3 else "?"
    destination = str(event.get("knativeerrordest") or "?")
    answer = _error_answer(event)
    detail = _problem_reason(answer)
    if ctx.repo.is_processed("dead-letter", event["source"], event["id"]):
        return StepResult({"duplicate": True})
    # the whole answer, whatever it says, for the operator
    log.warning(
        "dead letter: %s to %s failed with %s: %r",
        event["type"],
        destination,
        code,
        answer.strip()[:1000],
    )
    if event["type"] in (INVOICE_FAILED, INVOICE_NOTIFIED, INVOICE_REQUESTED):
        # nothing to mark (a failure email that cannot be sent, which `invoiceflow invoices
        # redrive` sends later, or a request that never became an invoice): the log line
        # above is the record
        ctx.repo.mark_processed("dead-letter", event["source"], event["id"])
        return StepResult({"logged": True})
    data = event.data if isinstance(event.data, dict) else {}
    invoice_id = data.get("invoice_id") or event.get("subject")
    invoice = (
        ctx.repo.get_invoice(invoice_id)
        if isinstance(invoice_id, str) and forbidden_character(invoice_id) is None
        else None
    )
    if invoice is None:
        ctx.repo.mark_processed("dead-letter", event["source"], event["id"])
        return StepResult({"logged": True})
    step = _step_name(destination)

    def complete_and_received(current: InvoiceRecord | None) -> bool:
        return (
            current is not None and current.status == "received" and _has_every_file(ctx, current)
        )

    def left_for_redrive() -> StepResult:
        log.warning(
            "dead letter: invoice %s has every file, so %s giving up does not fail it; it "
            "stays received until `invoiceflow invoices redrive` makes it ready",
            invoice.id,
            step,
        )
        ctx.repo.mark_processed("dead-letter", event["source"], event["id"])
        return StepResult({"invoice_id": invoice.id, "failed": False, "left_for_redrive": True})

    if complete_and_received(invoice):
        return left_for_redrive()
    if detail:
        reason = f"{step} failed (HTTP {code}): {detail}"
    elif answer.startswith("dispatch error"):  # the broker's: no answer at all
        reason = f"{step} did not answer (HTTP {code})"
    else:
        reason = f"{step} failed (HTTP {code}) without a readable reason"
    failed = NewOutboxEvent(
        event_id=naming.failed_event_id(invoice.id),
        type=INVOICE_FAILED,
        source=naming.step_source("dead-letter"),
        subject=invoice.id,
        data={
            "invoice_id": invoice.id,
            "owner_id": invoice.owner_id,
            "reason": reason,
            "error_code": str(code),
            "failed_event_type": event["type"],
        },
    )
    # not if its last file was committed since the check above: then it is left as above
    changed = ctx.repo.mark_invoice_failed(
        invoice.id, reason, [failed], unless_complete=invoice.formats
    )
    if not changed and complete_and_received(ctx.repo.get_invoice(invoice.id)):
        return left_for_redrive()
    relay_after_commit(ctx, [failed])
    ctx.repo.mark_processed("dead-letter", event["source"], event["id"])
    return StepResult({"invoice_id": invoice.id, "failed": changed})
