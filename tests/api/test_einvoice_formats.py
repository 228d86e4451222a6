"""The formats a request asks for (upload ``?formats=``, ``invoice.requested`` ``data.formats``)
and the EN 16931 rules that an e-invoice format holds the document to, before anything is
stored; then the render steps for those formats, the downloads and the email, in process."""

from __future__ import annotations

import dataclasses
import email
import json
from email import policy
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.context import get_context
from invoiceflow.domain import to_json
from invoiceflow.events import INVOICE_REQUESTED, INVOICE_UPLOADED, make_event, to_http
from invoiceflow.signing import sign_event
from support.api import PRODUCER_KEY_ID, PRODUCER_SECRET, Person, Sink, client
from support.einvoice_samples import german_b2b

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def b2b_document() -> bytes:
    """A German B2B invoice that keeps every EN 16931 rule, as a JSON document."""
    return json.dumps(to_json(german_b2b())).encode()


def without_seller_tax_ids() -> bytes:
    """The same with no seller VAT id nor tax number, and standard-rated lines: BR-S-02."""
    inv = german_b2b()
    seller = dataclasses.replace(inv.seller, vat_id=None, tax_id=None)
    return json.dumps(to_json(dataclasses.replace(inv, seller=seller))).encode()


def post(upload_client: Any, person: Person, body: bytes, query: str = "", **headers: str) -> Any:
    return upload_client.post(
        f"/upload{query}",
        headers={**person.auth, **headers},
        content_type="application/json",
        data=body,
    )


def nothing_stored(env: dict[str, str], person: Person) -> bool:
    files = Path(env["DATA_DIR"]) / "files"
    stored = [p for p in files.rglob("*") if p.is_file()] if files.exists() else []
    return not get_context().repo.list_invoices(person.id).items and not stored


# ------------------------------------------------------------------------ the request


def test_an_upload_asks_for_its_formats(
    upload_client: Any, alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    # without a number (the server assigns it: BR-02 holds, the number is there in time)
    numberless = {k: v for k, v in json.loads(b2b_document()).items() if k != "number"}
    r = post(upload_client, alice, json.dumps(numberless).encode(), "?formats=ubl,pdf,cii,xlsx")
    assert r.status_code == 202, r.get_data(as_text=True)
    body = r.get_json()
    assert body["number"] == f"{numberless['issue_date'][:4]}-00001"
    assert body["formats"] == ["pdf", "xlsx", "cii", "ubl"]  # one canonical order
    assert sorted(body["links"]) == ["cii", "json", "pdf", "self", "ubl", "xlsx"]
    assert body["links"]["cii"].endswith(f"/invoices/{body['invoice_id']}/cii")
    (uploaded,) = sink.of_type("uploaded.v1")
    assert uploaded.data["formats"] == ["pdf", "xlsx", "cii", "ubl"]
    assert get_context().repo.get_invoice(body["invoice_id"]).formats == (  # type: ignore[union-attr]
        "pdf",
        "xlsx",
        "cii",
        "ubl",
    )
    # no formats: INVOICE_FORMATS (pdf,xlsx), links for those only
    plain = post(upload_client, alice, b2b_document())
    assert plain.status_code == 202
    assert plain.get_json()["formats"] == ["pdf", "xlsx"]
    assert sorted(plain.get_json()["links"]) == ["json", "pdf", "self", "xlsx"]


def test_unknown_formats_and_pdf_with_facturx_are_one_422_with_every_problem(
    upload_client: Any, alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    r = post(upload_client, alice, b2b_document(), "?formats=pdf,docx,facturx,odt")
    assert r.status_code == 422, r.get_data(as_text=True)
    messages = [p["message"] for p in r.get_json()["problems"]]
    assert len(messages) == 3
    assert "'docx' is not an output format" in messages[0]
    assert "'odt' is not an output format" in messages[1]
    assert "pdf and facturx, not both" in messages[2]
    assert {p["pointer"] for p in r.get_json()["problems"]} == {"/formats"}
    # the formats' problems and the document's in one answer
    broken = json.dumps({"number": "X", "items": []}).encode()
    both = post(upload_client, alice, broken, "?formats=docx")
    assert both.status_code == 422
    pointers = [p["pointer"] for p in both.get_json()["problems"]]
    assert pointers[0] == "/formats" and len(pointers) > 1
    empty = post(upload_client, alice, b2b_document(), "?formats=")
    assert empty.status_code == 422
    assert nothing_stored(env, alice) and sink.events == []


def test_an_e_invoice_request_breaking_a_rule_is_a_422_with_the_rule_ids_and_stores_nothing(
    upload_client: Any, alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    for formats in ("cii", "ubl", "facturx,xlsx", "cii,ubl"):
        r = post(upload_client, alice, without_seller_tax_ids(), f"?formats={formats}")
        assert r.status_code == 422, (formats, r.get_data(as_text=True))
        body = r.get_json()
        assert body["title"] == "The document breaks e-invoicing business rules"
        rules = [p["rule"] for p in body["problems"]]
        assert "BR-S-02" in rules, body
        assert len(rules) == len(set(rules))  # cii and ubl: each broken rule once
        s02 = next(p for p in body["problems"] if p["rule"] == "BR-S-02")
        assert s02["pointer"].startswith("/seller") and s02["message"]
    assert nothing_stored(env, alice) and sink.events == []
    # asking only for pdf/xlsx: not held to the rules
    assert post(upload_client, alice, without_seller_tax_ids(), "?formats=pdf").status_code == 202


EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "legacy-flat.json",
            {
                # the flat address field holds the country that is missing
                "BR-09": "/company_address",
                "BR-11": "/bill_to_address",
                "BR-57": "/ship_to_address",
                "BR-CO-25": "/due_date",
                # a flat document has no seller object to hold a VAT id: the document
                "BR-S-02": "",
                "BR-CO-26": "",
            },
        ),
        (
            "invoice-generator.json",
            {
                # each party is one multi-line string: that string
                "BR-09": "/from",
                "BR-11": "/to",
                "BR-57": "/ship_to",
                "BR-S-02": "/from",
                "BR-CO-26": "/from",
                "BR-37": "",  # no shipping tax category in that format
            },
        ),
    ],
)
def test_rule_problems_of_a_foreign_format_point_at_the_clients_own_fields(
    upload_client: Any, alice: Person, example: str, expected: dict[str, str]
) -> None:
    body_sent = (EXAMPLES / example).read_bytes()
    r = post(upload_client, alice, body_sent, "?formats=cii")
    assert r.status_code == 422, r.get_data(as_text=True)
    problems = r.get_json()["problems"]
    got = {p["rule"]: p["pointer"] for p in problems}
    assert {rule: got.get(rule) for rule in expected} == expected
    sent = json.loads(body_sent)
    for p in problems:  # every pointer names a field of the client's format, or the document
        top = p["pointer"].split("/")[1] if p["pointer"] else ""
        assert top == "" or top in sent or top in {"due_date", "payment_terms"}, p


def test_the_formats_are_part_of_the_idempotency_key(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    key = {"Idempotency-Key": "order-77"}
    first = post(upload_client, alice, b2b_document(), "?formats=pdf,cii", **key)
    assert first.status_code == 202
    again = post(upload_client, alice, b2b_document(), "?formats=cii,pdf", **key)
    assert again.status_code == 202 and again.get_json() == first.get_json()
    other = post(upload_client, alice, b2b_document(), "?formats=pdf", **key)
    assert other.status_code == 422
    assert other.get_json()["title"] == "Idempotency-Key reused with a different body"
    default = post(upload_client, alice, b2b_document(), **key)  # pdf,xlsx
    assert default.status_code == 422
    assert len(sink.of_type("uploaded.v1")) == 1


def _requested(owner: str, doc: Any, formats: Any, event_id: str) -> tuple[dict[str, str], bytes]:
    data: dict[str, Any] = {"owner_email": owner, "invoice": doc}
    if formats is not None:
        data["formats"] = formats
    event = make_event(INVOICE_REQUESTED, "/erp/orders", data, id=event_id)
    return to_http(sign_event(event, PRODUCER_KEY_ID, PRODUCER_SECRET))


def test_a_requested_event_names_its_formats(
    intake_client: Any, alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    doc = json.loads(b2b_document())
    r = intake_client.post("/", **_kw(_requested(alice.email, doc, ["ubl", "facturx"], "a")))
    assert r.status_code == 202, r.get_data(as_text=True)
    assert r.get_json()["formats"] == ["ubl", "facturx"]
    (uploaded,) = sink.of_type("uploaded.v1")
    assert uploaded.data["formats"] == ["ubl", "facturx"]
    # redelivered: the same invoice
    again = intake_client.post("/", **_kw(_requested(alice.email, doc, ["ubl", "facturx"], "a")))
    assert again.status_code == 202 and again.get_json() == r.get_json()
    for formats in (["pdf", "facturx"], ["html"], "pdf", [1]):
        bad = intake_client.post("/", **_kw(_requested(alice.email, doc, formats, "b")))
        assert bad.status_code == 422, (formats, bad.get_data(as_text=True))
        assert bad.get_json()["problems"][0]["pointer"] == "/formats"
    broken = json.loads(without_seller_tax_ids())
    refused = intake_client.post("/", **_kw(_requested(alice.email, broken, ["cii"], "c")))
    assert refused.status_code == 422
    assert "BR-S-02" in [p.get("rule") for p in refused.get_json()["problems"]]
    assert len(get_context().repo.list_invoices(alice.id).items) == 1


def _kw(http: tuple[dict[str, str], bytes]) -> dict[str, Any]:
    headers, body = http
    return {"headers": headers, "data": body}


# ------------------------------------------------------------------ steps and downloads


@pytest.fixture
def steps(env: dict[str, str]) -> dict[str, Any]:
    names = ("render_pdf", "render_xlsx", "render_xml", "notify")
    return {name: client(name) for name in names}


def deliver(step: Any, event: Any) -> Any:
    return step.post("/", **_kw(to_http(event)))


@pytest.mark.parametrize(
    ("formats", "files"),
    [
        (
            "pdf,xlsx,cii,ubl",
            {
                "pdf": ("RE-2026-0042.pdf", "application/pdf", b"%PDF"),
                "xlsx": ("RE-2026-0042.xlsx", XLSX, b"PK"),
                "cii": ("RE-2026-0042.xml", "application/xml", b"<?xml"),
                "ubl": ("RE-2026-0042-ubl.xml", "application/xml", b"<?xml"),
            },
        ),
        ("facturx", {"facturx": ("RE-2026-0042.pdf", "application/pdf", b"%PDF")}),
    ],
)
def test_each_step_renders_its_formats_once_and_the_owner_downloads_them(
    upload_client: Any,
    download_client: Any,
    steps: dict[str, Any],
    alice: Person,
    bob: Person,
    sink: Sink,
    env: dict[str, str],
    formats: str,
    files: dict[str, tuple[str, str, bytes]],
) -> None:
    r = post(upload_client, alice, b2b_document(), f"?formats={formats}")
    assert r.status_code == 202, r.get_data(as_text=True)
    invoice_id = r.get_json()["invoice_id"]
    (uploaded,) = sink.of_type("uploaded.v1")
    for name in ("render_pdf", "render_xlsx", "render_xml"):
        assert deliver(steps[name], uploaded).status_code == 200
        assert deliver(steps[name], uploaded).status_code == 200  # a duplicate: 2xx
        twin = make_event(INVOICE_UPLOADED, uploaded["source"], uploaded.data, id="twin")
        assert deliver(steps[name], twin).status_code == 200  # another id: no second file
    # one event per format; the twin re-sends the same event (same id: consumers drop it)
    rendered = list({e["id"]: e for e in sink.of_type("rendered.v1")}.values())
    assert sorted(e.data["format"] for e in rendered) == sorted(files)
    assert {e["id"] for e in rendered} == {f"{invoice_id}.rendered.{f}" for f in files}
    assert len(get_context().repo.list_artifacts(invoice_id)) == len(files)
    for event in rendered:
        assert deliver(steps["notify"], event).status_code == 200
    view = download_client.get(f"/invoices/{invoice_id}", headers=alice.auth).get_json()
    assert view["status"] == "ready" and view["formats"] == list(files)
    for fmt, (name, content_type, magic) in files.items():
        got = download_client.get(f"/invoices/{invoice_id}/{fmt}", headers=alice.auth)
        assert got.status_code == 200, (fmt, got.get_data(as_text=True))
        assert got.mimetype == content_type
        assert got.headers["Content-Disposition"].startswith(f'attachment; filename="{name}"')
        assert got.data.startswith(magic)
        by_id = download_client.get(
            f"/download?fid={view['files'][fmt]['file_id']}", headers=alice.auth
        )
        assert by_id.status_code == 200 and by_id.data == got.data
        assert (
            download_client.get(f"/invoices/{invoice_id}/{fmt}", headers=bob.auth).status_code
            == 404
        )
        assert (
            download_client.get(
                f"/download?fid={view['files'][fmt]['file_id']}", headers=bob.auth
            ).status_code
            == 404
        )
    not_asked = next(f for f in ("facturx", "ubl") if f not in files)
    assert (
        download_client.get(f"/invoices/{invoice_id}/{not_asked}", headers=alice.auth).status_code
        == 404
    )
    if "facturx" in files:  # the PDF/A-3 with the CII inside
        assert b"factur-x.xml" in got.data
    # the email: every requested file attached, with its name and content type
    (eml,) = (Path(env["DATA_DIR"]) / "outbox").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    attached = {part.get_filename(): part.get_content_type() for part in message.iter_attachments()}
    assert attached == {name: content_type for name, content_type, _ in files.values()}


def test_a_key_stored_before_the_formats_were_digested_still_answers_its_retry(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """Invoices accepted before this change hold the document's bare sha256: a retry with the
    same key, document and formats is still the same invoice, other formats a 422."""
    import hashlib
    import uuid

    from invoiceflow.stores.protocols import NewInvoiceRecord

    body = b2b_document()
    earlier = get_context().repo.accept_invoice(
        NewInvoiceRecord(
            id=str(uuid.uuid4()),
            owner_id=alice.id,
            number="RE-2026-0042",
            source="http",
            raw_file_id="old-json",
            formats=("pdf", "xlsx"),
            idempotency_key="before-the-upgrade",
            request_sha256=hashlib.sha256(body).hexdigest(),
        )
    )
    key = {"Idempotency-Key": "before-the-upgrade"}
    retry = post(upload_client, alice, body, **key)
    assert retry.status_code == 202 and retry.get_json()["invoice_id"] == earlier.invoice.id
    assert post(upload_client, alice, body, "?formats=pdf,cii", **key).status_code == 422
    assert sink.of_type("uploaded.v1") == []


def test_the_api_description_and_the_event_schemas_know_every_format() -> None:
    from invoiceflow.api import openapi_document
    from invoiceflow.outputs import OUTPUT_FORMATS

    spec = openapi_document()
    schemas = spec["components"]["schemas"]
    assert schemas["Format"]["enum"] == list(OUTPUT_FORMATS)
    assert set(OUTPUT_FORMATS) | {"self", "json"} == set(schemas["Links"]["properties"])
    for fmt, output in OUTPUT_FORMATS.items():
        path = spec["paths"][f"/invoices/{{id}}/{fmt}"]
        assert set(path["get"]["responses"]["200"]["content"]) == {output.content_type}, fmt
        assert "head" in path
    upload = spec["paths"]["/upload"]["post"]
    assert "formats" in {p["name"] for p in upload["parameters"]}
    rule = schemas["Problem"]["properties"]["problems"]["items"]["properties"]["rule"]
    assert rule["type"] == "string"
    events = Path(__file__).resolve().parents[2] / "events" / "schemas"

    def schema(name: str) -> Any:
        return json.loads((events / f"io.invoiceflow.invoice.{name}.v1.schema.json").read_text())

    assert schema("uploaded")["properties"]["formats"]["items"]["enum"] == list(OUTPUT_FORMATS)
    assert schema("requested")["properties"]["formats"]["items"]["enum"] == list(OUTPUT_FORMATS)
    assert schema("rendered")["properties"]["format"]["enum"] == list(OUTPUT_FORMATS)
