"""The HTTP functions: login, upload and download (with the invoices' status).

Each handler takes a Flask/werkzeug request (what functions-framework passes) and returns a
response; the edge (:func:`invoiceflow.edge.serve_http`) turns every error into its status and
a JSON problem body in one place (:func:`invoiceflow.errors.status_for`), so no path answers a
bare 500.

Paths (the seed's, kept exactly):

* ``POST /login``                         HTTP Basic -> ``{"token", "token_type", "expires_in"}``
* ``POST /upload[?formats=pdf,cii]``      multipart ``file`` or a raw JSON body -> 202
  (the upload function serves only this path: events never reach it); ``formats`` chooses
  the outputs (default INVOICE_FORMATS); an e-invoice format holds the document to the
  EN 16931 rules (a 422 listing every broken rule)
* ``GET|PUT /settings/numbering``         the caller's invoice number series (upload
  function): the numbers documents without one get (:mod:`invoiceflow.numbering`)
* ``GET|PUT /settings/branding``          the caller's branding settings (upload function):
  ``{}`` when none; a PUT replaces them (:mod:`invoiceflow.branding`)
* ``GET|HEAD /download?fid=FILE_ID``      the file, owner only
* ``GET /invoices``                       the caller's invoices, newest first, paginated
* ``GET /invoices/{id}``                  status, formats, files, links, error
* ``GET|HEAD /invoices/{id}/{format}``    the files: pdf, xlsx, cii, ubl, facturx, json
* ``GET /openapi.json``                   the OpenAPI 3.1 description of all of the above
* ``GET|HEAD /`` and ``/app/<file>``       the web app for people (:mod:`invoiceflow.webapp`)

Signed ``invoice.requested`` events reach the intake step (:func:`invoiceflow.steps.intake`),
not these functions; both doors accept documents through :mod:`invoiceflow.acceptance`.
"""

from __future__ import annotations

import functools
import logging
import re
from importlib import resources
from typing import Any, NamedTuple, cast
from urllib.parse import quote

from flask import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

from invoiceflow import naming, webapp
from invoiceflow.auth import basic_credentials, bearer_user
from invoiceflow.context import Context, get_context
from invoiceflow.edge import allow, json_response
from invoiceflow.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from invoiceflow.logs import bind
from invoiceflow.outputs import JSON_CONTENT_TYPE, OUTPUT_FORMATS
from invoiceflow.stores.protocols import InvoiceRecord, User

log = logging.getLogger(__name__)

#: multipart framing allowed on top of the document limit
_MULTIPART_SLACK = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ------------------------------------------------------------------------------- login


def login(request: Request) -> Response:
    allow(request, "POST")
    ctx = get_context()
    from invoiceflow import accounts  # argon2: only the login function loads it

    email, password = basic_credentials(request.headers.get("Authorization"))
    client = accounts.client_address(ctx.settings, request.remote_addr, request.headers.get)
    token = accounts.login(ctx.settings, ctx.repo, email, password, client=client)
    return json_response(token.to_dict(), headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------ upload


#: the horizontal whitespace of werkzeug's multipart patterns
_HSPACE = frozenset(b" \t\x0b\x0c")  # [^\\S\\n\\r] of a bytes pattern
#: any fixed boundary: the decoder's own patterns for it come from re's cache
_FIXED_BOUNDARY = b"invoiceflow-fixed-boundary"
_NO_FILE = (
    "send the invoice as the multipart field 'file' "
    "(curl -F 'file=@invoice.json') or as an application/json body"
)


class _Delimiter(NamedTuple):
    """What a match of werkzeug's delimiter pattern tells its decoder."""

    begin: int
    finish: int
    tail: bytes

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.finish

    def group(self, index: int) -> bytes:
        assert index == 1
        return self.tail


class _DelimiterSearch:
    r"""The matches of werkzeug's multipart delimiter patterns,
    ``rb"%s--%s(--[^\S\n\r]*%s?|[^\S\n\r]*%s)" % (LB, boundary, LB, LB)`` (``LB`` a CRLF, LF
    or CR; optional before the first delimiter), found with ``bytes.find``. The decoder
    compiles both patterns for every request (each client's boundary is new, so re's cache
    never holds them): 0.65 ms of CPU per multipart upload, more than parsing the document's
    framing. Same matches, same order (tests/api/test_multipart.py holds them to the
    patterns)."""

    __slots__ = ("delimiter", "leading_optional")

    def __init__(self, boundary: bytes, *, leading_optional: bool) -> None:
        self.delimiter = b"--" + boundary
        self.leading_optional = leading_optional

    def search(self, data: bytes | bytearray, pos: int = 0) -> _Delimiter | None:
        at = data.find(self.delimiter, pos)
        while at != -1:
            if at - 2 >= pos and data[at - 2 : at] == b"\r\n":
                begin = at - 2
            elif at - 1 >= pos and data[at - 1] in (10, 13):  # LF, CR
                begin = at - 1
            elif self.leading_optional:
                begin = at
            else:
                at = data.find(self.delimiter, at + 1)
                continue
            after = at + len(self.delimiter)
            finish = _delimiter_tail(data, after)
            if finish is not None:
                return _Delimiter(begin, finish, bytes(data[after:finish]))
            at = data.find(self.delimiter, at + 1)
        return None


def _delimiter_tail(data: bytes | bytearray, at: int) -> int | None:
    r"""Where ``--[^\S\n\r]*LB?|[^\S\n\r]*LB`` matching at ``at`` ends, or None."""
    closing = data[at : at + 2] == b"--"
    end = at + 2 if closing else at
    while end < len(data) and data[end] in _HSPACE:
        end += 1
    if data[end : end + 2] == b"\r\n":
        return end + 2
    if end < len(data) and data[end] in (10, 13):
        return end + 1
    return end if closing else None


class _Decoder(MultipartDecoder):
    """werkzeug's multipart decoder with the delimiter found by :class:`_DelimiterSearch`."""

    def __init__(self, boundary: bytes, max_form_memory_size: int | None, max_parts: int | None):
        super().__init__(
            _FIXED_BOUNDARY, max_form_memory_size=max_form_memory_size, max_parts=max_parts
        )
        self.boundary = boundary
        self.preamble_re = cast(
            "re.Pattern[bytes]", _DelimiterSearch(boundary, leading_optional=True)
        )
        self.boundary_re = cast(
            "re.Pattern[bytes]", _DelimiterSearch(boundary, leading_optional=False)
        )


def _multipart_file(request: Request, limit: int) -> bytes:
    """The first complete file part named ``file`` (what ``request.files.get("file")`` gives),
    read with :class:`_Decoder`, at most ``limit`` bytes of it (more: the caller's 413) and
    ``limit`` + the framing slack in all. A body werkzeug cannot parse is a 400, as before."""
    try:
        boundary = request.mimetype_params.get("boundary", "").encode("ascii")
    except UnicodeEncodeError:
        boundary = b""
    if not boundary:
        raise BadRequest(_NO_FILE)
    decoder = _Decoder(boundary, request.max_form_memory_size, request.max_form_parts)
    budget = limit + _MULTIPART_SLACK
    received = 0
    found: bytes | None = None
    collecting: list[bytes] | None = None
    try:
        while True:
            chunk = request.stream.read(64 * 1024)
            received += len(chunk)
            if received > budget:
                raise PayloadTooLarge(f"the request is over {budget:,} bytes")
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, Epilogue | NeedData):
                if isinstance(event, File | Field):
                    wanted = found is None and isinstance(event, File) and event.name == "file"
                    collecting = [] if wanted else None
                elif isinstance(event, Data) and collecting is not None:
                    collecting.append(event.data)
                    if not event.more_data:
                        found, collecting = b"".join(collecting), None
                event = decoder.next_event()
            if not chunk or isinstance(event, Epilogue):
                break
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge("a part of the request is too large") from exc
    except ValueError as exc:  # werkzeug's form parser answers an unreadable body with no files
        raise BadRequest(_NO_FILE) from exc
    if found is None:
        raise BadRequest(_NO_FILE)
    return found[: limit + 1]


def _document_bytes(request: Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit + _MULTIPART_SLACK:
        raise PayloadTooLarge(f"the request is {length:,} bytes; the document limit is {limit:,}")
    mimetype = request.mimetype or ""
    if mimetype.startswith("multipart/form-data"):
        data = _multipart_file(request, limit)
    else:
        if mimetype and mimetype != JSON_CONTENT_TYPE and not mimetype.endswith("+json"):
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


def upload(request: Request) -> Response:
    if request.path.rstrip("/") == naming.SETTINGS_NUMBERING_PATH:
        return numbering_settings(request)
    ctx = get_context()
    if request.path.rstrip("/") == naming.SETTINGS_BRANDING_PATH:
        return branding_settings(request)
    if request.path.rstrip("/") != naming.UPLOAD_PATH:
        raise NotFound("no such resource")
    allow(request, "POST")
    # acceptance (parsing, numbering, the printable check, the outbox): only the upload
    # function loads it, so login's and download's cold start does not pay for it
    from invoiceflow.acceptance import (
        accept_document,
        accepted_body,
        formats_parameter,
        relay_uploaded,
    )

    user = bearer_user(ctx.settings, ctx.repo, request.headers.get("Authorization"))
    bind(user=user.id)
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 1 <= len(key) <= 200 or _CONTROL.search(key)):
        raise BadRequest("Idempotency-Key must be 1 to 200 characters without control characters")
    formats = formats_parameter(request.args.get("formats"))
    data = _document_bytes(request, ctx.settings.max_document_bytes)
    invoice, _created = accept_document(
        ctx, user, data, source="http", idempotency_key=key, formats=formats
    )
    relay_uploaded(ctx, invoice)
    location = naming.invoice_path(invoice.id)
    return json_response(accepted_body(ctx, invoice), 202, headers={"Location": location})


# ------------------------------------------------------------------ numbering settings

#: largest numbering settings body (a pattern is at most numbering.MAX_PATTERN_CHARS)
_MAX_NUMBERING_BODY = 4096


def _settings_caller(request: Request) -> tuple[Context, User]:
    """The context and the token's user of a ``GET|PUT /settings/...`` request; a PUT must
    carry JSON (400 otherwise). Only the token's user is reached: the paths name nobody."""
    allow(request, "GET", "PUT")
    ctx = get_context()
    user = bearer_user(ctx.settings, ctx.repo, request.headers.get("Authorization"))
    bind(user=user.id)
    if request.method == "PUT":
        mimetype = request.mimetype or ""
        if mimetype and mimetype != JSON_CONTENT_TYPE and not mimetype.endswith("+json"):
            raise BadRequest(f"unsupported Content-Type {mimetype!r}: send application/json")
    return ctx, user


def numbering_settings(request: Request) -> Response:
    """``GET|PUT /settings/numbering``: the caller's own invoice number series (the default
    when none was set) with the last sequence number of each period; a PUT replaces the
    series (a 422 lists every problem) and answers as a GET does. The counters run on."""
    from invoiceflow import numbering

    ctx, user = _settings_caller(request)
    if request.method == "PUT":
        data = request.stream.read(_MAX_NUMBERING_BODY + 1)
        if len(data) > _MAX_NUMBERING_BODY:
            raise PayloadTooLarge(f"numbering settings are at most {_MAX_NUMBERING_BODY} bytes")
        from invoiceflow.domain.parse import load_json

        series = numbering.check_series(load_json(data, max_bytes=_MAX_NUMBERING_BODY))
        ctx.repo.set_number_series(user.id, series.pattern, series.yearly_reset)
        log.info("numbering series set to %s", series.pattern)
    body = numbering.settings_view(ctx.repo, user.id)
    return json_response(body, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------ branding settings


def branding_settings(request: Request) -> Response:
    """``GET|PUT /settings/branding``: the caller's own branding settings (``{}`` when none
    were stored); a PUT replaces them all (a 422 lists every problem) and answers them."""
    from invoiceflow import branding  # the upload function's: login and download never load it

    ctx, user = _settings_caller(request)
    headers = {"Cache-Control": "no-store"}
    if request.method == "PUT":
        data = request.stream.read(branding.MAX_SETTINGS_BYTES + 1)
        if not data.strip():
            raise BadRequest("the request carries no settings (send {} to clear them)")
        settings = branding.parse_settings(data)
        branding.store_settings(ctx.repo, user.id, settings)
        log.info("branding settings replaced (%d fields)", len(settings))
        return json_response(settings, headers=headers)
    return json_response(branding.load_settings(ctx.repo, user.id), headers=headers)


# ---------------------------------------------------------------------------- download


def _owned_invoice(ctx: Context, user: User, invoice_id: str) -> InvoiceRecord:
    invoice = (
        ctx.repo.get_invoice(invoice_id, owner_id=user.id) if _UUID.match(invoice_id) else None
    )
    if invoice is None:
        raise NotFound("no such invoice")
    return invoice


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (a weak ``W/`` tag as well: the weak
    comparison of RFC 9110, 13.1.2) or is ``*`` (the file exists)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in tags or tags == ["*"]


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
    if _not_modified(request.headers.get("If-None-Match"), etag):
        opened.close()  # a 304 repeats the 200's ETag and Cache-Control (RFC 9110, 15.4.5)
        return Response(
            status=304, headers={"ETag": etag, "Cache-Control": headers["Cache-Control"]}
        )
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
            "url": naming.download_url(base, art.file_id),
        }
    files[naming.SUBMITTED_FORMAT] = {
        "file_id": inv.raw_file_id,
        "url": naming.download_url(base, inv.raw_file_id),
    }
    if inv.document_file_id is not None:  # the completed document, what was rendered
        files[naming.DOCUMENT_FORMAT] = {
            "file_id": inv.document_file_id,
            "url": naming.download_url(base, inv.document_file_id),
        }
    view: dict[str, Any] = {
        "invoice_id": inv.id,
        "number": inv.number,
        "status": inv.status,
        "source": inv.source,
        "formats": list(inv.formats),
        "files": files,
        "links": naming.invoice_links(base, inv.id, inv.formats),
        "created_at": inv.created_at.isoformat(),
        "updated_at": inv.updated_at.isoformat(),
    }
    if inv.error:
        view["error"] = inv.error
    return view


_INVOICE_PATH = re.compile(
    rf"^{re.escape(naming.INVOICES_PATH)}/(?P<id>[^/]+)(?:/(?P<fmt>[a-z]+))?/?$"
)


def download(request: Request) -> Response:
    ctx = get_context()
    path = request.path.rstrip("/") or "/"
    allow(request, "GET", "HEAD")
    if path == naming.OPENAPI_PATH:
        return json_response(openapi_document())
    if webapp.serves(path):
        return webapp.serve(request, path)
    user = bearer_user(ctx.settings, ctx.repo, request.headers.get("Authorization"))
    bind(user=user.id)
    if path == naming.DOWNLOAD_PATH:
        fid = request.args.get("fid", "")
        return _send_file(ctx, request, user, fid)
    if path == naming.INVOICES_PATH:
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
    if fmt == naming.SUBMITTED_FORMAT:
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
