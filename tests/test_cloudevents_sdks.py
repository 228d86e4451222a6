"""Issue 9, finding 12: ``ce-*`` header values are percent-encoded (HTTP binding, section
3.1.3.2). An event whose id or source holds spaces, quotes, ``%`` or non-ASCII characters is
the same event whatever the official SDK and content mode that sent it: one invoice.

The fixtures are what the Python SDK 2.x and the JavaScript SDK produced
(tests/fixtures/cloudevents/README.md); one test re-runs the JavaScript SDK through node and
posts over a real socket.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from invoiceflow import events
from invoiceflow.context import get_context
from invoiceflow.errors import BadRequest
from invoiceflow.signing import sign_event
from support.api import (
    FUNCTIONS,
    PRODUCER_KEY_ID,
    PRODUCER_SECRET,
    Person,
    Sink,
    make_person,
    serve_wsgi,
)
from support.services import fail_or_skip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cloudevents"
SDKS = ("python-sdk2", "js-sdk")
MODES = ("binary", "structured")
SIGNATURE_ATTRIBUTES = ("signaturekeyid", "signature")


def recorded(sdk: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{sdk}.json").read_text(encoding="utf-8")))


def message(sdk: str, mode: str) -> tuple[dict[str, str], bytes]:
    sent = recorded(sdk)[mode]
    return dict(sent["headers"]), sent["body"].encode("utf-8")


def signature_of(event: Any) -> dict[str, str]:
    """The producer's signature attributes for ``event`` (the intake function's rule)."""
    signed = sign_event(event, PRODUCER_KEY_ID, PRODUCER_SECRET)
    return {name: signed[name] for name in SIGNATURE_ATTRIBUTES}


def signed_message(sdk: str, mode: str) -> tuple[dict[str, str], bytes]:
    """The SDK's recorded message with the producer's signature added as the SDK adds any
    extension attribute: ``ce-*`` headers in binary mode, members in structured mode."""
    headers, body = message(sdk, mode)
    signature = signature_of(events.from_request(headers, body))
    if mode == "binary":
        return {**headers, **{f"ce-{k}": v for k, v in signature.items()}}, body
    return headers, json.dumps({**json.loads(body), **signature}).encode()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sdk", SDKS)
def test_the_official_sdks_events_are_read_as_sent(sdk: str, mode: str) -> None:
    event = events.from_request(*message(sdk, mode))
    assert event["id"] == recorded(sdk)["id"]
    assert event["source"] == recorded(sdk)["source"]
    assert event.data["owner_email"] == "owner@example.com"


@pytest.fixture
def owner(env: dict[str, str]) -> Person:
    return make_person("owner@example.com")


@pytest.mark.parametrize("sdk", SDKS)
def test_the_same_event_in_both_modes_is_one_invoice(
    sdk: str, intake_client: Any, owner: Person, sink: Sink
) -> None:
    answers = []
    for mode in (*MODES, *MODES):  # and each redelivered
        headers, body = signed_message(sdk, mode)
        r = intake_client.post("/", headers=headers, data=body)
        assert r.status_code == 202, (mode, r.get_data(as_text=True))
        answers.append(r.get_json()["invoice_id"])
    assert len(set(answers)) == 1
    assert len(get_context().repo.list_invoices(owner.id).items) == 1
    assert len(sink.of_type("uploaded.v1")) == 1


def test_emitted_headers_are_encoded_exactly_as_the_python_sdk2_does() -> None:
    sdk2 = recorded("python-sdk2")
    event = events.make_event(
        events.INVOICE_REQUESTED,
        sdk2["source"],
        {"owner_email": "owner@example.com"},
        id=sdk2["id"],
    )
    headers, _ = events.to_http(event)
    assert headers["ce-id"] == sdk2["binary"]["headers"]["ce-id"]
    assert headers["ce-source"] == sdk2["binary"]["headers"]["ce-source"]
    assert all(value.isascii() for value in headers.values())
    assert events.attributes_of(events.from_request(headers, b"{}")) == events.attributes_of(event)


def test_an_emitted_event_reaches_the_broker_unchanged(sink: Sink) -> None:
    sdk2 = recorded("python-sdk2")
    invoice = json.loads(message("python-sdk2", "structured")[1])["data"]["invoice"]
    event = events.make_event(
        events.INVOICE_REQUESTED,
        sdk2["source"],
        {"owner_email": "owner@example.com", "invoice": invoice},
        id=sdk2["id"],
        subject="ünïcode subject",
    )
    events.send(event, sink.url)
    (received,) = sink.events
    assert events.attributes_of(received) == events.attributes_of(event)


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("plain-ascii", "plain-ascii"),
        ("100%", "100%"),  # a lone percent sign is kept, not an error
        ("a%20b%25c", "a b%c"),
        ("order 10077 é".encode().decode("latin-1"), "order 10077 é"),  # raw UTF-8 bytes
        ("caf\xe9", "café"),  # raw ISO-8859-1 byte (the JavaScript SDK on Node)
        ("€ 日本", "€ 日本"),  # already text
    ],
)
def test_header_values_are_decoded(value: str, decoded: str) -> None:
    assert events.decode_header_value(value) == decoded


def test_percent_escapes_that_are_not_utf8_are_a_400() -> None:
    headers = {"ce-id": "bad%E9", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    with pytest.raises(BadRequest) as raised:
        events.from_request(headers, b"")
    assert [p.pointer for p in raised.value.problems] == ["/id"]


def test_the_javascript_sdk_through_node_over_a_socket(owner: Person, sink: Sink) -> None:
    js = FIXTURES / "js"
    node = shutil.which("node")
    if node is None or not (js / "node_modules" / "cloudevents").is_dir():
        fail_or_skip(
            "node and the npm package cloudevents (cd tests/fixtures/cloudevents/js"
            " && npm ci) are needed to run the JavaScript SDK"
        )
    fixture = recorded("js-sdk")
    event = {**json.loads(message("js-sdk", "structured")[1])}
    event.update(signature_of(events.from_request(*message("js-sdk", "structured"))))
    app = create_app("intake", str(FUNCTIONS / "intake.py"))
    with serve_wsgi(app) as url:
        result = subprocess.run(
            [node, str(js / "emit.js"), f"{url}/"],
            input=json.dumps(event),
            capture_output=True,
            text=True,
            cwd=js,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for mode in MODES:  # the recording is what this SDK version sends today (+ the signature)
        headers = {
            k: v
            for k, v in out[mode]["headers"].items()
            if k.removeprefix("ce-") not in SIGNATURE_ATTRIBUTES
        }
        assert headers == fixture[mode]["headers"]
        body = out[mode]["body"]
        if mode == "structured":
            sent = json.loads(body)
            assert {k: sent.pop(k) for k in SIGNATURE_ATTRIBUTES} == signature_of(
                events.from_request(*message("js-sdk", "structured"))
            )
            assert sent == json.loads(fixture[mode]["body"])
        else:
            assert body == fixture[mode]["body"]
    answers = [json.loads(out[mode]["answer"]["body"]) for mode in MODES]
    assert [out[mode]["answer"]["status"] for mode in MODES] == [202, 202], answers
    assert answers[0]["invoice_id"] == answers[1]["invoice_id"]
    assert len(get_context().repo.list_invoices(owner.id).items) == 1
