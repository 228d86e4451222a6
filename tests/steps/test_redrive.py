"""``invoiceflow invoices redrive``: an invoice stalled in ``received`` because the broker
dropped one of its events (or dead-lettered it while the invoice had every file) is put back
in motion through the broker, and becomes ready with exactly one ready email; a ``ready`` or
``failed`` invoice whose email notify never managed to send (the provider or the database down
for the whole retry window, then dead-lettered) gets exactly that email; running it again
changes nothing.

The test plays the broker: every event the functions and the command publish (to the sink)
is delivered to the step functions whose Knative Trigger (knative/50-triggers.yaml, read by
the local runtime's loader) matches it, except the events a test drops."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from invoiceflow import cli, naming
from invoiceflow.context import get_context
from invoiceflow.edge import error_response
from invoiceflow.errors import Unavailable
from invoiceflow.events import (
    INVOICE_FAILED,
    INVOICE_RENDERED,
    INVOICE_UPLOADED,
    Emitter,
    with_extensions,
)
from invoiceflow.stores.protocols import NotificationKind
from invoiceflow_local.broker import Broker
from invoiceflow_local.delivery import error_extensions
from invoiceflow_local.triggers import load_triggers, matching
from support.api import (
    Person,
    Sink,
    client,
    deliver,
    example_json,
    outbox_emails,
    serve_wsgi,
)
from support.brokerkit import closed_port_url, trigger_yaml, write_manifests
from support.records import invoice_record, notification_record
from support.sendgrid import FakeSendGrid

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
    """The invoice, its artifacts and the claims of its emails last changed ``minutes`` ago."""
    then = datetime.now(UTC) - timedelta(minutes=minutes)
    repo = get_context().repo
    with repo._transaction() as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE invoices SET updated_at = ? WHERE id = ?", (then, invoice_id))
        tx.execute("UPDATE artifacts SET created_at = ? WHERE invoice_id = ?", (then, invoice_id))
        tx.execute(
            "UPDATE notifications SET claimed_at = ? WHERE invoice_id = ?", (then, invoice_id)
        )


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


#: a subscriber's answer on its last attempt, as the broker passes it to the dead-letter sink
GAVE_UP = {
    # the database down for the whole retry window: the edge's 503 problem
    "database down": lambda url: error_extensions(
        url,
        503,
        error_response(Unavailable("cannot connect to the database")).get_data(),
    ),
    # the Service unreachable (a broken revision, a crash loop): the broker's own text
    "no answer": lambda url: error_extensions(url, None, b"", "ConnectError: refused"),
}


def dead_lettered(
    steps: dict[str, Any],
    event: Any,
    extensions: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> Any:
    """What the broker does once a subscriber exhausted its retries on ``event``: hand it to
    dead-letter with the ``knativeerror*`` ``extensions``; dead-letter's answer."""
    with caplog.at_level("WARNING", logger="invoiceflow.steps"):
        r = deliver(steps["dead-letter"], with_extensions(event, extensions))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def assert_left_for_redrive(
    invoice_id: str, sink: Sink, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The dead-lettered invoice has every file: still ``received`` without a reason, no
    ``failed`` event and no email, and the operator's log names the invoice and the redrive."""
    invoice = invoice_record(get_context().repo, invoice_id)
    assert (invoice.status, invoice.error) == ("received", None)
    assert sink.of_type("failed.v1") == []
    assert outbox_emails(env) == []
    assert "dead letter:" in caplog.text
    assert invoice_id in caplog.text and "invoiceflow invoices redrive" in caplog.text


@pytest.mark.parametrize("then", ["redrive", "redelivery"])
@pytest.mark.parametrize("answer", sorted(GAVE_UP))
def test_a_complete_invoice_whose_notify_gave_up_is_not_failed_and_gets_one_ready_email(
    answer: str,
    then: str,
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """notify could not take the ``rendered`` event that completes the invoice for its whole
    retry window (the database down, notify unreachable), so the broker dead-lettered it.
    dead-letter marked the invoice, which has every file, ``failed`` and the owner got the
    failure email ("could not be created"); the next ``rendered`` delivery then made it
    ``ready`` with a second, ready email, and the redrive, which takes only ``received``
    invoices, never looked at it. Now it stays ``received``, and the redrive (or the next
    delivery) makes it ready with the one ready email."""
    invoice_id = upload(upload_client, alice)
    seen = pump(sink, steps, drop=ready_rendered_dropped)
    (complete,) = [e for e in sink.of_type("rendered.v1") if e["allrendered"] == "true"]
    extensions = GAVE_UP[answer]("http://notify.invoiceflow.svc.cluster.local")
    assert dead_lettered(steps, complete, extensions, caplog)["failed"] is False
    seen = pump(sink, steps, seen)  # whatever dead-letter emitted (a failed event: notify)
    assert_left_for_redrive(invoice_id, sink, env, caplog)

    if then == "redrive":
        age(invoice_id)
        status, out, err = redrive(capsys)
        assert status == 0, err
        assert out.startswith(f"{invoice_id}\t") and "every file stored" in out
    else:  # the broker (or the other renderer's complete event) delivers it again
        assert deliver(steps["notify"], complete).status_code == 200
    pump(sink, steps, seen)
    assert invoice_record(get_context().repo, invoice_id).status == "ready"
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    (notified,) = sink.of_type("notified.v1")
    assert notified.data["kind"] == "ready"


def test_a_render_step_that_stored_the_last_file_but_gave_up_leaves_it_for_the_redrive(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """render-pdf stored the invoice's last file but the broker refused its ``rendered``
    event on every attempt (its 503 is real): the event was dead-lettered with every file
    stored, and dead-letter marked the invoice ``failed`` with a failure email. Now it stays
    ``received`` and the redrive makes it ready with one ready email."""
    invoice_id = upload(upload_client, alice)
    seen = pump(sink, steps, drop=lambda event, step: step == "render-pdf")
    (uploaded,) = sink.of_type("uploaded.v1")
    sink.status = 503
    r = deliver(steps["render-pdf"], uploaded)
    assert r.status_code == 503, r.get_data(as_text=True)
    sink.status = 202
    repo = get_context().repo
    assert {a.format for a in repo.list_artifacts(invoice_id)} == {"pdf", "xlsx"}
    url = "http://render-pdf.invoiceflow.svc.cluster.local"
    extensions = error_extensions(url, r.status_code, r.get_data())
    assert dead_lettered(steps, uploaded, extensions, caplog)["failed"] is False
    seen = pump(sink, steps, seen)
    assert_left_for_redrive(invoice_id, sink, env, caplog)

    age(invoice_id)
    assert redrive(capsys)[0] == 0
    pump(sink, steps, seen)
    assert invoice_record(repo, invoice_id).status == "ready"
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]


def test_a_last_file_committed_while_dead_letter_looked_still_keeps_the_invoice(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race the step's own check cannot see: the files are read while one is missing,
    the renderer commits it, then dead-letter marks the invoice. The mark counts the files
    itself, so the invoice stays received and its rendered event makes it ready alone."""
    from invoiceflow import steps as step_module

    invoice_id = upload(upload_client, alice)
    pump(sink, steps, drop=ready_rendered_dropped)
    (uploaded,) = sink.of_type("uploaded.v1")
    real = step_module._has_every_file
    looks: list[bool] = []

    def before_the_last_file(ctx: Any, invoice: Any) -> bool:
        """The step's first look sees a file missing (it was committed right after)."""
        looks.append(bool(looks) and real(ctx, invoice))
        return looks[-1]

    monkeypatch.setattr(step_module, "_has_every_file", before_the_last_file)
    url = "http://render-pdf.invoiceflow.svc.cluster.local"
    extensions = error_extensions(url, 503, b"dispatch error: timeout")
    assert dead_lettered(steps, uploaded, extensions, caplog)["failed"] is False
    monkeypatch.undo()
    assert looks == [False, True]
    assert f"dead letter: invoice {invoice_id} has every file" in caplog.text
    assert invoice_record(get_context().repo, invoice_id).status == "received"
    assert sink.of_type("failed.v1") == []
    for rendered in sink.of_type("rendered.v1"):
        assert deliver(steps["notify"], rendered).status_code == 200
    assert invoice_record(get_context().repo, invoice_id).status == "ready"
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


def test_invoices_in_flight_or_whose_email_went_out_are_left_alone(
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
    # its failure email went out (one that did not is redriven: see below)
    assert repo.claim_notification(failed, "failed", alice.email)
    assert repo.mark_notification_sent(failed, "failed")
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


def test_an_event_the_broker_refuses_for_good_does_not_hold_up_the_later_invoices(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refusal of one event itself (a 4xx about it: EventRefused) comes again at every run,
    and the oldest invoice is tried first at every run: stopping there, as for an outage,
    would never redrive the invoices after it. The command goes on, names the refused one
    and ends with exit status 1."""
    refused_id, _ = stalled_with_every_file(upload_client, steps, alice, sink)
    later_id, seen = stalled_with_every_file(upload_client, steps, alice, sink)
    age(refused_id, 90)  # the oldest: tried first
    sink.refused[naming.redrive_event_id(refused_id, "rendered")] = 400
    status, out, err = redrive(capsys)
    assert status == 1
    first, second = out.splitlines()
    assert first.startswith(f"{refused_id}\t") and "NOT published" in first and "400" in first
    assert second.startswith(f"{later_id}\t") and "\tpublished every file stored" in second
    assert "refused 1 event(s) for good" in err and "run the command again" not in err
    (published,) = sink.events[seen:]
    assert published["id"] == naming.redrive_event_id(later_id, "rendered")
    pump(sink, steps, seen)
    assert invoice_record(get_context().repo, later_id).status == "ready"
    assert invoice_record(get_context().repo, refused_id).status == "received"
    assert outbox_emails(env) == [f"{later_id}-ready.eml"]


def test_a_run_with_a_refusal_and_then_an_outage_counts_both(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused_id, _ = stalled_with_every_file(upload_client, steps, alice, sink)
    down_id, _ = stalled_with_every_file(upload_client, steps, alice, sink)
    age(refused_id, 90)  # the oldest: tried first
    sink.refused[naming.redrive_event_id(refused_id, "rendered")] = 400
    sink.refused[naming.redrive_event_id(down_id, "rendered")] = 503
    status, out, err = redrive(capsys)
    assert status == 1
    assert [line.split("\t")[0] for line in out.splitlines()] == [refused_id, down_id]
    assert "0 invoice(s) redriven, 1 refused for good (the lines NOT published)" in err
    assert "run the command again" in err


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


def test_a_redrive_whose_delivery_was_parked_is_delivered_by_the_next_run(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Through the local runtime's durable broker (its queue in the invoices' database, as
    ``invoiceflow dev`` runs it): the first run's event fails at notify and at the dead-letter
    sink (both down), so the broker parks it; the next run publishes the same event id, which
    is delivered and makes the invoice ready. Before, the broker answered the second run 202
    and never delivered its event: the command reported success and the invoice stayed
    ``received``."""
    invoice_id, _ = stalled_with_every_file(upload_client, steps, alice, sink)
    ctx = get_context()
    down = closed_port_url()
    urls = {"notify": down, "dead-letter": down}
    manifests = write_manifests(
        tmp_path / "knative", trigger_yaml("notify-rendered", INVOICE_RENDERED, "notify", retry=0)
    )
    broker = Broker(load_triggers(manifests), urls.__getitem__, store=ctx.repo).start()
    try:
        with (
            serve_wsgi(broker.wsgi_app) as ingress,
            serve_wsgi(steps["notify"].application) as notify,
        ):
            monkeypatch.setattr(ctx, "emitter", Emitter(ingress))
            assert redrive(capsys)[0] == 0
            assert broker.wait_idle(15)
            (parked,) = ctx.repo.queued_deliveries(broker.name, state="parked")
            assert parked.last_error == "dead-letter-failed"

            urls["notify"] = notify  # the outage is over
            assert redrive(capsys)[0] == 0
            assert broker.wait_idle(15)
    finally:
        broker.stop()
    assert invoice_record(ctx.repo, invoice_id).status == "ready"
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert ctx.repo.queued_deliveries(broker.name, state="parked") == []


# ------------------------------------------------------------------ emails never sent


#: the deliveries of one event to notify before the broker gives up: the first and the
#: Trigger's 5 retries (knative/50-triggers.yaml)
NOTIFY_ATTEMPTS = 6

Outage = Callable[[pytest.FixtureRequest, pytest.MonkeyPatch], Callable[[], None]]


def _sendgrid_refusing(
    request: pytest.FixtureRequest, mp: pytest.MonkeyPatch
) -> Callable[[], None]:
    """SendGrid answers 503 to every send (the claim is released each time)."""
    fake: FakeSendGrid = request.getfixturevalue("sendgrid")
    fake.script = [503] * NOTIFY_ATTEMPTS
    return lambda: None


def _sendgrid_unreachable(
    request: pytest.FixtureRequest, mp: pytest.MonkeyPatch
) -> Callable[[], None]:
    """Nothing listens at SendGrid's address (the claim is released each time)."""
    request.getfixturevalue("sendgrid")
    ctx = get_context()
    up = ctx.settings
    mp.setattr(ctx, "settings", dataclasses.replace(up, sendgrid_host=closed_port_url()))
    return lambda: mp.setattr(ctx, "settings", up)


def _database_down(method: str) -> Outage:
    """The repository's ``method`` raises Unavailable (what it raises with the database down)
    until the outage ends; the emails go to the .eml outbox."""

    def start(request: pytest.FixtureRequest, mp: pytest.MonkeyPatch) -> Callable[[], None]:
        import invoiceflow.steps

        mp.setattr(invoiceflow.steps, "MARK_SENT_RETRY_FOR", 0.0)
        repo = get_context().repo
        real = getattr(repo, method)
        down = [True]

        def call(*args: Any, **kwargs: Any) -> Any:
            if down:
                raise Unavailable("cannot connect to the database: server closed the connection")
            return real(*args, **kwargs)

        mp.setattr(repo, method, call)
        return lambda: down.clear()

    return start


#: how notify fails on every attempt, and the state the email's claim is left in
OUTAGES: dict[str, tuple[Outage, str | None]] = {
    "sendgrid 5xx": (_sendgrid_refusing, "released"),
    "sendgrid unreachable": (_sendgrid_unreachable, "released"),
    # the email went out (the .eml is written) but is never marked sent: the claim stays
    "database down at mark": (_database_down("mark_notification_sent"), "claimed"),
    # nothing claimed at all: no notification row
    "database down at claim": (_database_down("claim_notification_for"), None),
}


def emails_sent(request: pytest.FixtureRequest, env: dict[str, str]) -> list[str]:
    """The keys of the emails that went out: the SendGrid requests it accepted, or the .eml
    files of the outbox."""
    if "sendgrid" in request.fixturenames:
        fake: FakeSendGrid = request.getfixturevalue("sendgrid")
        return [r["json"]["custom_args"]["invoiceflow_key"] for r in fake.delivered]
    return [name.removesuffix(".eml") for name in outbox_emails(env)]


def notify_gives_up(steps: dict[str, Any], event: Any, caplog: pytest.LogCaptureFixture) -> Any:
    """notify fails ``event`` on every attempt (a 5xx, or a 409 while its own claim is
    fresh) and the broker dead-letters it with notify's last answer; dead-letter's answer."""
    for _ in range(NOTIFY_ATTEMPTS):
        r = deliver(steps["notify"], event)
        assert r.status_code in (409, 503), r.get_data(as_text=True)
    url = "http://notify.invoiceflow.svc.cluster.local"
    return dead_lettered(steps, event, error_extensions(url, r.status_code, r.get_data()), caplog)


def never_ready_email(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
) -> tuple[str, int]:
    """An invoice notify made ready but whose ready email it never sent: the complete
    ``rendered`` event dead-lettered."""
    invoice_id = upload(upload_client, alice)
    seen = pump(sink, steps, drop=ready_rendered_dropped)
    (complete,) = [e for e in sink.of_type("rendered.v1") if e["allrendered"] == "true"]
    assert notify_gives_up(steps, complete, caplog)["failed"] is False
    return invoice_id, pump(sink, steps, seen)


def never_failure_email(
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
) -> tuple[str, int]:
    """An invoice dead-letter failed (render-pdf never answered) whose failure email notify
    never sent: the ``failed`` event dead-lettered too."""
    invoice_id = upload(upload_client, alice)
    seen = pump(sink, steps, drop=lambda event, step: step == "render-pdf")
    (uploaded,) = sink.of_type("uploaded.v1")
    extensions = GAVE_UP["no answer"]("http://render-pdf.invoiceflow.svc.cluster.local")
    assert dead_lettered(steps, uploaded, extensions, caplog)["failed"] is True
    (failed,) = sink.events[seen:]
    assert failed["type"] == INVOICE_FAILED
    assert notify_gives_up(steps, failed, caplog) == {"logged": True}
    return invoice_id, len(sink.events)


STALLED_EMAILS = {"ready": never_ready_email, "failed": never_failure_email}
#: what the redrive lists for each
DESCRIBED = {
    "ready": "invoice.rendered to notify (sends the ready email)",
    "failed": "invoice.failed to notify (sends the failure email)",
}


@pytest.mark.parametrize("kind", sorted(STALLED_EMAILS))
@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_an_email_notify_gave_up_on_is_sent_once_by_the_redrive(
    outage: str,
    kind: NotificationKind,
    request: pytest.FixtureRequest,
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The email provider (or the database) was down for notify's whole retry window, so the
    broker dead-lettered the event that sends the invoice's email, which dead-letter only
    logs: the invoice is ``ready`` (or ``failed``) and its email was never sent. The redrive
    took only ``received`` invoices, so nothing ever sent it. Now it lists the invoice and
    publishes the event that makes notify send that email: exactly one, and running it again
    (or the broker repeating its event) sends nothing more."""
    start, left = OUTAGES[outage]
    end = start(request, monkeypatch)
    invoice_id, seen = STALLED_EMAILS[kind](upload_client, steps, alice, sink, caplog)
    end()
    repo = get_context().repo
    assert invoice_record(repo, invoice_id).status == kind
    email = repo.get_notification(invoice_id, kind)
    assert (email.state if email else None) == left
    key = f"{invoice_id}-{kind}"
    before = emails_sent(request, env)  # the outbox file of a send never marked sent
    assert before == ([key] if left == "claimed" else [])
    assert sink.of_type("notified.v1") == []

    age(invoice_id)
    status, out, err = redrive(capsys, "--dry-run")
    assert status == 0, err
    assert out.startswith(f"{invoice_id}\t") and f"would publish {kind}," in out
    assert DESCRIBED[kind] in out and len(sink.events) == seen

    status, out, err = redrive(capsys)
    assert status == 0, err
    (line,) = out.splitlines()
    assert line.startswith(f"{invoice_id}\t") and DESCRIBED[kind] in line
    assert "1 stalled invoice(s) redriven" in err
    (published,) = sink.events[seen:]
    assert published["source"] == "/invoiceflow/redrive"
    pump(sink, steps, seen)

    assert invoice_record(repo, invoice_id).status == kind
    assert notification_record(repo, invoice_id, kind).state == "sent"
    assert emails_sent(request, env) == [key]
    (notified,) = sink.of_type("notified.v1")
    assert notified.data["kind"] == kind

    # nothing left to do; the broker repeating the redrive's event is a duplicate
    status, out, err = redrive(capsys, "--older-than", "1")
    assert (status, out) == (0, "") and "0 stalled invoice(s) redriven" in err
    assert deliver(steps["notify"], published).get_json() == {"duplicate": True}
    assert emails_sent(request, env) == [key]
    assert len(sink.of_type("notified.v1")) == 1


def test_only_emails_neither_sent_nor_claimed_within_the_window_are_found(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """The query behind the redrive, for ready and failed invoices: an email counts as not
    sent without a row, or with one released or claimed before the cutoff; a young invoice,
    a sent email and a claim taken within the window (its send may be under way) are left
    alone, and a ready invoice is judged by its ready email, not by an earlier failure
    email."""
    repo = get_context().repo
    ids = {
        name: upload(upload_client, alice)
        for name in (
            "ready, no row",
            "ready, released",
            "ready, claimed long ago",
            "ready, claimed just now",
            "ready, sent",
            "ready, failure email unsent, ready email sent",
            "ready, young",
            "failed, no row",
            "failed, released",
            "failed, sent",
        )
    }
    long_ago = datetime.now(UTC) - timedelta(minutes=60)
    with repo._transaction() as tx:  # type: ignore[attr-defined]
        for name, invoice_id in ids.items():
            status = name.split(",")[0]
            then = datetime.now(UTC) if "young" in name else long_ago
            tx.execute(
                "UPDATE invoices SET status = ?, updated_at = ? WHERE id = ?",
                (status, then, invoice_id),
            )
    for name, invoice_id in ids.items():
        kind: NotificationKind = "ready" if name.startswith("ready") else "failed"
        if "failure email unsent" in name:
            assert repo.claim_notification(invoice_id, "failed", alice.email)
        if "no row" in name or "young" in name:
            continue
        assert repo.claim_notification(invoice_id, kind, alice.email)
        if "released" in name:
            assert repo.release_notification(invoice_id, kind)
        elif "sent" in name:
            assert repo.mark_notification_sent(invoice_id, kind)
        if "just now" not in name:
            with repo._transaction() as tx:  # type: ignore[attr-defined]
                tx.execute(
                    "UPDATE notifications SET claimed_at = ? WHERE invoice_id = ?",
                    (long_ago, invoice_id),
                )

    found = repo.stalled_invoices(datetime.now(UTC) - timedelta(minutes=30))
    names = {invoice_id: name for name, invoice_id in ids.items()}
    assert sorted(names[f.invoice.id] for f in found) == [
        "failed, no row",
        "failed, released",
        "ready, claimed long ago",
        "ready, no row",
        "ready, released",
    ]
    email_state = {names[f.invoice.id]: f.email.state if f.email else None for f in found}
    assert email_state == {
        "failed, no row": None,
        "failed, released": "released",
        "ready, claimed long ago": "claimed",
        "ready, no row": None,
        "ready, released": "released",
    }
    assert all(f.unsent_email == names[f.invoice.id].split(",")[0] for f in found)


def test_a_redrive_event_notify_set_aside_for_another_claim_does_not_block_the_next_run(
    request: pytest.FixtureRequest,
    upload_client: Any,
    steps: dict[str, Any],
    alice: Person,
    sink: Sink,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """notify answers a redrive event that finds the email freshly claimed by another event's
    delivery 200 ``sending_elsewhere`` and records it processed. When that delivery then
    fails too, the next run publishes under a new id (the claim changed), which notify takes:
    with one id for good, it would be dropped as a repeat and the email never sent."""
    end = _database_down("claim_notification_for")(request, monkeypatch)
    invoice_id, seen = never_ready_email(upload_client, steps, alice, sink, caplog)
    end()
    age(invoice_id)
    assert redrive(capsys)[0] == 0
    (first,) = sink.events[seen:]
    seen += 1

    repo = get_context().repo
    claim = repo.claim_notification_for(
        invoice_id, "ready", alice.email, '["/elsewhere","1"]', reclaim_after=timedelta(0)
    )
    assert claim.claimed
    r = deliver(steps["notify"], first)
    assert r.status_code == 200 and r.get_json()["sending_elsewhere"] is True
    assert repo.release_notification(invoice_id, "ready")  # that delivery's send failed
    assert outbox_emails(env) == []

    age(invoice_id)
    assert redrive(capsys)[0] == 0
    (second,) = sink.events[seen:]
    pump(sink, steps, seen)
    assert outbox_emails(env) == [f"{invoice_id}-ready.eml"]
    assert notification_record(repo, invoice_id, "ready").state == "sent"
    assert second["id"] != first["id"]
