"""End to end through the local runtime over real HTTP: upload -> both files -> one email.

Backends: the embedded default (SQLite, files, in-process broker) and the real Postgres and
RabbitMQ on this machine with the GridFS adapter (on mongomock) or the files adapter."""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from invoiceflow import accounts, naming
from invoiceflow.context import get_context
from invoiceflow_local.dev import LocalRuntime
from support.api import EXAMPLES, PASSWORD, garbage_png
from support.records import invoice_record
from support.sendgrid import FakeSendGrid, fake_sendgrid
from support.services import RABBITMQ_URL, fail_or_skip


def rabbitmq_url() -> str:
    address = urlsplit(RABBITMQ_URL)
    try:
        socket.create_connection((address.hostname, address.port or 5672), 3).close()
    except OSError as exc:
        fail_or_skip(f"RabbitMQ is not reachable: {exc}")
    return RABBITMQ_URL


def use_postgres_and_rabbitmq(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """Point the runtime at the real Postgres (a fresh schema) and RabbitMQ; returns the broker
    options: a queue prefix of its own, so the test can delete its topology afterwards."""
    monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("RABBITMQ_URL", rabbitmq_url())
    return {"prefix": f"test-{uuid.uuid4().hex[:8]}."}


class Pipeline:
    backend = ""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.base = runtime.url
        ctx = get_context()
        accounts.add_user(ctx.repo, "owner@example.com", PASSWORD)
        r = requests.post(f"{self.base}/login", auth=("owner@example.com", PASSWORD), timeout=30)
        assert r.status_code == 200, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['token']}"}

    def upload(self, body: bytes, formats: str | None = None) -> str:
        r = requests.post(
            f"{self.base}/upload",
            params={"formats": formats} if formats is not None else None,
            headers=self.auth,
            timeout=30,
            files={"file": ("invoice_data.json", body, "application/json")},
        )
        assert r.status_code == 202, r.text
        return str(r.json()["invoice_id"])

    def wait(self, invoice_ids: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        views: dict[str, dict[str, Any]] = {}
        pending = list(invoice_ids)
        while pending and time.monotonic() < deadline:
            for invoice_id in list(pending):
                view = requests.get(
                    f"{self.base}/invoices/{invoice_id}", headers=self.auth, timeout=30
                ).json()
                views[invoice_id] = view
                if view["status"] in ("ready", "failed"):
                    pending.remove(invoice_id)
            time.sleep(0.05)
        assert not pending, f"not finished in time: {[views.get(i) for i in pending[:3]]}"
        return views

    def drain(self, timeout: float = 120) -> None:
        """Wait until nothing is left to happen: the outbox has nothing pending and the broker
        is idle (every accepted event delivered, retried to the end or dead-lettered). After
        this, a missing duplicate is proven missing, not merely late."""
        repo = get_context().repo
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                not repo.pending_outbox_events(1)
                and self.runtime.broker.wait_idle(max(0.0, deadline - time.monotonic()))
                and not repo.pending_outbox_events(1)
            ):
                return
            time.sleep(0.05)
        raise AssertionError(f"the pipeline did not drain in {timeout} s")

    def download(self, file_id: str) -> requests.Response:
        r = requests.get(
            f"{self.base}/download", params={"fid": file_id}, headers=self.auth, timeout=60
        )
        assert r.status_code == 200, r.text
        return r


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    with fake_sendgrid() as fake:
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.e2e-test-key")
        monkeypatch.setenv("SENDGRID_HOST", fake.url)
        yield fake


BACKENDS = ["embedded", "postgres+rabbitmq+gridfs", "postgres+rabbitmq+files"]


@pytest.fixture(params=BACKENDS)
def pipeline(
    request: pytest.FixtureRequest,
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: FakeSendGrid,
) -> Iterator[Pipeline]:
    options: dict[str, Any] = {}
    if request.param != "embedded":
        options = use_postgres_and_rabbitmq(monkeypatch, request)
    if request.param.endswith("gridfs"):
        # mongomock lives in this process: the functions must too (LOCAL_WORKERS=0)
        options["workers"] = 0
    runtime = LocalRuntime("127.0.0.1", 0, **options).start()
    if request.param.endswith("gridfs"):
        # the GridFS adapter on mongomock, in place of a mongodb:// server nobody runs here;
        # every function of the runtime shares this process's context
        from invoiceflow.stores.gridfs_store import GridFSDocumentStore

        get_context().docs = GridFSDocumentStore(request.getfixturevalue("mongomock_db"))
    try:
        pipeline = Pipeline(runtime)
        pipeline.backend = request.param
        yield pipeline
    finally:
        runtime.stop()
        if "prefix" in options:
            runtime.broker.delete_topology()


def test_upload_to_both_files_and_one_email(pipeline: Pipeline, sendgrid: FakeSendGrid) -> None:
    body = (EXAMPLES / "eur-two-rates.json").read_bytes()
    invoice_id = pipeline.upload(body)
    view = pipeline.wait([invoice_id])[invoice_id]
    assert view["status"] == "ready"
    pdf = pipeline.download(view["files"]["pdf"]["file_id"])
    xlsx = pipeline.download(view["files"]["xlsx"]["file_id"])
    assert pdf.content.startswith(b"%PDF") and xlsx.content.startswith(b"PK")
    stored = get_context().docs.get(view["files"]["pdf"]["file_id"])
    assert stored is not None and stored.size == len(pdf.content)
    assert type(get_context().docs).__name__ == (
        "GridFSDocumentStore" if pipeline.backend.endswith("gridfs") else "FilesDocumentStore"
    )
    assert pdf.headers["Content-Disposition"].startswith('attachment; filename="RE-2026-0042.pdf"')
    pipeline.drain()
    (mail,) = sendgrid.delivered
    # a German document (eur-two-rates.json): a German email
    assert mail["json"]["subject"] == "Rechnung RE-2026-0042 ist fertig"
    attached = {a["filename"]: a for a in mail["json"]["attachments"]}
    assert sorted(attached) == ["RE-2026-0042.pdf", "RE-2026-0042.xlsx"]
    assert base64.b64decode(attached["RE-2026-0042.pdf"]["content"]) == pdf.content
    # no XML asked for: its uploaded event never reached render-xml (the Trigger's filter)
    assert reached(invoice_id) == {"render-pdf", "render-xlsx"}


def reached(invoice_id: str) -> set[str]:
    """The render steps the invoice's uploaded event was delivered to: each one records the
    event as processed, even when it has nothing to render (its own check, the safety net)."""
    repo = get_context().repo
    event_id = naming.uploaded_event_id(invoice_id)
    return {
        step
        for step in naming.RENDER_STEP_FORMATS
        if repo.is_processed(step, naming.UPLOAD_SOURCE, event_id)
    }


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.mark.parametrize(
    ("formats", "files"),
    [
        (
            "pdf,xlsx,cii,ubl",
            {
                "pdf": ("RE-2026-0042.pdf", "application/pdf"),
                "xlsx": ("RE-2026-0042.xlsx", XLSX),
                "cii": ("RE-2026-0042.xml", "application/xml"),
                "ubl": ("RE-2026-0042-ubl.xml", "application/xml"),
            },
        ),
        ("facturx", {"facturx": ("RE-2026-0042.pdf", "application/pdf")}),
    ],
)
def test_e_invoices_from_upload_to_download_and_email(
    pipeline: Pipeline,
    sendgrid: FakeSendGrid,
    formats: str,
    files: dict[str, tuple[str, str]],
) -> None:
    """render-xml (a Service and Trigger of the manifests, run by the local runtime) and
    render-pdf render what the upload asked for; each file is its owner's only."""
    from invoiceflow.domain import to_json
    from support.einvoice_samples import german_b2b

    invoice_id = pipeline.upload(json.dumps(to_json(german_b2b())).encode(), formats)
    view = pipeline.wait([invoice_id])[invoice_id]
    assert view["status"] == "ready", view
    # and the submitted document (json) and the completed one it was rendered from (document)
    assert view["formats"] == list(files)
    assert set(view["files"]) == {*files, "json", "document"}
    accounts.add_user(get_context().repo, "other@example.com", PASSWORD)
    other = requests.post(
        f"{pipeline.base}/login", auth=("other@example.com", PASSWORD), timeout=30
    )
    stranger = {"Authorization": f"Bearer {other.json()['token']}"}
    contents = {}
    for fmt, (name, content_type) in files.items():
        url = view["links"][fmt]
        assert url == f"{pipeline.base}/invoices/{invoice_id}/{fmt}"
        r = requests.get(url, headers=pipeline.auth, timeout=60)
        assert r.status_code == 200, (fmt, r.text)
        assert r.headers["Content-Type"].split(";")[0] == content_type
        assert r.headers["Content-Disposition"].startswith(f'attachment; filename="{name}"')
        contents[name] = r.content
        for path in (
            f"/invoices/{invoice_id}/{fmt}",
            f"/download?fid={view['files'][fmt]['file_id']}",
        ):
            assert (
                requests.get(pipeline.base + path, headers=stranger, timeout=30).status_code == 404
            )
    pipeline.drain()
    (mail,) = sendgrid.delivered
    attached = {a["filename"]: a for a in mail["json"]["attachments"]}
    assert {n: a["type"] for n, a in attached.items()} == dict(files.values())
    for name, data in contents.items():
        assert base64.b64decode(attached[name]["content"]) == data
    steps = {"render-pdf"} | ({"render-xlsx", "render-xml"} if "xlsx" in files else set())
    assert reached(invoice_id) == steps


def _poison() -> bytes:
    doc = json.loads((EXAMPLES / "minimal.json").read_text())
    doc["number"] = "POISON-1"
    doc["seller"]["logo"] = "data:image/png;base64," + base64.b64encode(garbage_png()).decode()
    return json.dumps(doc).encode()


def test_poison_document_fails_once_and_the_next_invoice_still_flows(
    pipeline: Pipeline, sendgrid: FakeSendGrid
) -> None:
    poison = pipeline.upload(_poison())
    view = pipeline.wait([poison])[poison]
    assert view["status"] == "failed"
    assert "render-pdf" in view["error"] and "422" in view["error"]
    good = pipeline.upload((EXAMPLES / "minimal.json").read_bytes())
    assert pipeline.wait([good])[good]["status"] == "ready"
    pipeline.drain()  # then no duplicate email can still be on its way
    subjects = sorted(m["json"]["subject"] for m in sendgrid.delivered)
    assert subjects == ["Invoice MIN-1 is ready", "Invoice POISON-1 could not be produced"]
    assert invoice_record(get_context().repo, poison).status == "failed"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", "postgres+rabbitmq"])
def test_every_event_delivered_twice_has_no_duplicate_effects(
    backend: str,
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: FakeSendGrid,
    request: pytest.FixtureRequest,
) -> None:
    count = 100
    options: dict[str, Any] = {}
    if backend != "embedded":
        options = use_postgres_and_rabbitmq(monkeypatch, request)
    runtime = LocalRuntime("127.0.0.1", 0, **options).start()
    published: list[str] = []
    original = runtime.broker.publish

    def twice(event: Any) -> None:  # at-least-once, made real: every event arrives twice
        published.append(event["id"])
        original(event)
        original(event)

    runtime.broker.publish = twice
    try:
        pipeline = Pipeline(runtime)
        template = json.loads((EXAMPLES / "minimal.json").read_text())
        ids = []
        for n in range(count):
            doc = {**template, "number": f"DUP-{n:03d}"}
            ids.append(pipeline.upload(json.dumps(doc).encode()))
        pipeline.drain(timeout=300)  # every event and every duplicate has been delivered
        repo = get_context().repo
        assert {invoice_record(repo, i).status for i in ids} == {"ready"}
        artifacts = [a for i in ids for a in repo.list_artifacts(i)]
        assert sorted(a.format for a in artifacts).count("pdf") == count
        assert sorted(a.format for a in artifacts).count("xlsx") == count
        assert len({a.file_id for a in artifacts}) == 2 * count
        assert len(sendgrid.delivered) == count
        assert sorted(m["json"]["subject"] for m in sendgrid.delivered) == sorted(
            f"Invoice DUP-{n:03d} is ready" for n in range(count)
        )
        # uploaded + 2 rendered + notified per invoice were each published (and sent twice)
        assert len(published) >= 4 * count
    finally:
        runtime.stop()
        if "prefix" in options:
            runtime.broker.delete_topology()


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
def test_events_accepted_before_a_stop_are_delivered_after_the_restart(
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: FakeSendGrid,
    request: pytest.FixtureRequest,
) -> None:
    """RabbitMQ backend: the first runtime accepts an upload but delivers nothing (its broker
    does not consume), stops like Ctrl-C does, and a second runtime finishes the invoice."""
    options = use_postgres_and_rabbitmq(monkeypatch, request)
    monkeypatch.setenv("JWT_SECRET", "restart-test-secret-long-enough-for-hs256")
    first = LocalRuntime("127.0.0.1", 0, consume=False, **options).start()
    try:
        pipeline = Pipeline(first)
        invoice_id = pipeline.upload((EXAMPLES / "minimal.json").read_bytes())
        depths = first.broker.queue_depths()
        assert sum(depths.values()) >= 2, depths  # waiting for render-pdf and render-xlsx
        assert invoice_record(get_context().repo, invoice_id).status == "received"
    finally:
        first.stop()
    second = LocalRuntime("127.0.0.1", 0, **options).start()
    try:
        pipeline.base, pipeline.runtime = second.url, second
        view = pipeline.wait([invoice_id])[invoice_id]
        assert view["status"] == "ready"
        pipeline.drain()
        assert len(sendgrid.delivered) == 1
    finally:
        second.stop()
        second.broker.delete_topology()
