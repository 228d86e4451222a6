"""Invoice numbers through the real functions (SQLite and PostgreSQL): a document without a
number gets the next of its owner's series, gapless and unique under concurrent uploads; an
uploaded number the owner already used is a 409 (a 422 at intake), unless the request replays
its Idempotency-Key; the number is fixed at acceptance and the renderers read it from the
completed document."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.context import get_context
from invoiceflow.errors import Unavailable
from invoiceflow.events import INVOICE_REQUESTED, make_event, to_http
from invoiceflow.signing import sign_event
from support.api import PRODUCER_KEY_ID, PRODUCER_SECRET, Person, Sink, client, example_json
from support.openapi import assert_matches


def numberless(name: str = "minimal.json", **changes: Any) -> dict[str, Any]:
    """An example document without its number (minimal.json is issued 2026-11-24)."""
    doc = {k: v for k, v in example_json(name).items() if k != "number"}
    return doc | changes


def signed_request(owner: str, doc: dict[str, Any], event_id: str) -> tuple[Any, bytes]:
    """A signed invoice.requested event (headers, body) from the test producer."""
    event = make_event(
        INVOICE_REQUESTED, "/erp/orders", {"owner_email": owner, "invoice": doc}, id=event_id
    )
    return to_http(sign_event(event, PRODUCER_KEY_ID, PRODUCER_SECRET))


def post(upload_client: Any, person: Person, doc: dict[str, Any], **headers: str) -> Any:
    return upload_client.post("/upload", headers={**person.auth, **headers}, json=doc)


def test_50_concurrent_uploads_get_the_numbers_1_to_50(
    env: dict[str, str], alice: Person, sink: Sink
) -> None:
    """Each thread its own test client (and so its own database connection)."""
    n = 50
    barrier = threading.Barrier(n)
    # the apps are built first, one by one: the test is about concurrent uploads, not about
    # 50 functions-framework apps importing the function module at once
    clients = [client("upload") for _ in range(n)]

    def upload_one(i: int) -> str:
        upload_client = clients[i]
        barrier.wait(timeout=120)
        r = post(upload_client, alice, numberless())
        assert r.status_code == 202, r.get_data(as_text=True)
        return str(r.get_json()["number"])

    with ThreadPoolExecutor(max_workers=n) as pool:
        numbers = list(pool.map(upload_one, range(n)))
    assert sorted(numbers) == [f"2026-{i:05d}" for i in range(1, n + 1)]  # no gap, no repeat
    stored = {inv.number for inv in get_context().repo.list_invoices(alice.id, limit=100).items}
    assert stored == set(numbers)
    published = sorted(e.data["number"] for e in sink.of_type("uploaded.v1"))
    assert published == sorted(numbers)


def test_the_number_is_in_the_answer_the_record_and_the_rendered_files(
    upload_client: Any, download_client: Any, alice: Person, sink: Sink
) -> None:
    r = post(upload_client, alice, numberless())
    assert r.status_code == 202, r.get_data(as_text=True)
    assert_matches(r, "/upload", "post")
    body = r.get_json()
    assert body["number"] == "2026-00001"
    ctx = get_context()
    invoice = ctx.repo.get_invoice(body["invoice_id"])
    assert invoice is not None and invoice.number == "2026-00001"
    # the submitted bytes are kept as they came; the completed document has the number
    submitted = ctx.docs.read(invoice.raw_file_id)
    assert submitted is not None and b'"number"' not in submitted
    assert invoice.document_file_id == f"{invoice.id}-document"
    completed = json.loads(ctx.docs.read(invoice.document_file_id) or b"{}")
    assert completed["number"] == "2026-00001"
    (uploaded,) = sink.of_type("uploaded.v1")
    assert uploaded.data["number"] == "2026-00001"
    assert uploaded.data["document_file_id"] == invoice.document_file_id
    # the render step reads the completed document: the PDF prints the number
    headers, data = to_http(uploaded)
    rendered = client("render_pdf").post("/", headers=headers, data=data)
    assert rendered.status_code == 200, rendered.get_data(as_text=True)
    pdf = ctx.docs.read(f"{invoice.id}-pdf")
    assert pdf is not None
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "2026-00001" in text
    r = download_client.get(f"/invoices/{invoice.id}", headers=alice.auth)
    assert_matches(r, "/invoices/{id}", "get")
    view = r.get_json()
    assert view["number"] == "2026-00001"
    # both documents for the record: as submitted, and as completed (and rendered)
    assert view["files"]["json"]["file_id"] == invoice.raw_file_id
    completed_url = view["files"]["document"]["url"]
    assert completed_url.endswith(f"/download?fid={invoice.id}-document")
    fetched = download_client.get(completed_url.split("invoices.test")[1], headers=alice.auth)
    assert fetched.status_code == 200 and json.loads(fetched.data)["number"] == "2026-00001"
    assert 'filename="2026-00001.completed.json"' in fetched.headers["Content-Disposition"]


def test_the_submitted_and_the_completed_document_have_names_of_their_own(
    upload_client: Any, download_client: Any, alice: Person
) -> None:
    """An upload with its own number: the submitted JSON is ``<number>.json`` and the completed
    one ``<number>.completed.json`` (they shared ``<number>.json``, so downloading both into
    one folder made the second overwrite or rename the first)."""
    r = post(upload_client, alice, example_json("eur-two-rates.json"))
    assert r.status_code == 202, r.get_data(as_text=True)
    number, invoice_id = r.get_json()["number"], r.get_json()["invoice_id"]
    view = download_client.get(f"/invoices/{invoice_id}", headers=alice.auth).get_json()
    names = {}
    for fmt in ("json", "document"):
        url = view["files"][fmt]["url"].split("invoices.test")[1]
        answer = download_client.get(url, headers=alice.auth)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        names[fmt] = answer.headers["Content-Disposition"]
    assert f'filename="{number}.json"' in names["json"]
    assert f'filename="{number}.completed.json"' in names["document"]


def test_legacy_and_invoice_generator_documents_without_a_number(
    upload_client: Any, alice: Person
) -> None:
    legacy = {k: v for k, v in example_json("legacy-flat.json").items() if k != "invoice_no"}
    generator = numberless("invoice-generator.json")
    numbers = []
    for doc in (legacy, generator):  # issued 2026-11-02 and Nov 20, 2026
        r = post(upload_client, alice, doc)
        assert r.status_code == 202, r.get_data(as_text=True)
        numbers.append(r.get_json()["number"])
    assert numbers == ["2026-00001", "2026-00002"]
    # the legacy format's own number field: its duplicate is refused like any other
    r = post(upload_client, alice, legacy | {"invoice_no": "2026-00002"})
    assert r.status_code == 409 and "2026-00002" in r.get_json()["detail"]


def test_an_uploaded_number_already_used_is_a_409_naming_the_invoice(
    upload_client: Any, alice: Person, bob: Person, sink: Sink
) -> None:
    doc = example_json("minimal.json")
    first = post(upload_client, alice, doc)
    assert first.status_code == 202
    again = post(upload_client, alice, doc | {"notes": "another invoice, the same number"})
    assert again.status_code == 409, again.get_data(as_text=True)
    assert_matches(again, "/upload", "post")
    problem = again.get_json()
    assert problem["title"] == "Invoice number already used"
    assert problem["detail"].startswith(
        f"invoice number MIN-1 is already used by invoice {first.get_json()['invoice_id']} of "
    )
    assert problem["problems"][0]["pointer"] == "/number"
    assert "Retry-After" not in again.headers  # retrying cannot help
    assert len(get_context().repo.list_invoices(alice.id).items) == 1
    assert len(sink.of_type("uploaded.v1")) == 1
    # another owner's numbers are their own
    assert post(upload_client, bob, doc).status_code == 202


def test_replaying_the_idempotency_key_answers_the_first_answer_again(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    for doc in (example_json("minimal.json"), numberless()):
        headers = {"Idempotency-Key": f"order-{len(doc)}"}
        first = post(upload_client, alice, doc, **headers)
        again = post(upload_client, alice, doc, **headers)
        assert first.status_code == again.status_code == 202
        assert again.get_json() == first.get_json()
    # the replay took no number: the next document gets 2026-00002
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00002"
    assert len(sink.of_type("uploaded.v1")) == 3


def test_a_failed_acceptance_consumes_no_number(
    upload_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = get_context()
    real_put = ctx.docs.put

    def failing_put(data: bytes, **kw: Any) -> Any:
        if kw["kind"] == "document":  # inside the accepting transaction
            raise Unavailable("the document store is down")
        return real_put(data, **kw)

    monkeypatch.setattr(ctx.docs, "put", failing_put)
    assert post(upload_client, alice, numberless()).status_code == 503
    monkeypatch.setattr(ctx.docs, "put", real_put)
    # a rule failure (an e-invoice asked for, the document breaks EN 16931) is refused first
    broken = numberless(seller={"name": "No Address Ltd"})
    refused = upload_client.post("/upload?formats=cii", headers=alice.auth, json=broken)
    assert refused.status_code == 422
    assert ctx.repo.list_invoices(alice.id).items == ()
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00001"


def test_a_render_failure_keeps_the_number(
    upload_client: Any, alice: Person, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoiceflow import outputs

    first = post(upload_client, alice, numberless()).get_json()

    # a renderer that fails (the module's function raises: an internal renderer error)
    pdf = dataclasses.replace(outputs.OUTPUT_FORMATS["pdf"], function="no_such_renderer")
    monkeypatch.setitem(outputs.OUTPUT_FORMATS, "pdf", pdf)
    (uploaded,) = sink.of_type("uploaded.v1")
    headers, data = to_http(uploaded)
    assert client("render_pdf").post("/", headers=headers, data=data).status_code == 422
    invoice = get_context().repo.get_invoice(first["invoice_id"])
    assert invoice is not None and invoice.number == first["number"] == "2026-00001"
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00002"


def test_yearly_reset_restarts_each_issue_year(upload_client: Any, alice: Person) -> None:
    ctx = get_context()
    ctx.repo.set_number_series(alice.id, "RE-{yyyy}-{seq:03}", True)
    got = [
        post(upload_client, alice, numberless(issue_date=day)).get_json()["number"]
        for day in ("2026-12-30", "2026-12-31", "2027-01-02", "2026-12-31", "2027-01-03")
    ]
    assert got == ["RE-2026-001", "RE-2026-002", "RE-2027-001", "RE-2026-003", "RE-2027-002"]
    ctx.repo.set_number_series(alice.id, "RE-{seq}", False)  # one series: runs on
    got = [
        post(upload_client, alice, numberless(issue_date=day)).get_json()["number"]
        for day in ("2026-12-31", "2027-01-02")
    ]
    assert got == ["RE-1", "RE-2"]


def test_a_number_an_upload_took_is_passed_over(upload_client: Any, alice: Person) -> None:
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00001"
    taken = post(upload_client, alice, numberless(number="2026-00002"))
    assert taken.status_code == 202
    # 2026-00002 is an invoice (no gap in the numbers): the series goes on with 00003
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00003"


@pytest.mark.parametrize("spaced", [" 2026-00002", "2026-00002 ", "2026-00002\u00a0"])
def test_a_number_with_spaces_at_either_end_is_refused(
    upload_client: Any, alice: Person, spaced: str
) -> None:
    # " 2026-00002" prints as the series' own 2026-00002, and XML readers drop the spaces
    # of an ID: it would be a second invoice with that number
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00001"
    refused = post(upload_client, alice, numberless(number=spaced))
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert refused.get_json()["problems"] == [
        {"pointer": "/number", "message": "must not begin or end with a space"}
    ]
    assert post(upload_client, alice, numberless()).get_json()["number"] == "2026-00002"
    assert len(get_context().repo.list_invoices(alice.id).items) == 2


def test_intake_assigns_numbers_and_refuses_a_used_one_permanently(
    intake_client: Any, alice: Person, sink: Sink
) -> None:
    headers, body = signed_request(alice.email, numberless(), "req-1")
    r = intake_client.post("/", headers=headers, data=body)
    assert r.status_code == 202, r.get_data(as_text=True)
    assert r.get_json()["number"] == "2026-00001"
    # at-least-once delivery: the same event again is the same answer, no second number
    again = intake_client.post("/", headers=headers, data=body)
    assert again.status_code == 202 and again.get_json() == r.get_json()
    # another event with a number that is used: permanent (dead-lettered), never retried
    headers, body = signed_request(alice.email, numberless(number="2026-00001"), "req-2")
    used = intake_client.post("/", headers=headers, data=body)
    assert used.status_code == 422, used.get_data(as_text=True)
    (problem,) = used.get_json()["problems"]
    assert problem["pointer"] == "/invoice/number"
    assert "invoice number 2026-00001 is already used" in problem["message"]
    assert len(sink.of_type("uploaded.v1")) == 1


def test_invoices_accepted_before_the_completed_document_render_from_the_submitted_one(
    upload_client: Any, alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    """An invoice row and event from before 0005 (no document_file_id) still render."""
    r = post(upload_client, alice, example_json("minimal.json"))
    invoice_id = r.get_json()["invoice_id"]
    ctx = get_context()
    assert ctx.docs.delete(f"{invoice_id}-document")
    with ctx.repo._transaction() as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE invoices SET document_file_id = NULL WHERE id = ?", (invoice_id,))
    (uploaded,) = sink.of_type("uploaded.v1")
    del uploaded.data["document_file_id"]
    headers, data = to_http(uploaded)
    assert client("render_pdf").post("/", headers=headers, data=data).status_code == 200
    assert ctx.repo.get_artifact(invoice_id, "pdf") is not None
    assert not Path(env["DATA_DIR"], "files", f"{invoice_id}-document").exists()


def test_an_e_invoice_without_a_number_gets_one_before_its_rules_apply(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """BR-02 (an invoice has a number) is not held against a number the server assigns; the
    XML is rendered from the completed document, so it carries the number."""
    from invoiceflow.domain import to_json
    from support.einvoice_samples import german_b2b

    doc = {k: v for k, v in to_json(german_b2b()).items() if k != "number"}
    r = upload_client.post("/upload?formats=cii", headers=alice.auth, json=doc)
    assert r.status_code == 202, r.get_data(as_text=True)
    number = r.get_json()["number"]
    assert number == f"{doc['issue_date'][:4]}-00001"
    (uploaded,) = sink.of_type("uploaded.v1")
    headers, data = to_http(uploaded)
    rendered = client("render_xml").post("/", headers=headers, data=data)
    assert rendered.status_code == 200, rendered.get_data(as_text=True)
    xml = get_context().docs.read(f"{r.get_json()['invoice_id']}-cii") or b""
    assert f"<ram:ID>{number}</ram:ID>".encode() in xml
