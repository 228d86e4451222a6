"""GET /download, /invoices..., ownership, ETags, HEAD, and the OpenAPI document."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from invoiceflow.context import get_context
from invoiceflow.outputs import OUTPUT_FORMATS
from support.api import Person, example
from support.openapi import assert_matches


def _upload(client: Any, person: Person, name: str = "eur-two-rates.json") -> str:
    r = client.post(
        "/upload", headers=person.auth, data=example(name), content_type="application/json"
    )
    assert r.status_code == 202
    return str(r.get_json()["invoice_id"])


def _fake_render(invoice_id: str, fmt: str, data: bytes) -> str:
    """What the render step does, without rendering: store a file and record the artifact."""
    ctx = get_context()
    inv = ctx.repo.get_invoice(invoice_id)
    assert inv is not None
    stored = ctx.docs.put(
        data,
        file_id=f"{invoice_id}-{fmt}",
        filename=f"{inv.number}.{fmt}",
        content_type=OUTPUT_FORMATS[fmt].content_type,
        owner=inv.owner_id,
        invoice_id=invoice_id,
        kind=fmt,
    )
    ctx.repo.record_artifact(invoice_id, fmt, stored.file_id, stored.size, stored.sha256)
    return stored.file_id


def test_download_streams_the_file_with_headers_and_head_works(
    upload_client: Any, download_client: Any, alice: Person
) -> None:
    invoice_id = _upload(upload_client, alice)
    pdf = b"%PDF-1.4 fake but stored " * 1000
    fid = _fake_render(invoice_id, "pdf", pdf)
    r = download_client.get(f"/download?fid={fid}", headers=alice.auth)
    assert r.status_code == 200
    assert_matches(r, "/download", "get")
    assert r.data == pdf
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Length"] == str(len(pdf))
    assert r.headers["ETag"] == f'"{hashlib.sha256(pdf).hexdigest()}"'
    assert 'filename="RE-2026-0042.pdf"' in r.headers["Content-Disposition"]
    head = download_client.head(f"/download?fid={fid}", headers=alice.auth)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(pdf))
    assert head.headers["ETag"] == r.headers["ETag"]
    cached = download_client.get(
        f"/download?fid={fid}", headers={**alice.auth, "If-None-Match": r.headers["ETag"]}
    )
    assert cached.status_code == 304 and cached.data == b""
    assert cached.headers["ETag"] == r.headers["ETag"]
    assert cached.headers["Cache-Control"] == r.headers["Cache-Control"]
    etag = r.headers["ETag"]
    for if_none_match, status in [
        (f"W/{etag}", 304),
        (f'"other", {etag}', 304),
        ("*", 304),
        (etag[:-3] + '"', 200),  # a tag that only begins like this one
        (f'"x{etag[1:]}', 200),
    ]:
        answer = download_client.get(
            f"/download?fid={fid}", headers={**alice.auth, "If-None-Match": if_none_match}
        )
        assert answer.status_code == status, if_none_match
    same = download_client.get(f"/invoices/{invoice_id}/pdf", headers=alice.auth)
    assert same.status_code == 200 and same.data == pdf
    raw = download_client.get(f"/invoices/{invoice_id}/json", headers=alice.auth)
    assert raw.status_code == 200 and raw.data == example("eur-two-rates.json")


def test_other_peoples_missing_and_malformed_ids_are_the_same_404(
    upload_client: Any, download_client: Any, alice: Person, bob: Person
) -> None:
    invoice_id = _upload(upload_client, alice)
    fid = _fake_render(invoice_id, "pdf", b"%PDF secret")
    answers = [
        download_client.get(f"/download?fid={fid}", headers=bob.auth),
        download_client.get(
            "/download?fid=00000000-0000-0000-0000-000000000000-pdf", headers=bob.auth
        ),
        download_client.get("/download?fid=../../etc/passwd", headers=bob.auth),
        download_client.get("/download", headers=bob.auth),
        download_client.get(f"/invoices/{invoice_id}", headers=bob.auth),
        download_client.get(f"/invoices/{invoice_id}/pdf", headers=bob.auth),
        download_client.get(f"/invoices/{invoice_id}/json", headers=bob.auth),
        download_client.get("/invoices/not-a-uuid", headers=bob.auth),
        download_client.get("/invoices/%00%ff/pdf", headers=bob.auth),
    ]
    assert {a.status_code for a in answers} == {404}
    for a in answers[:4]:
        assert_matches(a, "/download", "get")
    bodies = {a.get_json()["title"] for a in answers}
    assert bodies == {"Not found"}
    assert all(b"secret" not in a.data for a in answers)


def test_invoice_status_and_list(
    upload_client: Any, download_client: Any, alice: Person, bob: Person
) -> None:
    ids = [
        _upload(upload_client, alice, name)
        for name in ("minimal.json", "jpy-no-decimals.json", "legacy-flat.json")
    ]
    _upload(upload_client, bob)
    _fake_render(ids[0], "pdf", b"%PDF")
    r = download_client.get(f"/invoices/{ids[0]}", headers=alice.auth)
    assert r.status_code == 200
    assert_matches(r, "/invoices/{id}", "get")
    view = r.get_json()
    assert view["status"] == "received" and view["formats"] == ["pdf", "xlsx"]
    assert view["files"]["pdf"]["url"].endswith(f"fid={ids[0]}-pdf")
    not_ready = download_client.get(f"/invoices/{ids[0]}/xlsx", headers=alice.auth)
    assert not_ready.status_code == 409 and not_ready.headers["Retry-After"] == "1"
    assert_matches(not_ready, "/invoices/{id}/xlsx", "get")

    page1 = download_client.get("/invoices?limit=2", headers=alice.auth)
    assert_matches(page1, "/invoices", "get")
    body = page1.get_json()
    assert [i["invoice_id"] for i in body["items"]] == [ids[2], ids[1]]  # newest first
    page2 = download_client.get(
        f"/invoices?limit=2&cursor={body['next_cursor']}", headers=alice.auth
    )
    assert [i["invoice_id"] for i in page2.get_json()["items"]] == [ids[0]]
    assert page2.get_json()["next_cursor"] is None
    for bad in ("limit=0", "limit=abc", "limit=1000", "cursor=garbage"):
        assert download_client.get(f"/invoices?{bad}", headers=alice.auth).status_code == 400


def test_failed_invoice_shows_its_error(
    upload_client: Any, download_client: Any, alice: Person
) -> None:
    invoice_id = _upload(upload_client, alice)
    get_context().repo.mark_invoice_failed(invoice_id, "the logo could not be decoded")
    view = download_client.get(f"/invoices/{invoice_id}", headers=alice.auth).get_json()
    assert view["status"] == "failed" and view["error"] == "the logo could not be decoded"
    r = download_client.get(f"/invoices/{invoice_id}/pdf", headers=alice.auth)
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/invoices", "/openapi.json", "/"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_download_is_read_only(download_client: Any, alice: Person, method: str, path: str) -> None:
    r = getattr(download_client, method)(path, headers=alice.auth)
    assert r.status_code == 405
    assert r.headers["Content-Type"] == "application/problem+json"


def test_openapi_document_is_served_and_valid(download_client: Any, env: dict[str, str]) -> None:
    from openapi_spec_validator import validate

    r = download_client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert {"/login", "/upload", "/download", "/invoices", "/invoices/{id}"} <= set(spec["paths"])
