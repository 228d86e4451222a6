"""The intake function: signed invoice.requested events only; the upload function serves only
/upload, so the old unauthenticated event door (POST /upload/events) is closed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from invoiceflow import accounts
from invoiceflow.context import get_context
from invoiceflow.events import (
    INVOICE_REQUESTED,
    INVOICE_UPLOADED,
    make_event,
    to_http,
    with_extensions,
)
from invoiceflow.signing import canonical, sign_event, signature
from support.api import PRODUCER_KEY_ID, PRODUCER_SECRET, Person, Sink, example_json

ATTACKER_IBAN = "DE89370400440532013000"


def _event(owner: str, doc: dict[str, Any], event_id: str = "req-1") -> Any:
    return make_event(
        INVOICE_REQUESTED, "/erp/orders", {"owner_email": owner, "invoice": doc}, id=event_id
    )


def _signed(
    owner: str,
    doc: dict[str, Any],
    event_id: str = "req-1",
    key_id: str = PRODUCER_KEY_ID,
    secret: str = PRODUCER_SECRET,
) -> tuple[dict[str, str], bytes]:
    return to_http(sign_event(_event(owner, doc, event_id), key_id, secret))


def _attacker_document() -> dict[str, Any]:
    doc = example_json("minimal.json")
    doc["notes"] = f"Pay to IBAN {ATTACKER_IBAN}"
    return doc


def _structured_forgery(owner: str) -> bytes:
    """The issue's curl: a structured-mode event with no token and no signature."""
    return json.dumps(
        {
            "specversion": "1.0",
            "type": INVOICE_REQUESTED,
            "id": "a1",
            "source": "/x",
            "data": {"owner_email": owner, "invoice": _attacker_document()},
        }
    ).encode()


def test_a_signed_event_creates_one_invoice_even_when_redelivered(
    intake_client: Any, alice: Person, sink: Sink
) -> None:
    headers, body = _signed(alice.email, example_json("eur-two-rates.json"))
    r = intake_client.post("/", headers=headers, data=body)
    assert r.status_code == 202, r.get_data(as_text=True)
    again = intake_client.post("/", headers=headers, data=body)  # redelivery
    assert again.status_code == 202 and again.get_json() == r.get_json()
    invoices = get_context().repo.list_invoices(alice.id).items
    assert len(invoices) == 1 and invoices[0].source == "event"
    assert len(sink.of_type("uploaded.v1")) == 1


def test_a_redelivery_after_the_owner_was_disabled_is_the_same_answer(
    intake_client: Any, alice: Person, sink: Sink
) -> None:
    """The event was accepted; its redelivery is that answer again (was the 422 of an
    unknown owner, dead-lettered), which tells the producer nothing its first answer did not.
    A new event for the disabled owner, and another event under the accepted one's id, are
    refused as for an unknown owner."""
    headers, body = _signed(alice.email, example_json("minimal.json"))
    first = intake_client.post("/", headers=headers, data=body)
    assert first.status_code == 202, first.get_data(as_text=True)
    accounts.set_disabled(get_context().repo, alice.email, True)
    again = intake_client.post("/", headers=headers, data=body)
    assert again.status_code == 202, again.get_data(as_text=True)
    assert again.get_json() == first.get_json()
    headers, body = _signed("nobody@example.com", _attacker_document())
    unknown = intake_client.post("/", headers=headers, data=body)
    assert unknown.status_code == 422
    for event_id in ("req-2", "req-1"):  # a new event; another document under req-1
        headers, body = _signed(alice.email, _attacker_document(), event_id)
        refused = intake_client.post("/", headers=headers, data=body)
        assert (refused.status_code, refused.get_data()) == (422, unknown.get_data()), event_id
    assert len(get_context().repo.list_invoices(alice.id).items) == 1
    assert len(sink.of_type("uploaded.v1")) == 1


def test_the_forged_event_of_the_issue_creates_nothing_anywhere(
    upload_client: Any, intake_client: Any, alice: Person, sink: Sink
) -> None:
    forged = _structured_forgery(alice.email)
    headers = {"Content-Type": "application/cloudevents+json"}
    # the upload function serves /upload only: no event path at all
    for path in ("/upload/events", "/events", "/upload/events/"):
        r = upload_client.post(path, headers=headers, data=forged)
        assert r.status_code == 404, (path, r.status_code, r.get_data(as_text=True))
    # the intake function refuses it: no signature (401 is permanent: dead-lettered)
    r = intake_client.post("/", headers=headers, data=forged)
    assert r.status_code == 401
    assert r.get_json()["detail"].startswith("the event is not signed by a known producer")
    assert get_context().repo.list_invoices(alice.id).items == ()
    assert sink.events == []


def test_every_bad_signature_gets_the_same_401(
    intake_client: Any, alice: Person, sink: Sink
) -> None:
    doc = example_json("minimal.json")
    good = sign_event(_event(alice.email, doc), PRODUCER_KEY_ID, PRODUCER_SECRET)
    cases = {
        "unsigned": _event(alice.email, doc),
        "unknown key id": sign_event(_event(alice.email, doc), "nobody", PRODUCER_SECRET),
        "wrong secret": sign_event(_event(alice.email, doc), PRODUCER_KEY_ID, "x" * 40),
        "owner changed after signing": make_event(
            INVOICE_REQUESTED,
            "/erp/orders",
            {"owner_email": "bob@example.com", "invoice": doc},
            id="req-1",
            extensions={"signaturekeyid": good["signaturekeyid"], "signature": good["signature"]},
        ),
        "id changed after signing": with_extensions(
            make_event(INVOICE_REQUESTED, "/erp/orders", good.data, id="req-2"),
            {"signaturekeyid": good["signaturekeyid"], "signature": good["signature"]},
        ),
        "non-ASCII signature": with_extensions(good, {"signature": "v1=é" + "0" * 63}),
        # a lone surrogate has no UTF-8 canonical form (was a 503 from the encoder)
        "lone surrogate in the data": make_event(
            INVOICE_REQUESTED,
            "/erp/orders",
            {"owner_email": "\ud800", "invoice": doc},
            id="req-3",
            extensions={"signaturekeyid": good["signaturekeyid"], "signature": good["signature"]},
        ),
    }
    bodies = set()
    for name, event in cases.items():
        headers, body = to_http(event)
        r = intake_client.post("/", headers=headers, data=body)
        assert r.status_code == 401, (name, r.status_code, r.get_data(as_text=True))
        bodies.add(r.get_data())
    assert len(bodies) == 1, "the answer must not tell which part was wrong"
    assert get_context().repo.list_invoices(alice.id).items == ()
    assert sink.events == []


def test_data_without_a_canonical_form_is_the_same_401_never_a_5xx(
    intake_client: Any, alice: Person, sink: Sink
) -> None:
    """Data no producer can have signed: bytes (a binary-mode body that is not JSON, structured
    data_base64) and JSON nested just below the parser's limit, which the canonical form's
    encoder cannot write. Each was a 503 (TypeError, RecursionError), retried by the broker
    forever; now the permanent 401 every unsigned event gets."""
    (unsigned,) = {
        intake_client.post("/", headers=h, data=b).get_data()
        for h, b in [to_http(_event(alice.email, example_json("minimal.json")))]
    }
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "x1",
        "ce-source": "/erp",
        "ce-type": INVOICE_REQUESTED,
    }
    signed = {**binary, "ce-signaturekeyid": PRODUCER_KEY_ID, "ce-signature": "v1=" + "0" * 64}
    structured = {
        "specversion": "1.0",
        "id": "x2",
        "source": "/erp",
        "type": INVOICE_REQUESTED,
        "data_base64": "aGVsbG8=",
    }
    requests: list[tuple[str, dict[str, str], bytes]] = [
        ("text body", {**binary, "Content-Type": "text/plain"}, b"hello"),
        ("text body, signature", {**signed, "Content-Type": "text/plain"}, b"hello"),
        ("binary body", {**signed, "Content-Type": "application/octet-stream"}, b"\xff{"),
        (
            "data_base64",
            {"Content-Type": "application/cloudevents+json"},
            json.dumps(structured).encode(),
        ),
        (
            "data_base64, signature",
            {"Content-Type": "application/cloudevents+json"},
            json.dumps(
                {**structured, "signaturekeyid": PRODUCER_KEY_ID, "signature": "v1=00"}
            ).encode(),
        ),
    ]
    for name, headers, body in requests:
        r = intake_client.post("/", headers=headers, data=body)
        assert (r.status_code, r.get_data()) == (401, unsigned), (name, r.get_data(as_text=True))
    # the parser's limit and the encoder's depend on the stack: try every depth around them;
    # the parser refuses the deepest (400), everything it reads is refused unsigned (401)
    statuses: dict[int, list[int]] = {}
    for depth in range(700, 1400):
        deep = b"[" * depth + b"]" * depth
        r = intake_client.post(
            "/", headers={**signed, "Content-Type": "application/json"}, data=deep
        )
        statuses.setdefault(r.status_code, []).append(depth)
    assert set(statuses) <= {400, 401}, {s: (min(d), max(d)) for s, d in statuses.items()}
    assert 401 in statuses and 400 in statuses  # the range spans the parser's limit
    assert get_context().repo.list_invoices(alice.id).items == ()
    assert sink.events == []


def test_the_answer_does_not_tell_registered_from_unregistered_owners(
    intake_client: Any, alice: Person, bob: Person
) -> None:
    ctx = get_context()
    accounts.set_disabled(ctx.repo, bob.email, True)
    invalid = example_json("minimal.json")
    invalid["currency"] = "???"
    answers = {}
    for n, owner in enumerate((alice.email, "nobody@example.com", bob.email)):
        headers, body = _signed(owner, invalid, f"bad-{n}")
        r = intake_client.post("/", headers=headers, data=body)
        answers[owner] = (r.status_code, r.get_data())
    # an invalid document gets the same answer whoever the owner is
    assert len(set(answers.values())) == 1, answers
    assert answers[alice.email][0] == 422
    unknown = []
    for n, owner in enumerate(("nobody@example.com", bob.email)):  # unknown, disabled
        headers, body = _signed(owner, example_json("minimal.json"), f"who-{n}")
        r = intake_client.post("/", headers=headers, data=body)
        assert r.status_code == 422
        unknown.append(r.get_data())
    assert unknown[0] == unknown[1]
    assert b"nobody@example.com" not in unknown[0] and b"bob@" not in unknown[0]


def test_malformed_events_are_400(intake_client: Any, alice: Person) -> None:
    r = intake_client.post("/", headers={"Content-Type": "application/json"}, data=b"{}")
    assert r.status_code == 400  # not a CloudEvent
    headers, body = to_http(
        sign_event(
            make_event(INVOICE_REQUESTED, "/erp", {"owner_email": alice.email}, id="x"),
            PRODUCER_KEY_ID,
            PRODUCER_SECRET,
        )
    )
    assert intake_client.post("/", headers=headers, data=body).status_code == 400
    uploaded = make_event(INVOICE_UPLOADED, "/erp", {"invoice_id": "x"}, id="y")
    wrong = intake_client.post("/", headers=to_http(uploaded)[0], data=to_http(uploaded)[1])
    assert wrong.status_code == 400
    assert wrong.get_json()["detail"] == (
        f"this step takes {INVOICE_REQUESTED}, not {INVOICE_UPLOADED}"
    )
    assert intake_client.get("/").status_code == 405


def test_without_producer_keys_every_event_is_refused(
    intake_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoiceflow.context import reset_context

    monkeypatch.delenv("EVENT_PRODUCER_KEYS")
    reset_context()
    headers, body = _signed(alice.email, example_json("minimal.json"))
    assert intake_client.post("/", headers=headers, data=body).status_code == 401


def test_the_signature_is_the_same_in_both_content_modes(intake_client: Any, alice: Person) -> None:
    """The canonical form does not depend on the JSON's spacing or key order, so a structured
    event written by another language's serializer verifies."""
    doc = example_json("minimal.json")
    attributes = {
        "id": "order-9",
        "source": "/erp/orders",
        "type": INVOICE_REQUESTED,
        "time": "2026-11-24T09:30:00Z",
    }
    data = {"owner_email": alice.email, "invoice": doc}
    sig = signature(PRODUCER_SECRET, attributes, data)
    assert canonical(attributes, data).startswith(
        b'["order-9","/erp/orders","io.invoiceflow.invoice.requested.v1",'
        b'"2026-11-24T09:30:00Z",{"invoice":'
    )
    structured = {
        "specversion": "1.0",
        **attributes,
        "signaturekeyid": PRODUCER_KEY_ID,
        "signature": sig,
        "datacontenttype": "application/json",
        "data": data,
    }
    body = json.dumps(structured, indent=3, sort_keys=False).encode()
    r = intake_client.post("/", headers={"Content-Type": "application/cloudevents+json"}, data=body)
    assert r.status_code == 202, r.get_data(as_text=True)


def test_the_cli_signs_an_event_the_intake_function_accepts(
    intake_client: Any, alice: Person, tmp_path: Any, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from invoiceflow.cli import main

    event = {
        "specversion": "1.0",
        "type": INVOICE_REQUESTED,
        "id": "order-cli",
        "source": "/erp",
        "time": "2026-11-24T09:30:00Z",
        "data": {"owner_email": alice.email, "invoice": example_json("minimal.json")},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["events", "sign", "--key-id", PRODUCER_KEY_ID, str(path)]) == 0
    signed = capsysbinary.readouterr().out
    r = intake_client.post(
        "/", headers={"Content-Type": "application/cloudevents+json"}, data=signed
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    assert main(["events", "sign", "--key-id", "nobody", str(path)]) == 2
