"""invoiceflow.events: building, serializing, parsing and emitting CloudEvents."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from invoiceflow import events
from invoiceflow.errors import BadRequest, ConfigError, EventRefused, PermanentError, Unavailable

EXAMPLES = Path(__file__).resolve().parents[1] / "events" / "examples" / "events"


def catalogued(name: str = "uploaded") -> events.Event:
    """An event the catalogue's schemas accept (every emitted event is checked against them)."""
    example = json.loads((EXAMPLES / f"{name}.json").read_text())
    return events.make_event(
        example["type"], example["source"], example["data"], subject=example["subject"]
    )


def test_event_types() -> None:
    assert events.EVENT_TYPES == (
        "io.invoiceflow.invoice.uploaded.v1",
        "io.invoiceflow.invoice.requested.v1",
        "io.invoiceflow.invoice.rendered.v1",
        "io.invoiceflow.invoice.failed.v1",
        "io.invoiceflow.invoice.notified.v1",
    )
    assert events.INVOICE_UPLOADED == events.EVENT_TYPES[0]
    assert events.INVOICE_NOTIFIED == events.EVENT_TYPES[-1]


def test_make_event_fills_the_context() -> None:
    event = events.make_event(
        events.INVOICE_UPLOADED,
        "/upload",
        {"invoice_id": "inv-1"},
        subject="inv-1",
        extensions={"tenant": "acme", "attempt": 2, "urgent": True},
    )
    assert event["specversion"] == "1.0"
    assert event["type"] == events.INVOICE_UPLOADED
    assert event["source"] == "/upload"
    assert event["subject"] == "inv-1"
    assert event["datacontenttype"] == "application/json"
    assert uuid.UUID(event["id"])
    assert event["time"]
    assert event["tenant"] == "acme"
    assert event["attempt"] == "2"
    assert event["urgent"] == "true"
    assert event.data == {"invoice_id": "inv-1"}
    assert events.make_event("t", "s", None, id="fixed")["id"] == "fixed"


@pytest.mark.parametrize(
    "name", ["invoice_id", "invoice_id", "invoice-id", "", "ünï", "type", "id", "data"]
)
def test_extension_names_are_lowercase_letters_and_digits(name: str) -> None:
    with pytest.raises(ValueError, match="extension"):
        events.make_event("t", "/s", {}, extensions={name: "x"})


def test_make_event_refuses_documents_and_lists_every_problem() -> None:
    with pytest.raises(ValueError, match="ids, not documents"):
        events.make_event("t", "/s", {"document": "x" * events.MAX_DATA_BYTES})
    with pytest.raises(ValueError) as raised:
        events.make_event("", "", {"when": object()}, extensions={"Bad": "x"})
    message = str(raised.value)
    for fragment in ("type", "source", "JSON", "Bad"):
        assert fragment in message


def test_binary_round_trip() -> None:
    event = events.make_event(
        events.INVOICE_RENDERED,
        "/render-pdf",
        {"invoice_id": "inv-1", "format": "pdf"},
        subject="inv-1",
        extensions={"traceparent1": "abc"},
    )
    headers, body = events.to_http(event)
    assert headers["ce-id"] == event["id"]
    assert headers["ce-type"] == events.INVOICE_RENDERED
    assert headers["ce-traceparent1"] == "abc"
    assert headers["content-type"] == "application/json"
    assert isinstance(body, bytes)
    assert json.loads(body) == {"invoice_id": "inv-1", "format": "pdf"}
    parsed = events.from_request({k.title(): v for k, v in headers.items()}, body)
    assert events.attributes_of(parsed) == events.attributes_of(event)
    assert parsed.data == event.data


def test_structured_mode_is_parsed() -> None:
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "/upload",
            "type": events.INVOICE_UPLOADED,
            "datacontenttype": "application/json",
            "tenant": "acme",
            "data": {"invoice_id": "inv-1"},
        }
    )
    event = events.from_request(
        {"Content-Type": "application/cloudevents+json; charset=utf-8"}, body.encode()
    )
    assert event["id"] == "e-1"
    assert event["tenant"] == "acme"
    assert event.data == {"invoice_id": "inv-1"}


def test_with_extensions_copies() -> None:
    event = events.make_event("t", "/s", {"a": 1})
    letter = events.with_extensions(event, {"knativeerrorcode": "400"})
    assert letter["knativeerrorcode"] == "400"
    assert letter["id"] == event["id"]
    assert "knativeerrorcode" not in events.attributes_of(event)
    with pytest.raises(ValueError):
        events.with_extensions(event, {"Bad": "x"})


def problems_of(headers: dict[str, str], body: bytes) -> dict[str, str]:
    with pytest.raises(BadRequest) as raised:
        events.from_request(headers, body)
    assert raised.value.status == 400
    return {p.pointer: p.message for p in raised.value.problems}


def test_binary_mode_lists_every_problem() -> None:
    problems = problems_of({"Content-Type": "application/json", "ce-source": ""}, b"{oops")
    assert set(problems) == {"/id", "/source", "/type", "/specversion", "/data"}
    assert "missing" in problems["/id"]
    assert "non-empty" in problems["/source"]
    assert "JSON" in problems["/data"]


def test_structured_mode_lists_every_problem() -> None:
    structured = {"Content-Type": "application/cloudevents+json"}
    assert set(problems_of(structured, b"{oops")) == {""}
    assert set(problems_of(structured, b"[1, 2]")) == {""}
    problems = problems_of(
        structured,
        json.dumps(
            {"specversion": "0.3", "type": 7, "Bad_Ext": "x", "data": 1, "data_base64": "AA=="}
        ).encode(),
    )
    assert set(problems) == {"/id", "/source", "/type", "/specversion", "/Bad_Ext", "/data_base64"}


def test_deep_nesting_and_lone_surrogates_are_400_not_a_crash() -> None:
    """Thousands of brackets (RecursionError) and an id no encoding can hold (UnicodeEncodeError
    later) were a 503 in every event function and a 500 at the local broker: retried, never
    dead-lettered (issue 9 #10, review)."""
    deep = b"[" * 5000 + b"]" * 5000
    binary = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "a",
        "ce-source": "/s",
        "ce-type": "t",
    }
    assert "nested too deeply" in problems_of(binary, deep)["/data"]
    structured = {"Content-Type": "application/cloudevents+json"}
    envelope = b'{"specversion": "1.0", "id": "a", "source": "/s", "type": "t", '
    assert "nested too deeply" in problems_of(structured, envelope + b'"data": ' + deep + b"}")[""]
    assert "nested too deeply" in problems_of(structured, envelope + b'"ext1": ' + deep + b"}")[""]
    surrogate = b'{"specversion": "1.0", "id": "a\\ud800", "source": "/s\\udfff", "type": "t"}'
    assert set(problems_of(structured, surrogate)) == {"/id", "/source"}
    surrogate = (
        b'{"specversion": "1.0", "id": "a", "source": "/s", "type": "t", "subject": '
        b'"\\ud800", "ext1": "\\udc00"}'
    )
    assert set(problems_of(structured, surrogate)) == {"/subject", "/ext1"}
    # what else a CloudEvents string may not hold: control characters, noncharacters
    nul = (
        b'{"specversion": "1.0", "id": "a\\u0000", "source": "/s\\u0085", "type": "t", '
        b'"ext1": "\\uffff"}'
    )
    problems = problems_of(structured, nul)
    assert set(problems) == {"/id", "/source", "/ext1"}
    assert "U+0000" in problems["/id"]
    assert set(problems_of({**binary, "ce-id": "a%00b", "ce-ext1": "%EF%BF%BE"}, b"{}")) == {
        "/id",
        "/ext1",
    }


def test_no_event_at_all_and_batches_are_refused() -> None:
    assert set(problems_of({}, b"")) == {"/id", "/source", "/type", "/specversion"}
    with pytest.raises(BadRequest, match="batch"):
        events.from_request({"content-type": "application/cloudevents-batch+json"}, b"[]")


def test_binary_mode_with_a_text_body() -> None:
    headers = {
        "ce-id": "1",
        "ce-source": "/s",
        "ce-type": "t",
        "ce-specversion": "1.0",
        "content-type": "text/plain",
    }
    event = events.from_request(headers, b"not json")
    assert event.data == b"not json"
    assert event["datacontenttype"] == "text/plain"
    assert "time" not in events.attributes_of(event)  # not invented on the way


class Sink:
    """A real HTTP server standing in for the broker ingress."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


@pytest.fixture
def observed() -> Iterator[list[Any]]:
    seen: list[Any] = []
    events.observers.append(seen.append)
    yield seen
    events.observers.remove(seen.append)


def test_send_posts_binary_mode_and_tells_the_observers(sink: Sink, observed: list[Any]) -> None:
    event = catalogued("uploaded")
    events.Emitter(sink.url).send(event)
    [(headers, body)] = sink.received
    assert headers["ce-id"] == event["id"]
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == events.INVOICE_UPLOADED
    assert json.loads(body) == event.data
    assert observed == [event]


@pytest.mark.parametrize("status", [301, 401, 403, 404, 405, 407, 408, 409, 410, 429, 500, 503])
def test_send_refused_is_unavailable(sink: Sink, status: int) -> None:
    """An outage, a throttle, or a refusal of the sender (its credentials, its address): every
    event would be answered alike and may be taken later, so it is transient."""
    sink.status = status
    with pytest.raises(Unavailable) as raised:
        events.send(catalogued("rendered"), sink.url)
    assert raised.value.retryable
    assert str(status) in str(raised.value)


@pytest.mark.parametrize("status", [400, 413, 415, 422, 431])
def test_send_refused_for_good_is_a_permanent_event_refused(sink: Sink, status: int) -> None:
    """A 4xx about the event itself (and one Knative would not retry either): sending the same
    event again cannot succeed, which the outbox relay must tell from an outage."""
    sink.status = status
    with pytest.raises(EventRefused) as raised:
        events.send(catalogued("rendered"), sink.url)
    assert isinstance(raised.value, PermanentError) and not raised.value.retryable
    assert raised.value.broker_status == status
    assert str(status) in str(raised.value)


def test_send_to_nobody_is_unavailable(sink: Sink) -> None:
    url = sink.url
    sink.close()
    with pytest.raises(Unavailable):
        events.send(catalogued(), url, timeout=2)


def test_send_without_k_sink_is_a_config_error(observed: list[Any]) -> None:
    event = catalogued()
    with pytest.raises(ConfigError) as raised:
        events.Emitter(None).send(event)
    assert raised.value.problems[0].pointer == "/K_SINK"
    assert observed == [event]


def test_an_observer_can_refuse_an_event(sink: Sink) -> None:
    def refuse(event: Any) -> None:
        raise AssertionError("schema says no")

    events.observers.append(refuse)
    try:
        with pytest.raises(AssertionError, match="schema"):
            events.send(catalogued(), sink.url)
    finally:
        events.observers.remove(refuse)
    assert sink.received == []


def test_forbidden_character_finds_the_first_of_every_forbidden_code_point() -> None:
    """The pattern against the spec's rule written out, for every code point."""
    from invoiceflow.events import forbidden_character

    def forbidden(code: int) -> bool:
        return (
            code < 0x20
            or 0x7F <= code <= 0x9F
            or 0xD800 <= code <= 0xDFFF
            or 0xFDD0 <= code <= 0xFDEF
            or code & 0xFFFE == 0xFFFE
        )

    wrong = [
        code
        for code in range(0x110000)
        if (forbidden_character(f"ok{chr(code)}x\x01") == f"U+{code:04X}") != forbidden(code)
    ]
    assert wrong == []
    assert forbidden_character("inv-1 ünïcode ✓") is None
    assert forbidden_character("a\x7fb\x00") == "U+007F"


# -- binary mode without the SDK's legacy classes: the SDK's own answers --------------------


def _sdk_events() -> list[Any]:
    from cloudevents.http import CloudEvent

    base: dict[str, Any] = {"id": "e-1", "source": "/upload", "type": "t.v1", "specversion": "1.0"}
    return [
        events.make_event("io.invoiceflow.invoice.uploaded.v1", "/upload", {"invoice_id": "i-1"}),
        events.make_event("t", "/s", {"a": [1, 2.5, None, True]}, subject="sub ject", id='é%"x'),
        events.make_event("t", "/s", {"k": "v"}, extensions={"allrendered": "true", "t": "x y"}),
        CloudEvent({**base, "datacontenttype": "application/json"}, {"x": 1}),
        CloudEvent({**base, "datacontenttype": "text/plain"}, "plain text"),
        CloudEvent({**base, "datacontenttype": "application/octet-stream"}, b"\x00\xffbytes"),
        CloudEvent({**base, "datacontenttype": ""}, {"empty": "type"}),
        CloudEvent({**base, "time": "2026-12-01T00:00:00Z"}, None),
        CloudEvent({**base, "dataschema": "https://x/s.json", "subject": ""}, 0),
        CloudEvent({**base, "subject": None, "ext": None}, ["list"]),  # type: ignore[dict-item]
        CloudEvent({**base}, {"nested": {"deep": ["ünï", {"ok": False}]}}),
        CloudEvent({**base}, 12.5),
    ]


def test_binary_headers_and_body_are_the_sdks() -> None:
    from cloudevents.conversion import to_binary

    for event in _sdk_events():
        assert events._binary(event) == to_binary(event), event


REQUESTS: list[tuple[dict[str, str], bytes]] = [
    ({"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}, b""),
    (
        {
            "Ce-Id": "1",
            "CE-Source": "/s",
            "ce-type": "t",
            "ce-specversion": "1.0",
            "Content-Type": "application/json; charset=utf-8",
            "ce-time": "2026-12-01T00:00:00Z",
            "ce-allrendered": "true",
            "ce-subject": "i-1",
        },
        b'{"invoice_id": "i-1", "n": [1, 2.5e3, null]}',
    ),
    (
        {"ce-id": "2", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"},
        b"not json at all",
    ),
    (
        {
            "ce-id": "3",
            "ce-source": "/s",
            "ce-type": "t",
            "ce-specversion": "1.0",
            "content-type": "application/octet-stream",
        },
        b"\xff\xfe\x00binary",
    ),
    (
        {"ce-id": "4", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"},
        b'"a string" ',
    ),
    (
        {"ce-id": "5", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"},
        '["ünïcode", 5]'.encode("utf-16"),
    ),
    ({"ce-id": "6", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}, b"0"),
    ({"ce-id": "7", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}, b"  "),
]


def test_binary_requests_parse_as_the_sdk_parses_them() -> None:
    from cloudevents.http import from_http

    for headers, body in REQUESTS:
        mine = events.from_request(headers, body)
        lowered = {k.lower(): v for k, v in headers.items()}
        sdk = from_http(lowered, body)
        if "ce-time" not in lowered:
            del sdk["time"]  # invented by the SDK; from_request drops it (tested above)
        assert dict(mine.get_attributes()) == dict(sdk.get_attributes())
        assert mine.get_data() == sdk.get_data()
        assert type(mine.get_data()) is type(sdk.get_data())


def test_a_deeply_nested_binary_body_is_400_whatever_its_content_type() -> None:
    """The body of a binary-mode event is read as JSON when it is JSON, whatever the content
    type says (the SDK's rule): thousands of brackets are a 400, never a RecursionError."""
    from cloudevents.exceptions import GenericException
    from cloudevents.http import from_http

    headers = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    deep = b"[" * 100_000 + b"]" * 100_000
    for content_type in (None, "text/plain", "application/json"):
        given = headers if content_type is None else {**headers, "content-type": content_type}
        with pytest.raises(BadRequest):
            events.from_request(given, deep)
        if content_type != "application/json":
            with pytest.raises(GenericException):  # the SDK refuses it as well
                from_http(given, deep)
