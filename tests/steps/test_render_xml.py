"""The render-xml step: the XML e-invoices an invoice asked for, nothing for one that asked for
none, and a permanent 4xx with the rule ids for a stored document that breaks a rule (stored
before its rules were checked: the renderers check them again)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from invoiceflow.context import get_context
from invoiceflow.domain import to_json
from invoiceflow.events import INVOICE_UPLOADED, make_event, to_http
from invoiceflow.stores.protocols import NewInvoiceRecord
from support.api import Person, Sink, client
from support.einvoice_samples import german_b2b


def _stored(person: Person, document: Any, formats: tuple[str, ...]) -> tuple[str, Any]:
    """An invoice recorded as it was accepted, and its uploaded event."""
    ctx = get_context()
    invoice_id = str(uuid.uuid4())
    raw_id = f"{invoice_id}-json"
    ctx.docs.put(
        json.dumps(document).encode(),
        file_id=raw_id,
        filename="invoice.json",
        content_type="application/json",
        owner=person.id,
        invoice_id=invoice_id,
        kind="raw",
    )
    ctx.repo.accept_invoice(
        NewInvoiceRecord(
            id=invoice_id,
            owner_id=person.id,
            number=document["number"],
            source="http",
            raw_file_id=raw_id,
            formats=formats,
        )
    )
    event = make_event(
        INVOICE_UPLOADED,
        "/invoiceflow/upload",
        {
            "invoice_id": invoice_id,
            "owner_id": person.id,
            "number": document["number"],
            "raw_file_id": raw_id,
            "formats": list(formats),
        },
        subject=invoice_id,
        id=f"{invoice_id}.uploaded",
    )
    return invoice_id, event


def _deliver(step: str, event: Any) -> Any:
    headers, body = to_http(event)
    return client(step).post("/", headers=headers, data=body)


def test_render_xml_renders_only_the_formats_asked_for(alice: Person, sink: Sink) -> None:
    ctx = get_context()
    invoice_id, event = _stored(alice, to_json(german_b2b()), ("pdf", "ubl"))
    r = _deliver("render_xml", event)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json() == {"invoice_id": invoice_id, "rendered": {"ubl": f"{invoice_id}-ubl"}}
    assert ctx.repo.get_artifact(invoice_id, "cii") is None
    stored = ctx.docs.get(f"{invoice_id}-ubl")
    assert stored is not None
    assert (stored.filename, stored.content_type) == ("RE-2026-0042-ubl.xml", "application/xml")
    (rendered,) = sink.of_type("rendered.v1")
    assert rendered["source"] == "/invoiceflow/render-xml" and rendered.data["format"] == "ubl"
    # an invoice that asked for no XML: answered at once, nothing rendered or emitted
    # another invoice, so another number (numbers are unique per owner)
    plain_id, plain = _stored(alice, to_json(german_b2b()) | {"number": "RE-2"}, ("pdf", "xlsx"))
    skipped = _deliver("render_xml", plain)
    assert skipped.status_code == 200 and "skipped" in skipped.get_json()
    assert ctx.repo.list_artifacts(plain_id) == []
    assert len(sink.of_type("rendered.v1")) == 1


def test_a_stored_document_breaking_a_rule_is_a_permanent_render_error_with_its_ids(
    alice: Person, sink: Sink
) -> None:
    inv = german_b2b()
    seller = dataclasses.replace(inv.seller, vat_id=None, tax_id=None)
    document = to_json(dataclasses.replace(inv, seller=seller))
    for step, fmt in (("render_xml", "cii"), ("render_pdf", "facturx")):
        invoice_id, event = _stored(alice, document | {"number": f"RE-{fmt}"}, (fmt,))
        r = _deliver(step, event)
        assert r.status_code == 422, r.get_data(as_text=True)  # permanent: dead-lettered
        assert "BR-S-02" in [p.get("rule") for p in r.get_json()["problems"]]
        assert get_context().repo.get_artifact(invoice_id, fmt) is None
    assert sink.of_type("rendered.v1") == []
