"""The HTTP functions: login, upload, download/status, and intake (``invoice.requested``).

Each handler takes a Flask/werkzeug request (what functions-framework passes) and returns a
response; :func:`endpoint` turns every error into its status and a JSON problem body in one
place (:func:`invoiceflow.errors.status_for`), so no path answers a bare 500.

Paths (the seed's, kept exactly):

* ``POST /login``                         HTTP Basic -> ``{"token", "token_type", "expires_in"}``
* ``POST /upload``                        multipart ``file`` or a raw JSON body -> 202
  (the upload function serves only this path: events never reach it)
* ``GET|HEAD /download?fid=FILE_ID``      the file, owner only
* ``GET /invoices``                       the caller's invoices, newest first, paginated
* ``GET /invoices/{id}``                  status, formats, files, links, error
* ``GET|HEAD /invoices/{id}/pdf|xlsx|json`` the files
* ``GET /openapi.json``                   the OpenAPI 3.1 description of all of the above

The intake function is not public (a cluster-local Service the broker delivers to): it takes
signed ``invoice.requested`` CloudEvents only (:mod:`invoiceflow.signing`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import uuid
from importlib import resources
from typing import Any
from urllib.parse import quote

from flask import Request, Response

from invoiceflow.auth import basic_credentials, bearer_user
from invoiceflow.context import Context, get_context
from invoiceflow.domain import parse_invoice
from invoiceflow.errors import (
    BadRequest,
    Conflict,
    IdempotencyConflict,
    NotFound,
    PayloadTooLarge,
    UnknownOwner,
)
from invoiceflow.events import INVOICE_REQUESTED, INVOICE_UPLOADED, from_request
from invoiceflow.logs import bind
from invoiceflow.outbox import relay_after_commit
from invoiceflow.outputs import JSON_CONTENT_TYPE, OUTPUT_FORMATS, file_name
from invoiceflow.stores.protocols import (
    InvoiceRecord,
    InvoiceSource,
    NewInvoiceRecord,
    NewOutboxEvent,
    User,
)
from invoiceflow.web import allow, endpoint, json_response

log = logging.getLogger(__name__)

UPLOAD_SOURCE = "/invoiceflow/upload"
#: multipart framing allowed on top of the document limit
_MULTIPART_SLACK = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ------------------------------------------------------------------------------- login


@endpoint
def login(request: Request) -> Response:
    allow(request, "POST")
    ctx = get_context()
    from invoiceflow import accounts  # argon2: only the login function loads it

    email, password = basic_credentials(request.headers.get("Authorization"))
    client = accounts.client_address(ctx.settings, request.remote_addr, request.headers.get)
    token = accounts.login(ctx.settings, ctx.repo, email, password, client=client)
    return json_response(token.to_dict(), headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------ upload


def invoice_links(ctx: Context, invoice_id: str) -> dict[str, str]:
    base = f"{ctx.settings.public_base_url}/invoices/{invoice_id}"
    return {"self": base, "pdf": f"{base}/pdf", "xlsx": f"{base}/xlsx", "json": f"{base}/json"}


def _accepted_body(ctx: Context, inv: InvoiceRecord) -> dict[str, Any]:
    return {
        "invoice_id": inv.id,
        "status": inv.status,
        "number": inv.number,
        "links": invoice_links(ctx, inv.id),
    }


def _document_bytes(request: Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit + _MULTIPART_SLACK:
        raise PayloadTooLarge(f"the request is {length:,} bytes; the document limit is {limit:,}")
    mimetype = request.mimetype or ""
    if mimetype.startswith("multipart/form-data"):
        upload = request.files.get("file")
        if upload is None:
            raise BadRequest(
                "send the invoice as the multipart field 'file' "
                "(curl -F 'file=@invoice.json') or as an application/json body"
            )
        data = upload.stream.read(limit + 1)
    else:
        if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
            raise BadRequest(
                f"unsupported Content-Type {mimetype!r}: send application/json "
                "or multipart/form-data"
            )
        data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the document is over the limit of {limit:,} bytes")
    if not data.strip():
        raise BadRequest("the request carries no document")
    return data


def uploaded_event_id(invoice_id: str) -> str:
    """The id of an invoice's ``uploaded`` event (source ``UPLOAD_SOURCE``)."""
    return f"{invoice_id}.uploaded"


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
    raw_id = f"{invoice_id}-json"
    ctx.docs.put(
        data,
        file_id=raw_id,
        filename=file_name(document.invoice.number, "json"),
        content_type=JSON_CONTENT_TYPE,
        owner=owner.id,
        invoice_id=invoice_id,
        kind="raw",
    )
    event = NewOutboxEvent(
        event_id=uploaded_event_id(invoice_id),
        type=INVOICE_UPLOADED,
        source=UPLOAD_SOURCE,
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


@endpoint
def upload(request: Request) -> Response:
    ctx = get_context()
    if request.path.rstrip("/") != "/upload":
        raise NotFound("no such resource")
    allow(request, "POST")
    user = bearer_user(ctx.settings, ctx.repo, request.headers.get("Authorization"))
    bind(user=user.id)
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 1 <= len(key) <= 200 or _CONTROL.search(key)):
        raise BadRequest("Idempotency-Key must be 1 to 200 characters without control characters")
    data = _document_bytes(request, ctx.settings.max_document_bytes)
    invoice, _created = accept_document(ctx, user, data, source="http", idempotency_key=key)
    relay_after_commit(ctx, [(UPLOAD_SOURCE, uploaded_event_id(invoice.id))])
    location = f"/invoices/{invoice.id}"
    return json_response(_accepted_body(ctx, invoice), 202, headers={"Location": location})


@endpoint
def intake(request: Request) -> Response:
    """``invoice.requested`` (the intake function): data is ``{"owner_email", "invoice":
    {...document...}}``, signed by a producer (:mod:`invoiceflow.signing`). An unsigned or
    wrongly signed event is a 401 (permanent: dead-lettered). The document is validated
    before the owner is looked up, and an unknown and a disabled owner get the same 422, so
    the answer to an event says nothing about which accounts exist beyond what the signing
    producer already names."""
    allow(request, "POST")
    ctx = get_context()
    event = from_request(dict(request.headers), request.get_data())
    if event["type"] != INVOICE_REQUESTED:
        raise BadRequest(f"this function takes {INVOICE_REQUESTED} events, not {event['type']}")
    from invoiceflow.signing import verify_event

    producer = verify_event(event, ctx.settings.event_producer_keys)
    bind(event=event["id"], producer=producer)
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
    document = json.dumps(data["invoice"], ensure_ascii=False).encode()
    parse_invoice(document, max_bytes=ctx.settings.max_document_bytes)  # problems first
    owner = ctx.repo.get_user_by_email(data["owner_email"])
    if owner is None or owner.disabled:
        log.info(
            "invoice.requested %s from producer %s names no active user", event["id"], producer
        )
        raise UnknownOwner("the owner_email of the event names no active user")
    # the event's source+id is the idempotency key: a redelivery creates nothing new
    key = "ce:" + hashlib.sha256(f"{event['source']}\n{event['id']}".encode()).hexdigest()
    invoice, _ = accept_document(ctx, owner, document, source="event", idempotency_key=key)
    relay_after_commit(ctx, [(UPLOAD_SOURCE, uploaded_event_id(invoice.id))])
    return json_response(_accepted_body(ctx, invoice), 202)


# ---------------------------------------------------------------------------- download


def _owned_invoice(ctx: Context, user: User, invoice_id: str) -> InvoiceRecord:
    invoice = (
        ctx.repo.get_invoice(invoice_id, owner_id=user.id) if _UUID.match(invoice_id) else None
    )
    if invoice is None:
        raise NotFound("no such invoice")
    return invoice


def _send_file(ctx: Context, request: Request, user: User, file_id: str) -> Response:
    opened = ctx.docs.open(file_id)
    if opened is None:
        raise NotFound("no such file")
    info = opened.info
    if info.owner != user.id:
        opened.close()
        raise NotFound("no such file")
    etag = f'"{info.sha256}"'
    ascii_name = info.filename.encode("ascii", "replace").decode().replace("?", "_")
    headers = {
        "ETag": etag,
        "Content-Length": str(info.size),
        "Content-Disposition": f'attachment; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(info.filename)}",
        "Cache-Control": "private, max-age=0, must-revalidate",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in (request.headers.get("If-None-Match") or ""):
        opened.close()
        return Response(status=304, headers={"ETag": etag})
    if request.method == "HEAD":
        opened.close()
        response = Response(status=200, headers=headers, mimetype=info.content_type)
        response.headers["Content-Length"] = str(info.size)
        return response
    response = Response(
        iter(opened),
        status=200,
        headers=headers,
        mimetype=info.content_type,
        direct_passthrough=True,
    )
    return response


def _invoice_view(ctx: Context, inv: InvoiceRecord) -> dict[str, Any]:
    base = ctx.settings.public_base_url
    files = {}
    for art in ctx.repo.list_artifacts(inv.id):
        files[art.format] = {
            "file_id": art.file_id,
            "size": art.size,
            "sha256": art.sha256,
            "url": f"{base}/download?fid={art.file_id}",
        }
    files["json"] = {"file_id": inv.raw_file_id, "url": f"{base}/download?fid={inv.raw_file_id}"}
    view: dict[str, Any] = {
        "invoice_id": inv.id,
        "number": inv.number,
        "status": inv.status,
        "source": inv.source,
        "formats": list(inv.formats),
        "files": files,
        "links": invoice_links(ctx, inv.id),
        "created_at": inv.created_at.isoformat(),
        "updated_at": inv.updated_at.isoformat(),
    }
    if inv.error:
        view["error"] = inv.error
    return view


_INVOICE_PATH = re.compile(r"^/invoices/(?P<id>[^/]+)(?:/(?P<fmt>[a-z]+))?/?$")


@endpoint
def download(request: Request) -> Response:
    ctx = get_context()
    path = request.path.rstrip("/") or "/"
    if path == "/openapi.json":
        return json_response(openapi_document())
    allow(request, "GET", "HEAD")
    user = bearer_user(ctx.settings, ctx.repo, request.headers.get("Authorization"))
    bind(user=user.id)
    if path == "/download":
        fid = request.args.get("fid", "")
        return _send_file(ctx, request, user, fid)
    if path == "/invoices":
        try:
            limit = int(request.args.get("limit", "20"))
        except ValueError:
            raise BadRequest("limit must be a whole number") from None
        if not 1 <= limit <= 100:
            raise BadRequest("limit must be from 1 to 100")
        page = ctx.repo.list_invoices(user.id, limit=limit, cursor=request.args.get("cursor"))
        body = {
            "items": [_invoice_view(ctx, inv) for inv in page.items],
            "next_cursor": page.next_cursor,
        }
        return json_response(body)
    match = _INVOICE_PATH.match(path)
    if match is None:
        raise NotFound("no such resource")
    invoice = _owned_invoice(ctx, user, match["id"])
    fmt = match["fmt"]
    if fmt is None:
        return json_response(_invoice_view(ctx, invoice))
    if fmt == "json":
        return _send_file(ctx, request, user, invoice.raw_file_id)
    if fmt not in OUTPUT_FORMATS:
        raise NotFound("no such resource")
    artifact = ctx.repo.get_artifact(invoice.id, fmt)
    if artifact is None:
        if invoice.status == "failed":
            raise NotFound(f"the invoice failed and has no {fmt}: {invoice.error}")
        if fmt not in invoice.formats:
            raise NotFound(f"no {fmt} is rendered for this invoice")
        raise Conflict(f"the {fmt} is not ready yet (status: {invoice.status}); retry shortly")
    return _send_file(ctx, request, user, artifact.file_id)


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    import yaml

    text = resources.files("invoiceflow").joinpath("openapi.yaml").read_text()
    return dict(yaml.safe_load(text))
