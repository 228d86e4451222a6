"""GET/PUT /settings/branding (owner only, validated) and the settings applied to documents
when they are accepted (acceptance.validate_request -> parse_invoice(defaults=...))."""

from __future__ import annotations

import base64
import io
from typing import Any

from invoiceflow.acceptance import validate_request
from invoiceflow.context import get_context
from support.api import Person, Sink, example_json
from support.openapi import assert_matches

PATH = "/settings/branding"


def png_uri() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 2), (200, 30, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


SETTINGS: dict[str, Any] = {
    "layout": "modern",
    "accent_color": "#0F766E",
    "font": "liberation-serif",
    "footer": "Acme GmbH · Berlin HRB 12345",
    "notes": "Thank you for your business.",
    "terms": "Payable within 14 days.",
    "payment": {"account_holder": "Acme GmbH", "iban": "DE89370400440532013000"},
    "locale": "de-DE",
    "currency": "CHF",
    "language": "en",
}


def put(client: Any, person: Person, body: Any) -> Any:
    return client.put(PATH, headers=person.auth, json=body)


def test_get_is_empty_until_put_then_the_settings_round_trip(
    upload_client: Any, alice: Person
) -> None:
    r = upload_client.get(PATH, headers=alice.auth)
    assert r.status_code == 200 and r.get_json() == {}
    assert_matches(r, PATH, "get")
    settings = {**SETTINGS, "logo": png_uri()}
    r = put(upload_client, alice, settings)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert_matches(r, PATH, "put")
    assert r.get_json() == settings
    r = upload_client.get(PATH, headers=alice.auth)
    assert r.get_json() == settings and r.headers["Cache-Control"] == "no-store"
    # a PUT replaces the whole document: fields left out are gone
    assert put(upload_client, alice, {"layout": "compact"}).status_code == 200
    assert upload_client.get(PATH, headers=alice.auth).get_json() == {"layout": "compact"}
    assert put(upload_client, alice, {}).status_code == 200
    assert upload_client.get(PATH, headers=alice.auth).get_json() == {}


def test_each_user_reaches_only_their_own_settings(
    upload_client: Any, alice: Person, bob: Person
) -> None:
    assert put(upload_client, alice, SETTINGS).status_code == 200
    assert upload_client.get(PATH, headers=bob.auth).get_json() == {}
    assert put(upload_client, bob, {"layout": "compact"}).status_code == 200
    assert upload_client.get(PATH, headers=alice.auth).get_json() == SETTINGS
    assert upload_client.get(PATH, headers=bob.auth).get_json() == {"layout": "compact"}


def test_without_a_valid_token_nothing_is_read_or_written(
    upload_client: Any, alice: Person
) -> None:
    assert put(upload_client, alice, SETTINGS).status_code == 200
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        assert upload_client.get(PATH, headers=headers).status_code == 401
        assert upload_client.put(PATH, headers=headers, json={}).status_code == 401
    assert upload_client.get(PATH, headers=alice.auth).get_json() == SETTINGS


def test_an_invalid_put_is_422_listing_every_problem_and_changes_nothing(
    upload_client: Any, alice: Person
) -> None:
    assert put(upload_client, alice, {"layout": "compact"}).status_code == 200
    bad = {
        "layout": "fancy",
        "accent_color": "teal",
        "font": "comic-sans",
        "currency": "ZZZ",
        "locale": "xx-QQ",
        "footer": "x" * 501,
        "payment": {"iban": "DE89", "swift": "?"},
        "logo": "data:image/png;base64," + base64.b64encode(b"GIF89a not a png").decode(),
        "colour": "#000000",
        "notes": "bell\x07",
    }
    r = put(upload_client, alice, bad)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert_matches(r, PATH, "put")
    body = r.get_json()
    assert body["title"] == "Invalid branding settings"
    problems = {p["pointer"]: p["message"] for p in body["problems"]}
    assert set(problems) == {
        "/layout",
        "/accent_color",
        "/font",
        "/currency",
        "/locale",
        "/footer",
        "/payment/swift",
        "/logo",
        "/colour",
        "/notes",
    }
    assert problems["/layout"] == "must be one of classic, modern, compact (got 'fancy')"
    assert "#RRGGBB" in problems["/accent_color"]
    assert "not a known ISO 4217 currency" in problems["/currency"]
    assert "PNG" in problems["/logo"]
    assert upload_client.get(PATH, headers=alice.auth).get_json() == {"layout": "compact"}


def test_bad_requests_are_4xx(upload_client: Any, alice: Person) -> None:
    r = upload_client.post(PATH, headers=alice.auth, json={})
    assert r.status_code == 405
    r = upload_client.put(PATH, headers=alice.auth, data=b"{", content_type="application/json")
    assert r.status_code == 400
    r = upload_client.put(PATH, headers=alice.auth, data=b"[]", content_type="application/json")
    assert r.status_code == 422
    r = upload_client.put(PATH, headers=alice.auth, data=b"{}", content_type="text/plain")
    assert r.status_code == 400
    r = upload_client.put(PATH, headers=alice.auth, data=b"", content_type="application/json")
    assert r.status_code == 400
    big = b'{"notes": "' + b"x" * (1024 * 1024) + b'"}'
    r = upload_client.put(PATH, headers=alice.auth, data=big, content_type="application/json")
    assert r.status_code == 413


def document_without_defaults() -> dict[str, Any]:
    doc = example_json("minimal.json")
    for key in ("currency", "notes", "terms", "payment", "locale", "language", "branding"):
        doc.pop(key, None)
    doc["seller"].pop("logo", None)
    return doc


def test_a_document_gets_the_owners_defaults_when_accepted(
    upload_client: Any, alice: Person
) -> None:
    logo = png_uri()
    assert put(upload_client, alice, {**SETTINGS, "logo": logo}).status_code == 200
    doc = document_without_defaults()
    r = upload_client.post("/upload", headers=alice.auth, json=doc)
    assert r.status_code == 202, r.get_data(as_text=True)

    ctx = get_context()
    owner = ctx.repo.get_user(alice.id)
    document, _ = validate_request(ctx, example_bytes(doc), None, owner=owner)
    inv = document.invoice
    assert inv.currency == "CHF" and inv.locale == "de-DE" and inv.language == "en"
    assert inv.notes == SETTINGS["notes"] and inv.terms == SETTINGS["terms"]
    assert inv.payment is not None and inv.payment.iban == "DE89370400440532013000"
    assert inv.branding is not None
    assert (inv.branding.layout, inv.branding.accent_color, inv.branding.font) == (
        "modern",
        "#0F766E",
        "liberation-serif",
    )
    assert inv.branding.footer == SETTINGS["footer"]
    assert inv.logo is not None and inv.logo.media_type == "image/png"


def test_the_renderers_get_the_defaults_and_keep_them_when_the_settings_change(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """The completed document (with the owner's defaults) is what the render step reads: an
    upload without a currency renders in the default currency with the default footer, and
    settings changed afterwards do not change an accepted invoice."""
    from invoiceflow.events import to_http
    from support.api import client

    assert put(upload_client, alice, SETTINGS).status_code == 200
    r = upload_client.post(
        "/upload?formats=pdf", headers=alice.auth, json=document_without_defaults()
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    assert (
        put(upload_client, alice, {**SETTINGS, "currency": "EUR", "footer": "Changed"}).status_code
        == 200
    )
    (uploaded,) = sink.of_type("uploaded.v1")
    headers, data = to_http(uploaded)
    rendered = client("render_pdf").post("/", headers=headers, data=data)
    assert rendered.status_code == 200, rendered.get_data(as_text=True)
    pdf = get_context().docs.read(f"{r.get_json()['invoice_id']}-pdf") or b""
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "CHF" in text and "EUR" not in text
    assert SETTINGS["footer"] in text and "Changed" not in text


def test_the_documents_own_fields_win_field_by_field(upload_client: Any, alice: Person) -> None:
    assert put(upload_client, alice, SETTINGS).status_code == 200
    doc = document_without_defaults()
    doc.update(currency="EUR", notes="Our own note", branding={"layout": "compact"})
    ctx = get_context()
    document, _ = validate_request(ctx, example_bytes(doc), None, owner=ctx.repo.get_user(alice.id))
    inv = document.invoice
    assert (inv.currency, inv.notes, inv.terms) == ("EUR", "Our own note", SETTINGS["terms"])
    assert inv.branding is not None
    assert (inv.branding.layout, inv.branding.accent_color) == ("compact", "#0F766E")


def test_without_settings_a_document_needs_its_currency(
    upload_client: Any, alice: Person, bob: Person
) -> None:
    assert put(upload_client, bob, SETTINGS).status_code == 200  # bob's defaults are not alice's
    r = upload_client.post("/upload", headers=alice.auth, json=document_without_defaults())
    assert r.status_code == 422
    assert_matches(r, "/upload", "post")
    (problem,) = r.get_json()["problems"]
    assert problem["pointer"] == "/currency"
    assert (
        problem["message"].startswith("is required") and "/settings/branding" in problem["message"]
    )


def example_bytes(doc: dict[str, Any]) -> bytes:
    import json

    return json.dumps(doc).encode()


def test_a_signed_event_gets_its_owners_defaults_too(
    upload_client: Any, intake_client: Any, alice: Person, bob: Person
) -> None:
    """The intake door passes the named owner's settings; another owner's never apply."""
    from invoiceflow.events import INVOICE_REQUESTED, make_event, to_http
    from invoiceflow.signing import sign_event
    from support.api import PRODUCER_KEY_ID, PRODUCER_SECRET

    assert put(upload_client, alice, {"currency": "EUR"}).status_code == 200

    def send(owner: str, event_id: str) -> Any:
        event = make_event(
            INVOICE_REQUESTED,
            "/erp/orders",
            {"owner_email": owner, "invoice": document_without_defaults()},
            id=event_id,
        )
        headers, body = to_http(sign_event(event, PRODUCER_KEY_ID, PRODUCER_SECRET))
        return intake_client.post("/", headers=headers, data=body)

    accepted = send(alice.email, "req-alice")
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    refused = send(bob.email, "req-bob")  # bob has no default currency
    assert refused.status_code == 422
    assert [p["pointer"] for p in refused.get_json()["problems"]] == ["/currency"]


def _requested(owner: str, doc: dict[str, Any], event_id: str) -> tuple[dict[str, str], bytes]:
    """A signed invoice.requested event as the broker delivers it (headers, body)."""
    from invoiceflow.events import INVOICE_REQUESTED, make_event, to_http
    from invoiceflow.signing import sign_event
    from support.api import PRODUCER_KEY_ID, PRODUCER_SECRET

    event = make_event(
        INVOICE_REQUESTED, "/erp/orders", {"owner_email": owner, "invoice": doc}, id=event_id
    )
    return to_http(sign_event(event, PRODUCER_KEY_ID, PRODUCER_SECRET))


def _deliver(intake_client: Any, request: tuple[dict[str, str], bytes]) -> Any:
    headers, body = request
    return intake_client.post("/", headers=headers, data=body)


def test_a_redelivered_event_is_the_same_answer_after_the_owner_changed_settings(
    upload_client: Any, intake_client: Any, alice: Person, sink: Sink
) -> None:
    """At-least-once delivery: an event accepted with the owner's default currency and
    redelivered after the owner removed it is its first answer again (was a 422 against the
    settings of now, only logged by dead-letter). A new event is held to the settings of now,
    and another document under the same source and id is still the 422 of a reused key."""
    assert put(upload_client, alice, {"currency": "EUR"}).status_code == 200
    event = _requested(alice.email, document_without_defaults(), "req-1")
    first = _deliver(intake_client, event)
    assert first.status_code == 202, first.get_data(as_text=True)
    assert put(upload_client, alice, {}).status_code == 200  # no default currency any more

    again = _deliver(intake_client, event)  # the broker redelivers it
    assert again.status_code == 202, again.get_data(as_text=True)
    assert again.get_json() == first.get_json()

    new = _deliver(intake_client, _requested(alice.email, document_without_defaults(), "req-2"))
    assert new.status_code == 422
    assert [p["pointer"] for p in new.get_json()["problems"]] == ["/currency"]
    other = _deliver(intake_client, _requested(alice.email, example_json("minimal.json"), "req-1"))
    assert other.status_code == 422
    assert other.get_json()["title"] == "Idempotency-Key reused with a different body"
    assert len(get_context().repo.list_invoices(alice.id).items) == 1
    assert len(sink.of_type("uploaded.v1")) == 1


def test_an_upload_retried_with_its_key_is_the_same_answer_after_the_settings_changed(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """A client that lost the answer retries with its Idempotency-Key: the invoice accepted
    with the owner's default currency, even after the owner removed it (was a 422). A new
    upload is held to the settings of now; another document under the key is still a 422."""
    assert put(upload_client, alice, {"currency": "EUR"}).status_code == 200
    key = {**alice.auth, "Idempotency-Key": "order-1"}
    first = upload_client.post("/upload", headers=key, json=document_without_defaults())
    assert first.status_code == 202, first.get_data(as_text=True)
    assert put(upload_client, alice, {}).status_code == 200

    again = upload_client.post("/upload", headers=key, json=document_without_defaults())
    assert again.status_code == 202, again.get_data(as_text=True)
    assert again.get_json() == first.get_json()

    new = upload_client.post("/upload", headers=alice.auth, json=document_without_defaults())
    assert new.status_code == 422
    assert [p["pointer"] for p in new.get_json()["problems"]] == ["/currency"]
    other = upload_client.post("/upload", headers=key, json=example_json("minimal.json"))
    assert other.status_code == 422
    assert other.get_json()["title"] == "Idempotency-Key reused with a different body"
    assert len(get_context().repo.list_invoices(alice.id).items) == 1
    assert len(sink.of_type("uploaded.v1")) == 1


def test_the_openapi_schema_states_the_settings_schemas_rules() -> None:
    """OpenAPI's BrandingSettings (inline, for generated clients) has the same fields as
    branding.v1.schema.json, each with the invoice schema's enum, pattern and length."""
    from invoiceflow.api import openapi_document
    from invoiceflow.domain.parse import schema, settings_schema

    api = openapi_document()["components"]["schemas"]["BrandingSettings"]
    settings = settings_schema()
    assert set(api["properties"]) == set(settings["properties"])
    assert api["additionalProperties"] is settings["additionalProperties"] is False
    invoice = schema()
    for name, prop in settings["properties"].items():
        target: Any = invoice
        for part in prop["$ref"].split("#/", 1)[1].split("/"):
            target = target[part]
        if "$ref" in target:  # payment -> $defs/payment
            target = invoice["$defs"][target["$ref"].rsplit("/", 1)[1]]
        for key in ("enum", "pattern", "maxLength", "type"):
            assert api["properties"][name].get(key) == target.get(key), (name, key)
        if name == "payment":
            inner = api["properties"][name]["properties"]
            assert set(inner) == set(target["properties"])
            for field, rule in target["properties"].items():
                for key in ("pattern", "maxLength"):
                    assert inner[field].get(key) == rule.get(key), (field, key)


def test_the_foreign_formats_keep_usd_but_get_the_other_defaults(
    upload_client: Any, alice: Person
) -> None:
    assert put(upload_client, alice, SETTINGS).status_code == 200
    ctx = get_context()
    owner = ctx.repo.get_user(alice.id)
    for name in ("legacy-flat.json", "invoice-generator.json"):
        doc = example_json(name)
        doc.pop("currency", None)
        document, _ = validate_request(ctx, example_bytes(doc), None, owner=owner)
        assert document.source_format != "canonical"
        assert document.invoice.currency == "USD", name
        assert document.invoice.branding is not None
        assert document.invoice.branding.layout == "modern", name


def test_apply_defaults_fills_only_what_is_absent() -> None:
    from invoiceflow.domain.parse import apply_defaults

    defaults = {"notes": "N", "footer": "F", "layout": "modern", "logo": "data:x"}
    doc = {"notes": "", "branding": None, "seller": {"name": "S"}}
    out = apply_defaults(doc, defaults)
    assert out["notes"] == ""  # present, even blank: the document's own
    assert out["branding"] is None  # present (and wrong): left for the schema to refuse
    assert out["seller"] == {"name": "S", "logo": "data:x"}
    assert doc == {"notes": "", "branding": None, "seller": {"name": "S"}}  # not changed
    merged = apply_defaults({"branding": {"layout": "compact"}}, defaults)
    assert merged["branding"] == {"layout": "compact", "footer": "F"}


def test_a_documents_own_locale_decides_its_language_over_the_default_language() -> None:
    from invoiceflow.domain.parse import apply_defaults

    defaults = {"locale": "de-DE", "language": "en"}
    assert apply_defaults({"locale": "fr-FR"}, defaults) == {"locale": "fr-FR"}
    assert apply_defaults({}, defaults) == defaults
    assert apply_defaults({"locale": "fr-FR", "language": "de"}, defaults)["language"] == "de"


def test_the_email_of_a_numberless_upload_has_its_number_and_the_owners_defaults(
    upload_client: Any, alice: Person
) -> None:
    """The emails read the completed document (number assigned, defaults merged), as the
    renderers do, not the submitted one."""
    from invoiceflow import emails

    settings = {"locale": "fr-FR", "currency": "EUR", "accent_color": "#0F766E"}
    assert put(upload_client, alice, settings).status_code == 200
    doc = {k: v for k, v in document_without_defaults().items() if k != "number"}
    r = upload_client.post("/upload", headers=alice.auth, json=doc)
    assert r.status_code == 202, r.get_data(as_text=True)
    ctx = get_context()
    record = ctx.repo.get_invoice(r.get_json()["invoice_id"])
    assert record is not None and record.number
    message = emails.ready_message(ctx, record, "alice@example.com")
    assert message.subject == f"La facture {record.number} est prête", message.subject
    assert "#0F766E" in (message.html or "")
