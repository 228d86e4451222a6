"""Cross-user access by every id on every path: another user's invoice id and file ids (PDF,
XLSX, the submitted JSON) answer exactly what an id that does not exist answers, for GET and
HEAD, with no byte of the owner's file or its headers; without a token every path is a 401
(HEAD included, as the OpenAPI document says)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from invoiceflow.api import openapi_document
from invoiceflow.context import get_context
from invoiceflow.outputs import OUTPUT_FORMATS
from support.api import Person, example
from support.openapi import assert_matches

pytestmark = pytest.mark.attack

SECRET_PDF = b"%PDF-1.7 alice's secret invoice " * 64
SECRET_XLSX = b"PK\x03\x04 alice's secret workbook " * 64


def _alices_invoice(upload_client: Any, alice: Person) -> tuple[str, dict[str, str]]:
    """Alice's rendered invoice: its id and its file ids by format."""
    r = upload_client.post(
        "/upload",
        headers={**alice.auth, "Idempotency-Key": "alice-key"},
        data=example("eur-two-rates.json"),
        content_type="application/json",
    )
    assert r.status_code == 202
    invoice_id = str(r.get_json()["invoice_id"])
    ctx = get_context()
    invoice = ctx.repo.get_invoice(invoice_id)
    assert invoice is not None
    files = {"json": invoice.raw_file_id}
    for fmt, data in (("pdf", SECRET_PDF), ("xlsx", SECRET_XLSX)):
        stored = ctx.docs.put(
            data,
            file_id=f"{invoice_id}-{fmt}",
            filename=f"x.{fmt}",
            content_type=OUTPUT_FORMATS[fmt].content_type,
            owner=alice.id,
            invoice_id=invoice_id,
            kind=fmt,
        )
        ctx.repo.record_artifact(invoice_id, fmt, stored.file_id, stored.size, stored.sha256)
        files[fmt] = stored.file_id
    return invoice_id, files


def _paths(invoice_id: str, files: dict[str, str]) -> list[tuple[str, str]]:
    """(URL, OpenAPI path) for every way to reach the invoice or one of its files."""
    paths = [(f"/invoices/{invoice_id}", "/invoices/{id}")]
    paths += [
        (f"/invoices/{invoice_id}/{fmt}", f"/invoices/{{id}}/{fmt}")
        for fmt in ("pdf", "xlsx", "json")
    ]
    paths += [(f"/download?fid={fid}", "/download") for fid in files.values()]
    return paths


def _absent(invoice_id: str, files: dict[str, str]) -> dict[str, str]:
    """The same URLs with ids that exist for nobody."""
    other = str(uuid.uuid4())
    return {url: url.replace(invoice_id, other) for url, _ in _paths(invoice_id, files)}


def test_another_users_ids_are_indistinguishable_from_absent_ones(
    upload_client: Any, download_client: Any, alice: Person, bob: Person
) -> None:
    invoice_id, files = _alices_invoice(upload_client, alice)
    absent = _absent(invoice_id, files)
    for url, spec_path in _paths(invoice_id, files):
        own = download_client.get(url, headers=alice.auth)
        assert own.status_code == 200, url  # the ids are real
        for method in ("get", "head"):
            theirs = getattr(download_client, method)(url, headers=bob.auth)
            nobody = getattr(download_client, method)(absent[url], headers=bob.auth)
            assert theirs.status_code == nobody.status_code == 404, (method, url)
            assert theirs.data == nobody.data, (method, url)
            assert theirs.mimetype == nobody.mimetype, (method, url)
            for header in ("ETag", "Content-Disposition", "Last-Modified"):
                assert header not in theirs.headers, (method, url, header)
            assert theirs.headers.get("Content-Length") == nobody.headers.get("Content-Length")
            assert b"secret" not in theirs.data
            if method == "get":
                assert_matches(theirs, spec_path, "get")
    # nor does bob's list, nor his use of alice's Idempotency-Key, reveal alice's invoice
    listed = download_client.get("/invoices", headers=bob.auth).get_json()
    assert listed["items"] == []
    replay = upload_client.post(
        "/upload",
        headers={**bob.auth, "Idempotency-Key": "alice-key"},
        data=example("eur-two-rates.json"),
        content_type="application/json",
    )
    assert replay.status_code == 202 and replay.get_json()["invoice_id"] != invoice_id


def test_without_a_token_every_path_is_401_head_included(
    upload_client: Any, download_client: Any, alice: Person
) -> None:
    invoice_id, files = _alices_invoice(upload_client, alice)
    for url, spec_path in [*_paths(invoice_id, files), ("/invoices", "/invoices")]:
        for method in ("get", "head"):
            r = getattr(download_client, method)(url)
            assert r.status_code == 401, (method, url)
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert b"secret" not in r.data
            operations = openapi_document()["paths"][spec_path]
            if method in operations:
                assert "401" in operations[method]["responses"], (method, spec_path)
