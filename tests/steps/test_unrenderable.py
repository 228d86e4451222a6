"""A document stored before validation knew a character is unrenderable (issue 9, finding 5):
the render steps answer a permanent 4xx and the invoice never becomes ``ready`` (86 of 86
such invoices were ``ready`` with a workbook that was not XML)."""

from __future__ import annotations

import json
import uuid

from invoiceflow.context import get_context
from invoiceflow.events import INVOICE_UPLOADED, make_event, to_http
from invoiceflow.stores.protocols import NewInvoiceRecord
from support.api import Person, client, example_json
from support.records import invoice_record


def test_a_stored_document_with_a_character_xml_forbids_is_never_ready(alice: Person) -> None:
    for char in ("\ufffe", "\uffff"):
        _check_never_ready(alice, char)


def _check_never_ready(alice: Person, char: str) -> None:
    ctx = get_context()
    invoice_id = str(uuid.uuid4())
    raw_id = f"{invoice_id}-json"
    number = f"MIN-{ord(char):X}"  # numbers are unique per owner: each invoice its own
    doc = example_json("minimal.json") | {"notes": f"thanks{char}", "number": number}
    data = json.dumps(doc, ensure_ascii=False).encode()
    ctx.docs.put(
        data,
        file_id=raw_id,
        filename=f"{number}.json",
        content_type="application/json",
        owner=alice.id,
        invoice_id=invoice_id,
        kind="raw",
    )
    ctx.repo.accept_invoice(
        NewInvoiceRecord(
            id=invoice_id,
            owner_id=alice.id,
            number=number,
            source="http",
            raw_file_id=raw_id,
            formats=("pdf", "xlsx"),
        )
    )
    event = make_event(
        INVOICE_UPLOADED,
        "/invoiceflow/upload",
        {
            "invoice_id": invoice_id,
            "owner_id": alice.id,
            "number": number,
            "raw_file_id": raw_id,
            "formats": ["pdf", "xlsx"],
            "source_format": "canonical",
        },
        subject=invoice_id,
        id=f"{invoice_id}.uploaded",
    )
    headers, body = to_http(event)
    for step in ("render_xlsx", "render_pdf"):
        r = client(step).post("/", headers=headers, data=body)
        assert r.status_code == 422, r.get_data(as_text=True)  # permanent: dead-lettered
        assert f"U+{ord(char):04X}" in r.get_data(as_text=True)
    assert ctx.repo.get_artifact(invoice_id, "xlsx") is None
    assert invoice_record(ctx.repo, invoice_id).status != "ready"
