"""The event steps in process: functions-framework test clients, events built with to_binary."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from invoiceflow.context import get_context
from invoiceflow.events import (
    INVOICE_FAILED,
    INVOICE_RENDERED,
    INVOICE_UPLOADED,
    make_event,
    with_extensions,
)
from invoiceflow.outputs import OUTPUT_FORMATS
from support.api import (
    Person,
    Sink,
    client,
    deliver,
    example,
    example_json,
    garbage_png,
    outbox_emails,
)
from support.records import invoice_record, notification_record
from support.sendgrid import FakeSendGrid


@pytest.fixture
def steps(env: dict[str, str]) -> dict[str, Any]:
    return {name: client(name) for name in ("render_pdf", "render_xlsx", "notify", "dead_letter")}


def upload(
    upload_client: Any, person: Person, name: str = "eur-two-rates.json", body: bytes | None = None
) -> str:
    r = upload_client.post(
        "/upload",
        headers=person.auth,
        content_type="application/json",
        data=body if body is not None else example(name),
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    return str(r.get_json()["invoice_id"])


def test_render_both_formats_then_notify_once(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    ctx = get_context()

    r = deliver(steps["render_pdf"], uploaded)
    assert r.status_code == 200, r.get_data(as_text=True)
    pdf = ctx.repo.get_artifact(invoice_id, "pdf")
    assert pdf is not None
    data = ctx.docs.read(pdf.file_id)
    assert data is not None and data.startswith(b"%PDF")
    (rendered_pdf,) = sink.of_type("rendered.v1")
    assert rendered_pdf.data["format"] == "pdf" and rendered_pdf.data["sha256"] == pdf.sha256
    assert rendered_pdf["allrendered"] == "false"  # the xlsx is still missing

    # the same event again: 2xx, nothing new
    assert deliver(steps["render_pdf"], uploaded).status_code == 200
    assert len(sink.of_type("rendered.v1")) == 1
    # the same invoice under a new event id: 2xx, still no second file
    again = make_event(INVOICE_UPLOADED, uploaded["source"], uploaded.data, id="other-id")
    assert deliver(steps["render_pdf"], again).status_code == 200
    assert ctx.repo.get_artifact(invoice_id, "pdf") == pdf

    assert deliver(steps["notify"], rendered_pdf).status_code == 200
    assert invoice_record(ctx.repo, invoice_id).status == "received"  # xlsx still missing
    assert outbox_emails(env) == []

    assert deliver(steps["render_xlsx"], uploaded).status_code == 200
    rendered_xlsx = next(e for e in sink.of_type("rendered.v1") if e.data["format"] == "xlsx")
    assert rendered_xlsx["allrendered"] == "true"  # the last one: what notify-rendered takes
    # a renderer that finishes after the other (or is redelivered) says so too: every
    # complete invoice has at least one "true" event, whichever renderer committed last
    late = make_event(INVOICE_UPLOADED, uploaded["source"], uploaded.data, id="late-id")
    assert deliver(steps["render_pdf"], late).status_code == 200
    assert sink.of_type("rendered.v1")[-1]["allrendered"] == "true"
    assert deliver(steps["notify"], rendered_xlsx).status_code == 200
    assert invoice_record(ctx.repo, invoice_id).status == "ready"
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    (notified,) = sink.of_type("notified.v1")
    assert notified.data == {
        "invoice_id": invoice_id,
        "owner_id": alice.id,
        "kind": "ready",
        "status": "ready",
    }
    # every redelivery to notify: 2xx and no second email
    for event in (rendered_pdf, rendered_xlsx):
        assert deliver(steps["notify"], event).status_code == 200
        twin = make_event(INVOICE_RENDERED, event["source"], event.data, id=event["id"] + "x")
        assert deliver(steps["notify"], twin).status_code == 200
    assert len(sink.of_type("notified.v1")) == 1


def test_broker_refusing_the_emitted_event_makes_the_step_retryable(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink
) -> None:
    upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    sink.status = 503
    assert deliver(steps["render_pdf"], uploaded).status_code == 503  # Knative retries
    sink.status = 202
    assert deliver(steps["render_pdf"], uploaded).status_code == 200
    assert len(sink.of_type("rendered.v1")) == 1


def test_broker_refusing_the_emitted_event_for_good_is_retried_like_an_outage(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 400 may be a refusal of the event or of a mistyped sink path, which Knative's
    ingress answers 400 too: the step's file is stored, so it answers 503 (retried; logged at
    ERROR) rather than 422, which would dead-letter it and fail an invoice whose other file
    is not stored yet. Once the broker takes the event, the retry sends it."""
    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    sink.status = 400
    with caplog.at_level("ERROR", logger="invoiceflow.steps"):
        r = deliver(steps["render_pdf"], uploaded)
    assert r.status_code == 503, r.get_data(as_text=True)
    assert sink.of_type("rendered.v1") == []
    assert f"refuses io.invoiceflow.invoice.rendered.v1 {invoice_id}.rendered.pdf" in caplog.text
    assert "HTTP 400" in caplog.text
    assert invoice_record(get_context().repo, invoice_id).status == "received"
    sink.status = 202
    assert deliver(steps["render_pdf"], uploaded).status_code == 200
    assert len(sink.of_type("rendered.v1")) == 1


def test_unknown_invoice_and_wrong_events_are_permanent(
    steps: dict[str, Any], alice: Person
) -> None:
    ghost = make_event(
        INVOICE_UPLOADED,
        "/invoiceflow/upload",
        {
            "invoice_id": "00000000-0000-4000-8000-000000000000",
            "owner_id": alice.id,
            "number": "X",
            "raw_file_id": "x-json",
            "formats": ["pdf"],
        },
    )
    assert deliver(steps["render_pdf"], ghost).status_code == 422
    wrong = make_event(INVOICE_FAILED, "/x", {"invoice_id": "a", "owner_id": "b", "reason": "c"})
    refused = deliver(steps["render_pdf"], wrong)
    assert refused.status_code == 400
    assert (
        refused.get_json()["detail"] == f"this step takes {INVOICE_UPLOADED}, not {INVOICE_FAILED}"
    )
    assert steps["render_pdf"].get("/").status_code == 405  # brokers POST events
    assert steps["notify"].post("/", data=b"not an event").status_code == 400


def _poison() -> bytes:
    doc = example_json("minimal.json")
    # valid JSON, valid schema, a PNG whose header and chunk checksums are right: accepted
    # at upload; the renderer cannot decode its pixels
    doc["seller"]["logo"] = "data:image/png;base64," + base64.b64encode(garbage_png()).decode()
    return json.dumps(doc).encode()


def test_poison_document_is_dead_lettered_failed_and_mailed_once(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    invoice_id = upload(upload_client, alice, body=_poison())
    (uploaded,) = sink.of_type("uploaded.v1")
    r = deliver(steps["render_pdf"], uploaded)
    assert r.status_code == 422, r.get_data(as_text=True)  # permanent: not retried
    # what the broker then sends to the dead-letter sink
    dead = with_extensions(
        uploaded,
        {
            "knativeerrordest": "http://render-pdf.invoiceflow.svc.cluster.local",
            "knativeerrorcode": "422",
            "knativeerrordata": base64.b64encode(r.get_data()).decode(),
        },
    )
    assert deliver(steps["dead_letter"], dead).status_code == 200
    assert deliver(steps["dead_letter"], dead).status_code == 200  # duplicate
    invoice = invoice_record(get_context().repo, invoice_id)
    assert invoice.status == "failed"
    assert invoice.error is not None
    assert "render-pdf" in invoice.error and "422" in invoice.error
    assert "cannot be rendered" in invoice.error
    (failed,) = sink.of_type("failed.v1")
    assert failed.data["reason"] == invoice.error
    for _ in range(2):
        assert deliver(steps["notify"], failed).status_code == 200
    assert outbox_emails(env) == [f"{invoice_id}-failed.eml"]
    # the xlsx (no logo) may still render, but the invoice stays failed and no ready email
    deliver(steps["render_xlsx"], uploaded)
    assert invoice_record(get_context().repo, invoice_id).status == "failed"


def test_a_document_store_fault_while_rendering_is_retried_and_says_nothing_internal(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the stored document failed for now (EIO, EACCES, a GridFS read error): a 503
    the broker retries, and the retry renders. It was a permanent 422 (dead-lettered: the
    invoice failed for good) whose detail, shown to the owner, named the server's file path."""
    from pathlib import Path

    from invoiceflow.errors import ConfigError, Conflict, Problem, Unavailable

    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    invoice = invoice_record(get_context().repo, invoice_id)
    stored = Path(env["MONGODB_URL"]) / f"{invoice.rendered_from}.stored"
    kept = stored.read_bytes()
    stored.unlink()
    stored.mkdir()  # reading it fails with EISDIR, an OSError like EIO
    r = deliver(steps["render_pdf"], uploaded)
    assert r.status_code == 503, r.get_data(as_text=True)
    assert r.get_json()["detail"] == Unavailable.public_detail
    assert str(stored) not in r.get_data(as_text=True)
    stored.rmdir()
    stored.write_bytes(kept)  # the fault is gone: the broker's retry renders
    assert deliver(steps["render_pdf"], uploaded).status_code == 200
    assert get_context().repo.get_artifact(invoice_id, "pdf") is not None
    # any transient fault on the way stays transient (GridFS: Unavailable, Conflict)
    xlsx_faults = [
        Unavailable("MongoDB is unavailable while reading a document (AutoReconnect)"),
        Conflict("document is being written elsewhere"),
        ConfigError([Problem("/MONGODB_URL", "missing")]),
    ]
    for fault in xlsx_faults:

        def fail(file_id: str, fault: Exception = fault) -> bytes:
            raise fault

        monkeypatch.setattr(get_context().docs, "read", fail)
        r = deliver(steps["render_xlsx"], uploaded)
        assert r.status_code == fault.status, (fault, r.get_data(as_text=True))
    assert invoice_record(get_context().repo, invoice_id).status != "failed"


def test_the_steps_take_an_event_and_the_context_and_know_no_http(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """A step is called with the parsed event and the context and returns its answer; the
    edge (tested through the functions above) only parses, refuses and answers."""
    from invoiceflow import emails, steps

    assert steps.render_pdf.accepts == (INVOICE_UPLOADED,)
    assert steps.notify.accepts == (INVOICE_RENDERED, INVOICE_FAILED)
    assert steps.dead_letter.accepts is None  # every type the triggers gave up on
    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    assert (uploaded["id"], uploaded["source"]) == (f"{invoice_id}.uploaded", "/invoiceflow/upload")
    ctx = get_context()
    done = steps.render_pdf(uploaded, ctx)
    assert done == steps.StepResult(
        {"invoice_id": invoice_id, "rendered": {"pdf": f"{invoice_id}-pdf"}}
    )
    assert not done.accepted
    assert steps.render_pdf(uploaded, ctx).body == {"duplicate": True}
    steps.render_xlsx(uploaded, ctx)
    rendered = sink.of_type("rendered.v1")
    assert [(e["id"], e["source"]) for e in rendered] == [
        (f"{invoice_id}.rendered.pdf", "/invoiceflow/render-pdf"),
        (f"{invoice_id}.rendered.xlsx", "/invoiceflow/render-xlsx"),
    ]
    assert steps.notify(rendered[-1], ctx).body == {
        "invoice_id": invoice_id,
        "email": "ready",
        "sent": True,
    }
    (notified,) = sink.of_type("notified.v1")
    assert (notified["id"], notified["source"]) == (
        f"{invoice_id}.notified.ready",
        "/invoiceflow/notify",
    )
    # the email texts, byte for byte: a German document's are German, with its total and
    # due date as the PDF prints them
    invoice = invoice_record(ctx.repo, invoice_id)
    base = f"http://invoices.test/invoices/{invoice_id}"
    ready = emails.ready_message(ctx, invoice, alice.email)
    assert ready.subject == "Rechnung RE-2026-0042 ist fertig"
    assert ready.key == f"{invoice_id}-ready"
    assert ready.text == (
        "Ihre Rechnung RE-2026-0042 ist fertig.\n\n"
        "Gesamtbetrag: 2.150,62\u00a0€\nFälligkeitsdatum: 08.12.2026\n\n"
        f"PDF: {base}/pdf\nXLSX: {base}/xlsx\n\nStatus: {base}\n"
        "Für Downloads ist Ihr API-Token nötig (Authorization: Bearer ...).\n"
    )
    assert ready.html == (
        "<p>Ihre Rechnung <strong>RE-2026-0042</strong> ist fertig.</p>"
        "<p>Gesamtbetrag: 2.150,62\u00a0€</p><p>Fälligkeitsdatum: 08.12.2026</p><ul>"
        f'<li><a href="{base}/pdf">PDF</a></li><li><a href="{base}/xlsx">XLSX</a></li>'
        "</ul><p>Für Downloads ist Ihr API-Token nötig.</p>"
    )
    assert [(a.filename, a.content_type) for a in ready.attachments] == [
        ("RE-2026-0042.pdf", "application/pdf"),
        ("RE-2026-0042.xlsx", OUTPUT_FORMATS["xlsx"].content_type),
    ]
    failed = emails.failed_message(ctx, invoice, alice.email)
    assert failed.subject == "Rechnung RE-2026-0042 konnte nicht erstellt werden"
    assert failed.key == f"{invoice_id}-failed"
    assert failed.text == (
        "Ihre Rechnung RE-2026-0042 konnte nicht erstellt werden.\n\n"
        f"Grund: unbekannter Grund\n\nDetails: {base}\n"
    )
    assert failed.html == (
        "<p>Ihre Rechnung <strong>RE-2026-0042</strong> konnte nicht erstellt werden.</p>"
        "<p>Grund: unbekannter Grund</p>"
    )


def _ready_invoice(
    upload_client: Any, steps: dict[str, Any], person: Person, sink: Sink
) -> tuple[str, Any]:
    invoice_id = upload(upload_client, person)
    uploaded = sink.of_type("uploaded.v1")[-1]
    for fmt in ("pdf", "xlsx"):
        assert deliver(steps[f"render_{fmt}"], uploaded).status_code == 200
    last = [e for e in sink.of_type("rendered.v1") if e.data["invoice_id"] == invoice_id][-1]
    return invoice_id, last


def test_sendgrid_receives_one_complete_message(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, sendgrid: FakeSendGrid
) -> None:
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    assert deliver(steps["notify"], rendered).status_code == 200
    assert deliver(steps["notify"], rendered).status_code == 200
    (request,) = sendgrid.requests
    assert request["path"] == "/v3/mail/send" and request["method"] == "POST"
    assert request["headers"]["Authorization"] == "Bearer SG.test-key-not-a-secret"
    body = request["json"]
    assert body["personalizations"][0]["to"] == [{"email": alice.email}]
    assert body["from"] == {"email": "billing@invoiceflow.test"}
    assert body["subject"] == "Rechnung RE-2026-0042 ist fertig"
    content = {c["type"]: c["value"] for c in body["content"]}
    link = f"http://invoices.test/invoices/{invoice_id}/pdf"
    assert link in content["text/plain"] and link in content["text/html"]
    # every format the invoice asked for (the SendGrid library puts each new one first)
    by_name = {a["filename"]: a for a in body["attachments"]}
    assert sorted(by_name) == ["RE-2026-0042.pdf", "RE-2026-0042.xlsx"]
    attachment = by_name["RE-2026-0042.pdf"]
    assert attachment["type"] == "application/pdf"
    pdf = get_context().docs.read(f"{invoice_id}-pdf")
    assert base64.b64decode(attachment["content"]) == pdf
    notification = notification_record(get_context().repo, invoice_id, "ready")
    assert notification.state == "sent" and notification.provider_message_id == "msg-1"


def test_a_ready_email_too_large_for_sendgrid_says_in_its_language_why_its_files_are_missing(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import invoiceflow.mail as mail

    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    # SendGrid's limit made smaller than this invoice's files, instead of 30 MB of files
    monkeypatch.setattr(mail, "SENDGRID_MAX_BYTES", mail.SENDGRID_OVERHEAD_BYTES + 20_000)
    assert deliver(steps["notify"], rendered).status_code == 200
    (request,) = sendgrid.requests
    body = request["json"]
    assert "attachments" not in body
    content = {c["type"]: c["value"] for c in body["content"]}
    why = "Die Dateien waren zu groß, um sie an diese E-Mail anzuhängen; laden Sie sie über"
    assert content["text/plain"].rstrip().endswith(f"{why} die Links oben herunter.")
    assert content["text/html"].endswith(f"<p>{why} die Links oben herunter.</p>")
    assert f"http://invoices.test/invoices/{invoice_id}/pdf" in content["text/plain"]


@pytest.mark.parametrize(
    ("answer", "step_status"), [(429, 429), (500, 503), (503, 503), (401, 503), (403, 503)]
)
def test_sendgrid_transient_errors_are_retried(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    sendgrid: FakeSendGrid,
    answer: int,
    step_status: int,
) -> None:
    _, rendered = _ready_invoice(upload_client, steps, alice, sink)
    sendgrid.script = [answer]
    assert deliver(steps["notify"], rendered).status_code == step_status
    assert deliver(steps["notify"], rendered).status_code == 200  # the retry sends it
    assert len(sendgrid.delivered) == 1


def test_sendgrid_4xx_is_permanent(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, sendgrid: FakeSendGrid
) -> None:
    _, rendered = _ready_invoice(upload_client, steps, alice, sink)
    sendgrid.script = [400]
    assert deliver(steps["notify"], rendered).status_code == 422
    assert sendgrid.delivered == []


def test_dead_letter_reason_is_readable_even_when_the_broker_cut_the_answer_short(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink
) -> None:
    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    answer = json.dumps(
        {
            "status": 422,
            "title": "Invoice cannot be rendered",
            "detail": "the pdf cannot be rendered: the logo is broken",
            "problems": [{"pointer": f"/items/{i}", "message": "x" * 80} for i in range(40)],
        }
    ).encode()
    cut = base64.b64encode(answer).decode()[:1024]  # what Knative passes on
    dead = with_extensions(
        uploaded,
        {
            "knativeerrordest": "http://render-pdf.ns.svc",
            "knativeerrorcode": "422",
            "knativeerrordata": cut,
        },
    )
    assert deliver(steps["dead_letter"], dead).status_code == 200
    error = invoice_record(get_context().repo, invoice_id).error
    assert error == "render-pdf failed (HTTP 422): the pdf cannot be rendered: the logo is broken"


def _dropped_connection_error() -> tuple[str, str]:
    """The subscriber URL and the error text the local broker's dispatcher records when the
    subscriber closes the connection without answering (a killed worker)."""
    import socket
    import threading

    from invoiceflow import events

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def drop() -> None:
        connection, _ = server.accept()
        connection.recv(65536)
        connection.close()

    threading.Thread(target=drop, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/_functions/render-pdf"
    try:
        events.Sessions().post(url, data=b"{}", headers={}, timeout=5, allow_redirects=False)
    except events.SendError as exc:
        return url, f"{exc.__class__.__name__}: {exc}"  # as delivery.Dispatcher._step
    finally:
        server.close()
    raise AssertionError("the dropped connection was answered")


#: a proxy's page in front of a subscriber (Knative's broker passes any body on)
_PROXY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
    b"upstream connect error: 10.42.0.17:8080 connection refused (envoy)</body></html>"
)


@pytest.mark.parametrize(
    "answer",
    ["no answer", "proxy page", "proxy page cut short", "json that is not a problem"],
)
def test_dead_letter_reason_never_quotes_an_answer_that_is_not_a_problem(
    answer: str,
    upload_client: Any,
    download_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The owner sees the reason (GET /invoices/{id}, the 404 of its files, the failure
    email): it quotes a problem+json answer only. The local broker's ``dispatch error`` (the
    exception class and the subscriber's host:port URL), a proxy's HTML page or any other
    body reached all three before; they go to the log only."""
    from email import message_from_bytes, policy
    from pathlib import Path

    from invoiceflow_local.delivery import error_extensions

    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    knative = "http://render-pdf.invoiceflow.svc.cluster.local"
    if answer == "no answer":
        url, error = _dropped_connection_error()
        extensions = error_extensions(url, None, b"", error)
        expected, internal = "render-pdf did not answer (HTTP 500)", error
    else:
        body = {
            "proxy page": _PROXY_PAGE,
            "proxy page cut short": _PROXY_PAGE * 20,
            "json that is not a problem": b'{"detail": "KeyError at /srv/app/steps.py:12"}',
        }[answer]
        extensions = error_extensions(knative, 502, body)
        expected = "render-pdf failed (HTTP 502) without a readable reason"
        internal = "10.42.0.17:8080" if b"html" in body else "/srv/app/steps.py"
    with caplog.at_level("WARNING", logger="invoiceflow.steps"):
        dead = deliver(steps["dead_letter"], with_extensions(uploaded, extensions))
    assert dead.status_code == 200
    assert internal in caplog.text  # the operator still sees the whole answer
    assert invoice_record(get_context().repo, invoice_id).error == expected
    shown = download_client.get(f"/invoices/{invoice_id}", headers=alice.auth).get_json()
    assert shown["error"] == expected
    missing = download_client.get(f"/invoices/{invoice_id}/pdf", headers=alice.auth)
    assert missing.status_code == 404
    assert missing.get_json()["detail"] == f"the invoice failed and has no pdf: {expected}"
    (failed,) = sink.of_type("failed.v1")
    assert deliver(steps["notify"], failed).status_code == 200
    raw = (Path(env["DATA_DIR"]) / "outbox" / f"{invoice_id}-failed.eml").read_bytes()
    mail = message_from_bytes(raw, policy=policy.default)
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            text = part.get_content()
            assert expected in text
            for leak in ("127.0.0.1", "10.42.0.17", "Error", "/srv", "<h1>", "cluster.local"):
                assert leak not in text, (leak, text)


def test_email_headers_never_carry_line_breaks(tmp_path: Any) -> None:
    from email import message_from_bytes

    from invoiceflow.mail import Message, OutboxMailer

    path = OutboxMailer(tmp_path).send(
        Message(
            to="a@example.com",
            sender="b@example.com",
            subject="Invoice X\r\nBcc: evil@x.io",
            text="t",
            html="<p>t</p>",
            key="k",
        )
    )
    mail = message_from_bytes(open(str(path), "rb").read())
    assert mail["Subject"] == "Invoice X Bcc: evil@x.io" and mail["Bcc"] is None


# ------------------------------------------------------- header injection through the pipeline

#: issue 9, finding 2: an encoded word of "INV\r\nBcc: victim@evil.example" as invoice number
ENCODED_NUMBER = "=?utf-8?b?SU5WDQpCY2M6IHZpY3RpbUBldmlsLmV4YW1wbGU=?="


def _numbered(number: str) -> bytes:
    doc = example_json("eur-two-rates.json")
    doc["number"] = number
    return json.dumps(doc).encode()


def test_an_encoded_word_invoice_number_stays_literal_text_in_the_written_email(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    from email import policy
    from email.parser import BytesParser
    from pathlib import Path

    invoice_id = upload(upload_client, alice, body=_numbered(ENCODED_NUMBER))
    (uploaded,) = sink.of_type("uploaded.v1")
    for fmt in ("pdf", "xlsx"):
        assert deliver(steps[f"render_{fmt}"], uploaded).status_code == 200
    assert deliver(steps["notify"], sink.of_type("rendered.v1")[-1]).status_code == 200
    raw = (Path(env["DATA_DIR"]) / "outbox" / f"{invoice_id}-ready.eml").read_bytes()
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert set(mail.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    }
    assert str(mail["Subject"]) == f"Rechnung {ENCODED_NUMBER} ist fertig"
    assert [a.addr_spec for a in mail["To"].addresses] == [alice.email]
    assert b"victim@evil.example" not in raw  # only ever inside an encoded word


def test_an_encoded_word_invoice_number_reaches_sendgrid_as_literal_text(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, sendgrid: FakeSendGrid
) -> None:
    from email.header import decode_header, make_header

    invoice_id = upload(upload_client, alice, body=_numbered(ENCODED_NUMBER))
    (uploaded,) = sink.of_type("uploaded.v1")
    for fmt in ("pdf", "xlsx"):
        assert deliver(steps[f"render_{fmt}"], uploaded).status_code == 200
    assert deliver(steps["notify"], sink.of_type("rendered.v1")[-1]).status_code == 200
    (request,) = sendgrid.requests
    body = request["json"]
    subject = str(make_header(decode_header(body["subject"])))
    assert subject == f"Rechnung {ENCODED_NUMBER} ist fertig"
    assert "\r" not in body["subject"] and "\n" not in body["subject"]
    assert body["personalizations"] == [{"to": [{"email": alice.email}]}]
    assert body["headers"] == {"Message-ID": f"<{invoice_id}-ready@invoiceflow.test>"}


# ------------------------------------ issue 9, finding 9: the database fails between send and mark


def _database_down_at_mark(monkeypatch: pytest.MonkeyPatch, failures: int) -> dict[str, int]:
    """Marking an email sent raises Unavailable (what the repository raises with the database
    down) ``failures`` times, then works again."""
    from invoiceflow.errors import Unavailable

    repo = get_context().repo
    real = repo.mark_notification_sent
    calls = {"failed": 0}

    def mark(*args: Any, **kwargs: Any) -> bool:
        if calls["failed"] < failures:
            calls["failed"] += 1
            raise Unavailable("cannot connect to the database: server closed the connection")
        return real(*args, **kwargs)

    monkeypatch.setattr(repo, "mark_notification_sent", mark)
    return calls


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The repository's clock moves ``seconds`` on (the claim's age is the database's)."""
    from datetime import timedelta

    from invoiceflow.stores.sql import utc_now

    monkeypatch.setattr(
        get_context().repo, "_clock", lambda: utc_now() + timedelta(seconds=seconds)
    )


def _digest(data: bytes) -> str:
    """What a message compares by (a failing comparison of whole messages is slow to print)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["outbox", "sendgrid"])
def emails(request: pytest.FixtureRequest, env: dict[str, str]) -> Any:
    """Counts what each mail back end got: .eml contents, or requests at the fake SendGrid."""
    if request.param == "sendgrid":
        fake: FakeSendGrid = request.getfixturevalue("sendgrid")
        return lambda: [
            _digest(json.dumps(r["json"], sort_keys=True).encode()) for r in fake.requests
        ]
    from pathlib import Path

    folder = Path(env["DATA_DIR"]) / "outbox"
    return lambda: [_digest(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


def test_database_down_between_send_and_mark_still_sends_one_email(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    emails: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import invoiceflow.steps

    monkeypatch.setattr(invoiceflow.steps, "MARK_SENT_BACKOFF", (0.01,))
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    calls = _database_down_at_mark(monkeypatch, failures=3)
    # the database comes back while the sender still knows the email went out
    assert deliver(steps["notify"], rendered).status_code == 200
    assert calls["failed"] == 3
    first = emails()
    assert len(first) == 1
    # the broker's redelivery 65 s later (past the 45 s takeover): nothing sent again
    _later(monkeypatch, 65)
    assert deliver(steps["notify"], rendered).status_code == 200
    assert emails() == first
    assert notification_record(get_context().repo, invoice_id, "ready").state == "sent"
    assert len(sink.of_type("notified.v1")) == 1


def test_outbox_email_is_not_written_twice_when_marking_it_sent_fails_for_good(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import invoiceflow.steps

    monkeypatch.setattr(invoiceflow.steps, "MARK_SENT_RETRY_FOR", 0.0)
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    _database_down_at_mark(monkeypatch, failures=1)
    assert deliver(steps["notify"], rendered).status_code == 503  # the broker retries
    (written,) = outbox_emails(env)
    from pathlib import Path

    first = _digest((Path(env["DATA_DIR"]) / "outbox" / written).read_bytes())
    # a redelivery within the takeover window: the claim is kept, nothing is sent
    assert deliver(steps["notify"], rendered).status_code == 409
    # 65 s later the claim is taken over: the outbox already holds the message
    _later(monkeypatch, 65)
    assert deliver(steps["notify"], rendered).status_code == 200
    assert outbox_emails(env) == [written]
    assert _digest((Path(env["DATA_DIR"]) / "outbox" / written).read_bytes()) == first
    assert notification_record(get_context().repo, invoice_id, "ready").state == "sent"
    assert len(sink.of_type("notified.v1")) == 1


def test_sendgrid_takeover_after_marking_failed_for_good_resends_under_the_same_message_id(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SendGrid has no idempotency key: the documented residual risk (docs/operations.md) is
    one resend, recognisable by its Message-ID and custom_args, and only after the database
    stayed down past MARK_SENT_RETRY_FOR and the claim aged past RECLAIM_AFTER."""
    import invoiceflow.steps

    monkeypatch.setattr(invoiceflow.steps, "MARK_SENT_RETRY_FOR", 0.0)
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    _database_down_at_mark(monkeypatch, failures=1)
    assert deliver(steps["notify"], rendered).status_code == 503
    assert deliver(steps["notify"], rendered).status_code == 409  # claim kept: no resend
    assert len(sendgrid.requests) == 1
    _later(monkeypatch, 65)
    assert deliver(steps["notify"], rendered).status_code == 200
    first, second = (r["json"] for r in sendgrid.requests)
    assert _digest(json.dumps(first, sort_keys=True).encode()) == _digest(
        json.dumps(second, sort_keys=True).encode()
    )
    assert first["headers"] == {"Message-ID": f"<{invoice_id}-ready@invoiceflow.test>"}
    assert first["custom_args"] == {"invoiceflow_key": f"{invoice_id}-ready"}
    assert deliver(steps["notify"], rendered).status_code == 200
    assert len(sendgrid.requests) == 2


def test_sendgrid_without_an_answer_keeps_the_claim(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request reached SendGrid but no answer came back (read timeout): it may have been
    accepted, so an immediate retry must not send it again."""
    import invoiceflow.mail

    monkeypatch.setattr(invoiceflow.mail, "SEND_TIMEOUT", 0.3)
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    sendgrid.script = [FakeSendGrid.NO_ANSWER]
    assert deliver(steps["notify"], rendered).status_code == 503
    assert deliver(steps["notify"], rendered).status_code == 409
    assert len(sendgrid.requests) == 1
    assert notification_record(get_context().repo, invoice_id, "ready").state == "claimed"


def _both_rendered(
    upload_client: Any, steps: dict[str, Any], person: Person, sink: Sink
) -> tuple[str, Any, Any]:
    """An invoice whose PDF and XLSX are both rendered before notify sees either event (the
    renderers finished together): both ``rendered`` events find it complete."""
    invoice_id, _ = _ready_invoice(upload_client, steps, person, sink)
    mine = [e for e in sink.of_type("rendered.v1") if e.data["invoice_id"] == invoice_id]
    by_format = {e.data["format"]: e for e in mine}
    return invoice_id, by_format["pdf"], by_format["xlsx"]


def test_a_rendered_event_that_finds_the_email_being_sent_for_the_other_answers_200(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loser of the claim has nothing to do: the winner's event stays with the broker
    until it is answered. No 409, so no redelivery a second later."""
    import invoiceflow.mail

    invoice_id, rendered_pdf, rendered_xlsx = _both_rendered(upload_client, steps, alice, sink)
    real_send = invoiceflow.mail.OutboxMailer.send
    meanwhile: list[Any] = []

    def send_while_the_other_arrives(self: Any, message: Any) -> str | None:
        meanwhile.append(deliver(steps["notify"], rendered_pdf))
        return real_send(self, message)

    monkeypatch.setattr(invoiceflow.mail.OutboxMailer, "send", send_while_the_other_arrives)
    r = deliver(steps["notify"], rendered_xlsx)
    assert r.status_code == 200 and r.get_json()["sent"] is True
    (loser,) = meanwhile
    assert loser.status_code == 200, loser.get_data(as_text=True)
    assert loser.get_json() == {
        "invoice_id": invoice_id,
        "email": "ready",
        "sent": False,
        "sending_elsewhere": True,
    }
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert len(sink.of_type("notified.v1")) == 1
    # both are done: a redelivery of either is a duplicate
    for event in (rendered_pdf, rendered_xlsx):
        assert deliver(steps["notify"], event).get_json() == {"duplicate": True}


def test_the_winner_dying_mid_send_still_sends_once_after_the_loser_answered_200(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loser answered 200; the winner's sender dies after the email may have gone out.
    The winner's event is the one the broker keeps: its redeliveries find their own claim
    (409, never 200) until RECLAIM_AFTER, then take it over and finish."""
    import invoiceflow.mail
    from invoiceflow.mail import MailOutcomeUnknown

    invoice_id, rendered_pdf, rendered_xlsx = _both_rendered(upload_client, steps, alice, sink)
    real_send = invoiceflow.mail.OutboxMailer.send
    sends: list[str | None] = []

    def send_then_die(self: Any, message: Any) -> str | None:
        sends.append(real_send(self, message))
        if len(sends) == 1:
            raise MailOutcomeUnknown("the sender died before it knew")
        return sends[-1]

    monkeypatch.setattr(invoiceflow.mail.OutboxMailer, "send", send_then_die)
    assert deliver(steps["notify"], rendered_xlsx).status_code == 503  # the broker retries it
    loser = deliver(steps["notify"], rendered_pdf)
    assert loser.status_code == 200 and loser.get_json()["sending_elsewhere"] is True
    assert deliver(steps["notify"], rendered_pdf).get_json() == {"duplicate": True}
    # the winner's own redelivery within the takeover window: kept with the broker
    assert deliver(steps["notify"], rendered_xlsx).status_code == 409
    assert notification_record(get_context().repo, invoice_id, "ready").state == "claimed"
    _later(monkeypatch, 65)
    r = deliver(steps["notify"], rendered_xlsx)
    assert r.status_code == 200 and r.get_json()["sent"] is True
    assert len(sends) == 2  # the takeover sent again; the outbox made it a no-op
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert notification_record(get_context().repo, invoice_id, "ready").state == "sent"
    assert len(sink.of_type("notified.v1")) == 1


def test_a_failed_event_twin_finding_the_email_being_sent_answers_200(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same for the ``failed`` email: a second ``failed`` event (another id) answers 200
    while the first one's delivery holds the claim; the first one's redelivery gets 409."""
    import invoiceflow.mail
    from invoiceflow.mail import MailOutcomeUnknown

    invoice_id = upload(upload_client, alice)
    ctx = get_context()
    assert ctx.repo.mark_invoice_failed(invoice_id, "the renderer gave up")
    failed = make_event(
        INVOICE_FAILED,
        "/invoiceflow/dead-letter",
        {"invoice_id": invoice_id, "owner_id": alice.id, "reason": "the renderer gave up"},
    )
    twin = make_event(INVOICE_FAILED, failed["source"], failed.data, id=failed["id"] + "x")

    def unknown(self: Any, message: Any) -> str | None:
        raise MailOutcomeUnknown("no answer")

    monkeypatch.setattr(invoiceflow.mail.OutboxMailer, "send", unknown)
    assert deliver(steps["notify"], failed).status_code == 503
    r = deliver(steps["notify"], twin)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json() == {
        "invoice_id": invoice_id,
        "email": "failed",
        "sent": False,
        "sending_elsewhere": True,
    }
    assert deliver(steps["notify"], failed).status_code == 409
    assert notification_record(ctx.repo, invoice_id, "failed").state == "claimed"


def test_a_claim_with_no_claimer_recorded_is_still_a_409(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    """A claim taken by a version that recorded no claimer: nobody knows whose event is
    pending, so every other delivery is retried (409) as before, until it can take it over."""
    invoice_id, rendered_pdf, rendered_xlsx = _both_rendered(upload_client, steps, alice, sink)
    repo = get_context().repo
    assert repo.claim_notification(invoice_id, "ready", alice.email)
    for event in (rendered_pdf, rendered_xlsx):
        assert deliver(steps["notify"], event).status_code == 409
    assert outbox_emails(env) == []


def test_the_first_rendered_event_lists_the_formats_it_waits_for(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink, env: dict[str, str]
) -> None:
    invoice_id = upload(upload_client, alice)
    (uploaded,) = sink.of_type("uploaded.v1")
    assert deliver(steps["render_xlsx"], uploaded).status_code == 200
    (rendered_xlsx,) = sink.of_type("rendered.v1")
    r = deliver(steps["notify"], rendered_xlsx)
    assert (r.status_code, r.get_json()) == (200, {"waiting": ["pdf"]})
    assert invoice_record(get_context().repo, invoice_id).status == "received"
    assert deliver(steps["notify"], rendered_xlsx).get_json() == {"duplicate": True}
    assert outbox_emails(env) == []


def test_the_ready_email_is_written_without_the_email_packages_serializer(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The product's own email takes mail.direct_bytes (tests/test_mail.py holds it equal to
    the email package's bytes), and reads back whole."""
    from email import policy
    from email.parser import BytesParser
    from pathlib import Path

    import invoiceflow.mail

    def refused(*_: Any) -> bytes:
        raise AssertionError("the email package's serializer was used")

    monkeypatch.setattr(invoiceflow.mail, "as_bytes", refused)
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    assert deliver(steps["notify"], rendered).status_code == 200
    raw = (Path(env["DATA_DIR"]) / "outbox" / f"{invoice_id}-ready.eml").read_bytes()
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail["To"] == alice.email and mail["Subject"] == "Rechnung RE-2026-0042 ist fertig"
    body = mail.get_body(("plain",))
    assert body is not None and f"/invoices/{invoice_id}/pdf" in body.get_content()
    files = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
    ctx = get_context()
    for fmt in ("pdf", "xlsx"):
        artifact = ctx.repo.get_artifact(invoice_id, fmt)
        assert artifact is not None
        assert files[f"RE-2026-0042.{fmt}"] == ctx.docs.read(artifact.file_id)


def test_the_broker_refusing_the_notified_event_after_the_send_still_emits_it_once_back(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    emails: Any,
) -> None:
    """The email went out and was marked sent, then the broker refused ``notified`` (503,
    retried): the retry sends no second email and emits ``notified`` now. It emitted nothing,
    so an integration's Trigger never heard of the email (also after a crash right after the
    mark)."""
    invoice_id, rendered = _ready_invoice(upload_client, steps, alice, sink)
    sink.status = 503
    assert deliver(steps["notify"], rendered).status_code == 503  # the broker retries
    assert len(emails()) == 1
    sink.status = 202
    r = deliver(steps["notify"], rendered)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["sent"] is False  # not sent again
    assert len(emails()) == 1
    (notified,) = sink.of_type("notified.v1")
    assert notified["id"] == f"{invoice_id}.notified.ready"
    assert deliver(steps["notify"], rendered).get_json() == {"duplicate": True}
    assert len(sink.of_type("notified.v1")) == 1


def test_a_document_store_fault_while_writing_the_failure_email_is_retried_not_sent_in_english(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the document for the email's words failed for now (the store unreachable): a
    503 the broker retries, with the claim released, and the retry sends the German email.
    It sent the English fallback of an unreadable document (no total, no due date), for
    good."""
    from pathlib import Path

    from invoiceflow.errors import Unavailable

    invoice_id = upload(upload_client, alice)
    ctx = get_context()
    assert ctx.repo.mark_invoice_failed(invoice_id, "the renderer gave up")
    failed = make_event(
        INVOICE_FAILED,
        "/invoiceflow/dead-letter",
        {"invoice_id": invoice_id, "owner_id": alice.id, "reason": "the renderer gave up"},
    )

    def store_down(file_id: str) -> bytes | None:
        raise Unavailable("the document store (MongoDB) is unavailable while reading")

    monkeypatch.setattr(ctx.docs, "read", store_down)
    r = deliver(steps["notify"], failed)
    assert r.status_code == 503, r.get_data(as_text=True)
    assert outbox_emails(env) == []
    assert notification_record(ctx.repo, invoice_id, "failed").state == "released"
    monkeypatch.undo()
    r = deliver(steps["notify"], failed)  # the broker's retry, a second later
    assert r.status_code == 200 and r.get_json()["sent"] is True, r.get_data(as_text=True)
    (written,) = outbox_emails(env)
    text = (Path(env["DATA_DIR"]) / "outbox" / written).read_bytes()
    assert b"Ihre Rechnung RE-2026-0042 konnte nicht erstellt werden." in text
    assert b"Invoice RE-2026-0042" not in text


def test_the_failure_email_of_a_document_the_renderer_chokes_on_is_still_sent(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An internal error of the renderer (render_document's "its log has the details") fails
    the invoice; the same error building the document's view for the failure email's words
    made notify answer 500 until the event was dead-lettered: the owner never heard of it.
    The email goes out with the English texts of an unreadable document."""
    import invoiceflow.render.view

    invoice_id = upload(upload_client, alice)
    ctx = get_context()
    reason = "render-pdf failed (HTTP 422): the pdf cannot be rendered from this document"
    assert ctx.repo.mark_invoice_failed(invoice_id, reason)
    failed = make_event(
        INVOICE_FAILED,
        "/invoiceflow/dead-letter",
        {"invoice_id": invoice_id, "owner_id": alice.id, "reason": reason},
    )

    def renderer_bug(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a renderer bug, internal text")

    monkeypatch.setattr(invoiceflow.render.view, "build_view", renderer_bug)
    r = deliver(steps["notify"], failed)
    assert r.status_code == 200 and r.get_json()["sent"] is True, r.get_data(as_text=True)
    assert outbox_emails(env) == [f"{invoice_id}-failed.eml"]
