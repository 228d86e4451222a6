"""Issue 9, finding 9 with a real network failure: the database (the machine's PostgreSQL,
reached through a proxy the test cuts, so the shared server is never touched) goes away after
the email was sent and before it is marked sent."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from invoiceflow.context import get_context, reset_context
from invoiceflow.events import to_http
from invoiceflow.stores.sql import utc_now
from support.api import Person, Sink, client, example
from support.records import notification_record
from support.sendgrid import fake_sendgrid
from support.tcpproxy import CuttableProxy, cuttable_proxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy(postgres_server_url: str) -> Iterator[CuttableProxy]:
    server = urlsplit(postgres_server_url)
    with cuttable_proxy(server.hostname or "127.0.0.1", server.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def database_url(postgres_url: str, proxy: CuttableProxy) -> str:
    """The repository's PostgreSQL (a fresh schema), through the proxy."""
    server = urlsplit(postgres_url)
    return postgres_url.replace(server.netloc, f"{server.username}@127.0.0.1:{proxy.port}", 1)


def _ready(upload_client: Any, person: Person, sink: Sink) -> tuple[str, Any]:
    r = upload_client.post(
        "/upload",
        headers=person.auth,
        content_type="application/json",
        data=example("eur-two-rates.json"),
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    (uploaded,) = sink.of_type("uploaded.v1")
    for name in ("render_pdf", "render_xlsx"):
        assert _deliver(client(name), uploaded).status_code == 200
    return str(r.get_json()["invoice_id"]), sink.of_type("rendered.v1")[-1]


def _deliver(step: Any, event: Any) -> Any:
    headers, body = to_http(event)
    return step.post("/", headers=headers, data=body)


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(
        get_context().repo, "_clock", lambda: utc_now() + timedelta(seconds=seconds)
    )


def test_postgres_gone_while_sendgrid_takes_the_email_sends_it_once(
    upload_client: Any,
    alice: Person,
    sink: Sink,
    proxy: CuttableProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoice_id, rendered = _ready(upload_client, alice, sink)
    with fake_sendgrid() as sendgrid:
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key-not-a-secret")
        monkeypatch.setenv("SENDGRID_HOST", sendgrid.url)
        reset_context()

        def database_restarts(_: dict[str, Any]) -> None:
            proxy.cut()  # SendGrid has the email; the database is gone for a second
            threading.Timer(1.0, proxy.restore).start()

        sendgrid.on_request = database_restarts
        notify = client("notify")
        assert _deliver(notify, rendered).status_code == 200
        assert len(sendgrid.requests) == 1
        # the broker's redelivery 65 s later, past the 45 s takeover: nothing more is sent
        sendgrid.on_request = None
        _later(monkeypatch, 65)
        assert _deliver(notify, rendered).status_code == 200
        assert len(sendgrid.requests) == 1
        assert notification_record(get_context().repo, invoice_id, "ready").state == "sent"
        assert len(sink.of_type("notified.v1")) == 1


def test_postgres_down_past_the_mark_retries_writes_one_outbox_email(
    upload_client: Any,
    alice: Person,
    sink: Sink,
    proxy: CuttableProxy,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import invoiceflow.mail
    import invoiceflow.steps

    monkeypatch.setattr(invoiceflow.steps, "MARK_SENT_RETRY_FOR", 0.0)
    invoice_id, rendered = _ready(upload_client, alice, sink)
    real_send = invoiceflow.mail.OutboxMailer.send
    sends: list[str | None] = []

    def send_then_lose_the_database(self: Any, message: Any) -> str | None:
        sends.append(real_send(self, message))
        if len(sends) == 1:
            proxy.cut()  # the email is written; the database is gone until restored
        return sends[-1]

    monkeypatch.setattr(invoiceflow.mail.OutboxMailer, "send", send_then_lose_the_database)
    notify = client("notify")
    assert _deliver(notify, rendered).status_code == 503  # retried by the broker
    outbox = Path(env["DATA_DIR"]) / "outbox"
    (email,) = outbox.glob("*.eml")
    first = hashlib.sha256(email.read_bytes()).hexdigest()
    proxy.restore()
    assert _deliver(notify, rendered).status_code == 409  # the claim is kept: no resend
    _later(monkeypatch, 65)
    assert _deliver(notify, rendered).status_code == 200  # taken over: already written
    assert len(sends) == 2  # the takeover did send again: the outbox made it a no-op
    assert list(outbox.glob("*.eml")) == [email]
    assert hashlib.sha256(email.read_bytes()).hexdigest() == first
    assert notification_record(get_context().repo, invoice_id, "ready").state == "sent"
    assert len(sink.of_type("notified.v1")) == 1
