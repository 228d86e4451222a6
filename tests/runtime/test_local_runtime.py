"""``invoiceflow dev``: the public port serves only the public paths; the broker ingress and the
functions by name are on a 127.0.0.1 listener; readiness covers the broker's consumers; a
missing MongoDB is found at start-up."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from invoiceflow import accounts, health
from invoiceflow.context import get_context
from invoiceflow.errors import Unavailable
from invoiceflow.events import INVOICE_FAILED, INVOICE_REQUESTED, make_event, to_http
from invoiceflow.signing import sign_event
from invoiceflow_local.delivery import Outcome
from invoiceflow_local.dev import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
KEY_ID, SECRET = "erp", "runtime-producer-secret-at-least-32-bytes"


@pytest.fixture
def producer_keys(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_PRODUCER_KEYS", f"{KEY_ID}:{SECRET}")


@pytest.fixture
def runtime(producer_keys: None) -> Iterator[LocalRuntime]:
    running = LocalRuntime("127.0.0.1", 0).start()
    try:
        yield running
    finally:
        running.stop()


def _invoice() -> dict[str, Any]:
    return dict(json.loads((ROOT / "events/examples/invoices/minimal.json").read_text()))


def _structured(event: Any) -> bytes:
    headers, body = to_http(event)
    attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    return json.dumps({**attributes, "data": json.loads(body)}).encode()


def test_the_public_port_serves_only_the_public_paths(runtime: LocalRuntime) -> None:
    assert runtime.internal_url.startswith("http://127.0.0.1:")
    assert runtime.internal_url != runtime.url
    forged = make_event(
        INVOICE_FAILED,
        "/invoiceflow/dead-letter",
        {
            "invoice_id": "00000000-0000-4000-8000-000000000000",
            "owner_id": "x",
            "reason": "pay to IBAN DE89...",
            "error_code": "422",
            "failed_event_type": "x",
        },
    )
    headers, body = to_http(forged)
    for path in (
        "/_broker",
        "/_broker/",
        "/_functions/notify",
        "/_functions/notify/",
        "/_functions/intake",
        "/_functions/upload/upload",
        "/upload/events",
        "/events",
    ):
        r = requests.post(runtime.url + path, headers=headers, data=body, timeout=10)
        assert r.status_code == 404, (path, r.status_code, r.text)
    assert runtime.broker.wait_idle(10)
    assert not list((Path(os.environ["DATA_DIR"]) / "outbox").glob("*.eml"))
    # the public paths still work
    assert requests.get(runtime.url + "/openapi.json", timeout=10).status_code == 200
    assert requests.post(runtime.url + "/login", timeout=10).status_code == 401


def test_an_unsigned_event_on_the_internal_broker_is_refused_and_a_signed_one_is_taken(
    runtime: LocalRuntime,
) -> None:
    ctx = get_context()
    owner = accounts.add_user(ctx.repo, "victim@example.com", PASSWORD)
    outcomes: list[Outcome] = []
    runtime.broker.listeners.append(
        lambda record: outcomes.append(record) if isinstance(record, Outcome) else None
    )
    doc = _invoice()
    doc["notes"] = "Pay to IBAN DE89370400440532013000"
    forged = make_event(
        INVOICE_REQUESTED, "/x", {"owner_email": owner.email, "invoice": doc}, id="a1"
    )
    r = requests.post(
        runtime.internal_url + "/_broker",
        data=_structured(forged),
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=10,
    )
    assert r.status_code == 202  # the broker takes it; the intake function refuses it
    assert runtime.broker.wait_idle(30)
    (refused,) = [o for o in outcomes if o.trigger == "intake-requested"]
    assert (refused.status, refused.result) == (401, "dead-lettered")
    assert ctx.repo.list_invoices(owner.id).items == ()
    # the same event signed by a configured producer makes one invoice, which gets ready
    signed = sign_event(
        make_event(
            INVOICE_REQUESTED,
            "/erp/orders",
            {"owner_email": owner.email, "invoice": _invoice()},
            id="order-1",
        ),
        KEY_ID,
        SECRET,
    )
    r = requests.post(
        runtime.internal_url + "/_broker",
        data=_structured(signed),
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=10,
    )
    assert r.status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = ctx.repo.list_invoices(owner.id).items
        if items and items[0].status != "received":
            break
        time.sleep(0.05)
    (invoice,) = ctx.repo.list_invoices(owner.id).items
    assert invoice.status == "ready" and invoice.source == "event"


def test_liveness_and_readiness_include_the_broker(runtime: LocalRuntime) -> None:
    r = requests.get(runtime.url + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "alive"}
    r = requests.get(runtime.url + "/readyz", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "documents": "ok", "broker": "ok", "functions": "ok"},
    }
    # every function also answers its own probes where the broker reaches it
    r = requests.get(runtime.internal_url + "/_functions/notify/readyz", timeout=10)
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "documents": "ok"}
    runtime.broker.stop()
    r = requests.get(runtime.url + "/readyz", timeout=10)
    assert r.status_code == 503
    assert r.json()["checks"]["broker"] == "unavailable"


def test_a_missing_mongodb_is_found_at_start_up(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.3)
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:1/?connectTimeoutMS=300")
    runtime = LocalRuntime("127.0.0.1", 0)
    with pytest.raises(Unavailable, match="document store"):
        runtime.start()
    runtime.stop()


def test_the_runtime_never_writes_the_environment(producer_keys: None) -> None:
    """What it decides (K_SINK, a JWT secret, PUBLIC_BASE_URL) goes into the settings it
    installs for its functions, not into os.environ."""
    before = dict(os.environ)
    runtime = LocalRuntime("127.0.0.1", 0).start()
    try:
        settings = get_context().settings
        assert settings.k_sink == f"{runtime.internal_url}/_broker"
        assert settings.public_base_url == runtime.url
        assert settings.jwt_secret and len(settings.jwt_secret) >= 32
        assert dict(os.environ) == before
        r = requests.post(runtime.url + "/login", auth=("nobody@example.com", "x" * 12), timeout=10)
        assert r.status_code == 401  # the login function runs on the installed settings
    finally:
        runtime.stop()
    assert dict(os.environ) == before


def test_the_public_routes_come_from_the_ingress_manifest(
    producer_keys: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    knative = tmp_path / "knative"
    shutil.copytree(ROOT / "knative", knative)
    gateway = knative / "ingress" / "gateway-api.yaml"
    gateway.write_text(gateway.read_text().replace("value: /login", "value: /sign-in"))
    monkeypatch.setenv("KNATIVE_DIR", str(knative))
    with LocalRuntime("127.0.0.1", 0) as runtime:
        assert requests.post(runtime.url + "/login", timeout=10).status_code == 404
        assert requests.post(runtime.url + "/sign-in", timeout=10).status_code == 401
        assert "/sign-in" in {route.path for route in runtime.routes}
