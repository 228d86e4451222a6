"""POST /upload: idempotency, limits and the outbox. (invoice.requested: test_intake.py.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from invoiceflow import events, naming
from invoiceflow.context import get_context
from invoiceflow.events import INVOICE_UPLOADED
from invoiceflow.outbox import relay
from support.api import Person, Sink, client, example, example_json
from support.openapi import assert_matches


def test_upload_multipart_exactly_like_the_seed_curl(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    r = upload_client.post(
        "/upload",
        headers=alice.auth,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(example("legacy-flat.json")), "invoice_data.json")},
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    body = r.get_json()
    assert_matches(r, "/upload", "post")
    assert body["status"] == "received"
    assert r.headers["Location"] == f"/invoices/{body['invoice_id']}"
    base = f"http://invoices.test/invoices/{body['invoice_id']}"
    assert body["links"] == {
        "self": base,
        "pdf": f"{base}/pdf",
        "xlsx": f"{base}/xlsx",
        "json": f"{base}/json",
    }
    # stored: the row, and the raw document in the document store
    ctx = get_context()
    inv = ctx.repo.get_invoice(body["invoice_id"])
    assert inv is not None and inv.owner_id == alice.id and inv.status == "received"
    assert ctx.docs.read(inv.raw_file_id) == example("legacy-flat.json")
    # announced: one uploaded event carrying ids, not the document
    (event,) = sink.of_type("uploaded.v1")
    assert event["type"] == INVOICE_UPLOADED and event["subject"] == inv.id
    assert event.data["invoice_id"] == inv.id and event.data["raw_file_id"] == inv.raw_file_id
    assert "items" not in json.dumps(event.data)
    assert ctx.repo.pending_outbox_events() == []


def test_upload_raw_json_body_in_every_format(upload_client: Any, alice: Person) -> None:
    for name in ("minimal.json", "invoice-generator.json", "eur-two-rates.json"):
        r = upload_client.post(
            "/upload", headers=alice.auth, data=example(name), content_type="application/json"
        )
        assert r.status_code == 202, (name, r.get_data(as_text=True))


def test_invalid_document_is_422_with_every_problem(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    bad = example_json("minimal.json")
    bad["currency"] = "ZZZ"
    bad["items"][0]["unit_price"] = "-5"
    del bad["seller"]["name"]
    r = upload_client.post("/upload", headers=alice.auth, json=bad)
    assert r.status_code == 422
    assert_matches(r, "/upload", "post")
    pointers = {p["pointer"] for p in r.get_json()["problems"]}
    assert pointers == {"/currency", "/items/0/unit_price", "/seller/name"}
    assert sink.events == []
    assert get_context().repo.list_invoices(alice.id).items == ()


def test_malformed_json_is_400_and_too_large_is_413(
    upload_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = upload_client.post(
        "/upload", headers=alice.auth, data=b'{"number": ', content_type="application/json"
    )
    assert r.status_code == 400 and "line 1" in r.get_json()["detail"]
    assert_matches(r, "/upload", "post")
    big = b'{"notes": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = upload_client.post("/upload", headers=alice.auth, data=big, content_type="application/json")
    assert r.status_code == 413
    assert_matches(r, "/upload", "post")
    r = upload_client.post(
        "/upload",
        headers=alice.auth,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(big), "big.json")},
    )
    assert r.status_code == 413
    r = upload_client.post(
        "/upload",
        headers=alice.auth,
        content_type="multipart/form-data",
        data={"other": (io.BytesIO(b"{}"), "x.json")},
    )
    assert r.status_code == 400 and "'file'" in r.get_json()["detail"]
    r = upload_client.post("/upload", headers=alice.auth, data=b"hello", content_type="text/plain")
    assert r.status_code == 400


def test_upload_needs_a_valid_token(upload_client: Any, alice: Person) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="}):
        r = upload_client.post(
            "/upload",
            headers=headers,
            data=example("minimal.json"),
            content_type="application/json",
        )
        assert r.status_code == 401


def test_idempotency_key(upload_client: Any, alice: Person, sink: Sink) -> None:
    headers = {**alice.auth, "Idempotency-Key": "order-77"}
    first = upload_client.post(
        "/upload", headers=headers, data=example("minimal.json"), content_type="application/json"
    )
    again = upload_client.post(
        "/upload", headers=headers, data=example("minimal.json"), content_type="application/json"
    )
    assert first.status_code == again.status_code == 202
    assert first.get_json() == again.get_json()
    assert len(get_context().repo.list_invoices(alice.id).items) == 1
    assert len(sink.of_type("uploaded.v1")) == 1
    other = upload_client.post(
        "/upload",
        headers=headers,
        data=example("jpy-no-decimals.json"),
        content_type="application/json",
    )
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["title"]


def test_broker_down_keeps_the_event_in_the_outbox_and_the_relay_sends_it(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    sink.status = 503
    r = upload_client.post(
        "/upload", headers=alice.auth, data=example("minimal.json"), content_type="application/json"
    )
    assert r.status_code == 202  # accepted: the event is durable in the outbox
    ctx = get_context()
    (pending,) = ctx.repo.pending_outbox_events()
    assert pending.attempts == 1 and pending.last_error
    sink.status = 202
    r = upload_client.post(
        "/upload",
        headers=alice.auth,
        data=example("jpy-no-decimals.json"),
        content_type="application/json",
    )
    assert r.status_code == 202
    # a request relays only its own event (issue 9, finding 8); the relay sends the rest
    (own,) = sink.of_type("uploaded.v1")
    assert own.data["invoice_id"] == r.get_json()["invoice_id"]
    assert [e.event_id for e in ctx.repo.pending_outbox_events()] == [pending.event_id]
    assert relay(ctx) == 1
    assert len(sink.of_type("uploaded.v1")) == 2
    assert ctx.repo.pending_outbox_events() == []


def test_concurrent_uploads_publish_each_uploaded_event_exactly_once(
    env: dict[str, str], alice: Person, sink: Sink
) -> None:
    """Issue 9, finding 8: 20 concurrent clients; every request used to relay the whole
    pending outbox (4,485 publishes for 139 uploads). Publishes must equal uploads."""
    clients, per_client = 20, 4
    # without a number: each upload gets the next of the series (a number is used once)
    document = json.dumps(
        {k: v for k, v in example_json("minimal.json").items() if k != "number"}
    ).encode()
    barrier = threading.Barrier(clients)
    # the apps are built first, one by one (the test is about concurrent uploads)
    upload_clients = [client("upload") for _ in range(clients)]

    def client_run(i: int) -> list[str]:
        upload_client = upload_clients[i]
        barrier.wait(timeout=120)
        ids = []
        for _ in range(per_client):
            r = upload_client.post(
                "/upload", headers=alice.auth, data=document, content_type="application/json"
            )
            assert r.status_code == 202, r.get_data(as_text=True)
            ids.append(r.get_json()["invoice_id"])
        return ids

    with ThreadPoolExecutor(max_workers=clients) as pool:
        uploaded = [i for ids in pool.map(client_run, range(clients)) for i in ids]
    published = [e.data["invoice_id"] for e in sink.of_type("uploaded.v1")]
    print(f"{len(uploaded)} uploads by {clients} clients, {len(published)} uploaded publishes")
    assert len(uploaded) == clients * per_client
    assert sorted(published) == sorted(uploaded)  # each once: publishes == uploads
    assert get_context().repo.pending_outbox_events() == []


def test_killed_between_commit_and_send_the_event_is_still_delivered(
    env: dict[str, str], alice: Person, sink: Sink, tmp_path: Path
) -> None:
    """The process dies (os._exit, no cleanup) right after the database commit and before the
    broker call; the invoice exists, its event is pending, and the relay delivers it."""
    script = textwrap.dedent(f"""
        import os, sys
        from functions_framework import create_app
        import invoiceflow.acceptance as acceptance
        def die(ctx, events):
            os._exit(137)
        acceptance.relay_after_commit = die
        client = create_app("upload", {str(Path("functions/upload.py").resolve())!r}).test_client()
        client.post("/upload", headers={{"Authorization": "Bearer {alice.token}"}},
                    data=open({str(Path("events/examples/invoices/minimal.json").resolve())!r},
                              "rb").read(), content_type="application/json")
        sys.exit(0)  # never reached
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, text=True
    )
    assert proc.returncode == 137, proc.stderr
    assert sink.events == []  # nothing reached the broker
    ctx = get_context()
    (invoice,) = ctx.repo.list_invoices(alice.id).items
    (pending,) = ctx.repo.pending_outbox_events()
    assert pending.subject == invoice.id
    relay = subprocess.run(
        [sys.executable, "-m", "invoiceflow.cli", "outbox", "relay"],
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert relay.returncode == 0, relay.stderr
    (event,) = sink.of_type("uploaded.v1")
    assert event.data["invoice_id"] == invoice.id
    assert ctx.repo.pending_outbox_events() == []


def _routes(event: Any) -> dict[str, str]:
    attributes = events.attributes_of(event)
    return {k: v for k, v in attributes.items() if k.startswith("render")}


def test_the_uploaded_event_names_the_render_steps_with_work(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """Its routing attributes: the render Triggers deliver it only to those steps."""
    for document, formats, routes in [
        ("minimal.json", None, {"renderpdf": "true", "renderxlsx": "true"}),
        ("jpy-no-decimals.json", "xlsx", {"renderxlsx": "true"}),
        ("eur-two-rates.json", "pdf", {"renderpdf": "true"}),
    ]:
        sink.events.clear()
        r = upload_client.post(
            "/upload" + (f"?formats={formats}" if formats else ""),
            headers=alice.auth,
            data=example(document),
            content_type="application/json",
        )
        assert r.status_code == 202, r.get_data(as_text=True)
        (event,) = sink.of_type("uploaded.v1")
        assert _routes(event) == routes, formats


def test_an_uploaded_event_queued_before_the_routing_attributes_is_sent_with_them(
    upload_client: Any, alice: Person, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade: a row the previous version wrote (no routing attributes) and left pending
    is relayed with the attributes of its formats, so its render steps still get it."""
    sink.status = 503
    with monkeypatch.context() as old_version:
        old_version.setattr(naming, "uploaded_routes", lambda formats: {})
        r = upload_client.post(
            "/upload?formats=xlsx",
            headers=alice.auth,
            data=example("minimal.json"),
            content_type="application/json",
        )
    assert r.status_code == 202
    ctx = get_context()
    (pending,) = ctx.repo.pending_outbox_events()
    assert pending.extensions == {}
    sink.status = 202
    assert relay(ctx) == 1
    (event,) = sink.of_type("uploaded.v1")
    assert _routes(event) == {"renderxlsx": "true"}
