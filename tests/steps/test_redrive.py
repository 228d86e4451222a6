"""``invoiceflow invoices redrive``: an invoice stalled in ``received`` because the broker
dropped one of its events is put back in motion through the broker, and becomes ready with
exactly one ready email; running it again changes nothing.

The test plays the broker: every event the functions and the command publish (to the sink)
is delivered to the step functions whose Knative Trigger (knative/50-triggers.yaml, read by
the local runtime's loader) matches it, except the events a test drops."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invoiceflow import cli
from invoiceflow.context import get_context
from invoiceflow.events import INVOICE_RENDERED, INVOICE_UPLOADED
from invoiceflow_local.triggers import load_triggers, matching
from support.api import Person, Sink, client, deliver, example_json, outbox_emails
from support.records import invoice_record

Drop = Callable[[Any, str], bool]


@pytest.fixture
def steps(env: dict[str, str]) -> dict[str, Any]:
    return {
        name: client(name.replace("-", "_"))
        for name in ("render-pdf", "render-xlsx", "render-xml", "notify", "dead-letter")
    }


def upload(upload_client: Any, person: Person) -> str:
    """An upload of the default formats (pdf, xlsx) that gets the next number of the owner's
    series (many per test)."""
    doc = example_json("eur-two-rates.json")
    doc.pop("number")
    r = upload_client.post(
        "/upload", headers=person.auth, content_type="application/json", data=json.dumps(doc)
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    return str(r.get_json()["invoice_id"])


def pump(sink: Sink, steps: dict[str, Any], start: int = 0, drop: Drop | None = None) -> int:
    """Deliver the sink's events from ``start`` on (and those they cause) to the steps whose
    Trigger matches, skipping ``drop(event, step)``; returns how many events the sink holds."""
    triggers = load_triggers()
    while start < len(sink.events):
        event = sink.events[start]
        start += 1
        for trigger in matching(triggers, event.get_attributes()):
            step = str(trigger.subscriber.service)
            if drop is not None and drop(event, step):
                continue
            r = deliver(steps[step], event)
            assert r.status_code == 200, (step, r.get_data(as_text=True))
    return start


def age(invoice_id: str, minutes: int = 60) -> None:
    """The invoice and its artifacts last changed ``minutes`` ago."""
    then = datetime.now(UTC) - timedelta(minutes=minutes)
    repo = get_context().repo
    with repo._transaction() as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE invoices SET updated_at = ? WHERE id = ?", (then, invoice_id))
        tx.execute("UPDATE artifacts SET created_at = ? WHERE invoice_id = ?", (then, invoice_id))


def redrive(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["invoices", "redrive", *args])
    out, err = capsys.readouterr()
    return status, out, err


def ready_rendered_dropped(event: Any, step: str) -> bool:
    """The broker loses the rendered event that would have made the invoice ready."""
    return step == "notify" and event["type"] == INVOICE_RENDERED


def stalled_with_every_file(
    upload_client: Any, steps: dict[str, Any], alice: Person, sink: Sink
) -> tuple[str, int]:
    invoice_id = upload(upload_client, alice)
    seen = pump(sink, steps, drop=ready_rendered_dropped)
    repo = get_context().repo
    assert {a.format for a in repo.list_artifacts(invoice_id)} == {"pdf", "xlsx"}
    assert invoice_record(repo, invoice_id).status == "received"
    age(invoice_id)
    return invoice_id, seen


def test_an_invoice_whose_ready_event_was_lost_becomes_ready_with_one_email(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoice_id, seen = stalled_with_every_file(upload_client, steps, alice, sink)
    assert outbox_emails(env) == []

    status, out, err = redrive(capsys)
    assert status == 0, err
    (line,) = out.splitlines()
    assert line.startswith(f"{invoice_id}\t")
    assert "published every file stored: invoice.rendered to notify" in line
    assert "1 stalled invoice(s) redriven" in err
    (published,) = sink.events[seen:]
    assert published["type"] == INVOICE_RENDERED and published["allrendered"] == "true"
    assert published["source"] == "/invoiceflow/redrive"

    pump(sink, steps, seen)
    assert invoice_record(get_context().repo, invoice_id).status == "ready"
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert len(sink.of_type("notified.v1")) == 1


def test_an_invoice_a_render_step_never_got_renders_only_what_is_missing(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoice_id = upload(upload_client, alice)
    seen = pump(sink, steps, drop=lambda event, step: step == "render-pdf")
    repo = get_context().repo
    (xlsx,) = repo.list_artifacts(invoice_id)
    assert xlsx.format == "xlsx" and invoice_record(repo, invoice_id).status == "received"
    age(invoice_id)
    (xlsx,) = repo.list_artifacts(invoice_id)

    status, out, err = redrive(capsys)
    assert status == 0, err
    assert "missing pdf: invoice.uploaded to render-pdf" in out
    (published,) = sink.events[seen:]
    assert published["type"] == INVOICE_UPLOADED
    assert published["renderpdf"] == "true" and "renderxlsx" not in published.get_attributes()

    rendered_before = len(sink.of_type("rendered.v1"))
    pump(sink, steps, seen)
    assert invoice_record(repo, invoice_id).status == "ready"
    assert repo.get_artifact(invoice_id, "xlsx") == xlsx  # reused, not rendered again
    assert [e.data["format"] for e in sink.of_type("rendered.v1")[rendered_before:]] == ["pdf"]
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]


def test_running_it_again_sends_nothing_more(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoice_id, seen = stalled_with_every_file(upload_client, steps, alice, sink)
    # twice before the steps took the first run's event: the same event twice
    assert redrive(capsys)[0] == 0
    assert redrive(capsys)[0] == 0
    first, second = sink.events[seen:]
    assert (first["source"], first["id"]) == (second["source"], second["id"])
    seen = pump(sink, steps, seen)
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert len(sink.of_type("notified.v1")) == 1

    status, out, err = redrive(capsys, "--older-than", "1")
    assert (status, out) == (0, "") and "0 stalled invoice(s) redriven" in err
    assert len(sink.events) == seen
    # the broker redelivering the redrive's event: a duplicate
    assert deliver(steps["notify"], first).get_json() == {"duplicate": True}
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert len(sink.of_type("notified.v1")) == 1


def test_young_ready_and_failed_invoices_are_left_alone(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = get_context().repo
    stalled = upload(upload_client, alice)
    upload(upload_client, alice)  # in flight: changed just now
    ready = upload(upload_client, alice)
    failed = upload(upload_client, alice)
    fresh_file = upload(upload_client, alice)  # an old row, but a file stored just now
    seen = pump(
        sink,
        steps,
        drop=lambda event, step: (
            event["subject"] not in (ready, fresh_file)
            or (event["subject"] == fresh_file and step == "notify")
        ),
    )
    assert repo.mark_invoice_failed(failed, "render-pdf failed (HTTP 422)")
    for invoice_id in (stalled, ready, failed):
        age(invoice_id)
    with repo._transaction() as tx:  # type: ignore[attr-defined]
        tx.execute(
            "UPDATE invoices SET updated_at = ? WHERE id = ?",
            (datetime.now(UTC) - timedelta(minutes=60), fresh_file),
        )
    assert invoice_record(repo, ready).status == "ready"
    assert invoice_record(repo, fresh_file).status == "received"

    status, out, err = redrive(capsys)
    assert status == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == [stalled]
    assert [e["subject"] for e in sink.events[seen:]] == [stalled]


def test_dry_run_only_lists(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoice_id, seen = stalled_with_every_file(upload_client, steps, alice, sink)
    before = invoice_record(get_context().repo, invoice_id)
    ctx = get_context()  # K_SINK is not needed to list
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, k_sink=None))
    status, out, err = redrive(capsys, "--dry-run")
    assert status == 0, err
    assert out.startswith(f"{invoice_id}\t") and "would publish every file stored" in out
    assert "1 stalled invoice(s); nothing was published (--dry-run)" in err
    assert len(sink.events) == seen
    assert invoice_record(get_context().repo, invoice_id) == before
    assert outbox_emails(env) == []


def test_a_broker_that_refuses_is_exit_status_1_and_names_no_address(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoice_id, seen = stalled_with_every_file(upload_client, steps, alice, sink)
    sink.status = 503
    status, out, err = redrive(capsys)
    assert status == 1
    assert f"{invoice_id}\t" in out and "NOT published (the event broker answered HTTP 503)" in out
    assert "run the command again" in err
    assert sink.url not in out + err
    sink.status = 202
    assert redrive(capsys)[0] == 0
    pump(sink, steps, seen)
    assert invoice_record(get_context().repo, invoice_id).status == "ready"


def test_stalled_invoices_are_paged_oldest_first(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    repo = get_context().repo
    ids = [upload(upload_client, alice) for _ in range(3)]
    age(ids[0], 90)
    tie = datetime.now(UTC) - timedelta(minutes=60)  # the same time: ordered by id
    with repo._transaction() as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE invoices SET updated_at = ? WHERE id <> ?", (tie, ids[0]))
    cutoff = datetime.now(UTC) - timedelta(minutes=30)
    paged = []
    page = repo.stalled_invoices(cutoff, limit=1)
    while page:
        paged += page
        page = repo.stalled_invoices(cutoff, limit=1, after=page[-1])
    assert [p.invoice.id for p in paged] == [ids[0], *sorted(ids[1:])]
    assert all(p.missing == ["pdf", "xlsx"] for p in paged)
