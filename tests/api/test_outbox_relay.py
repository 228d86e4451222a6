"""The outbox relay against a broker that refuses one event for good (a 4xx about the event):
that row is set aside, logged at ERROR, and the later rows are sent; an outage (5xx) still
stops the relay. The operator lists and retries set-aside rows with ``invoiceflow outbox``.

The broker is the Sink (an HTTP server on 127.0.0.1) that refuses the events a test names."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invoiceflow import cli
from invoiceflow.context import get_context
from invoiceflow.outbox import relay
from invoiceflow.steps import PROCESSED_KEPT
from invoiceflow.stores import OutboxEvent
from invoiceflow.stores.sql import PRUNE_BATCH, SQLRepository
from support.api import REFUSAL_BODY, Person, Sink, example


def upload_while_down(upload_client: Any, person: Person, sink: Sink, *names: str) -> None:
    """Upload each example while the broker is down: each event waits in the outbox."""
    status = sink.status
    sink.status = 503
    for name in names:
        r = upload_client.post(
            "/upload", headers=person.auth, data=example(name), content_type="application/json"
        )
        assert r.status_code == 202, r.get_data(as_text=True)
    sink.status = status


def pending() -> list[OutboxEvent]:
    return get_context().repo.pending_outbox_events()


def test_a_row_the_broker_refuses_for_good_is_set_aside_and_the_later_rows_are_sent(
    upload_client: Any, alice: Person, sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    upload_while_down(upload_client, alice, sink, "minimal.json", "jpy-no-decimals.json")
    poison, later = pending()
    sink.refused[poison.event_id] = 400  # the broker never takes this event
    logs.clear()
    ctx = get_context()
    assert relay(ctx) == 1
    assert [e["id"] for e in sink.of_type("uploaded.v1")] == [later.event_id]
    assert pending() == []
    (aside,) = ctx.repo.set_aside_outbox_events()
    assert aside.event_id == poison.event_id and aside.attempts == 2
    assert aside.last_error is not None and "400" in aside.last_error
    errors = [r for r in logs.records if r.name == "invoiceflow.outbox" and r.levelname == "ERROR"]
    (line,) = [r.getMessage() for r in errors]
    assert poison.event_id in line and "400" in line
    assert REFUSAL_BODY not in line  # the broker's words stay out of the relay's line
    assert relay(ctx) == 0  # nothing left to send: the set-aside row is not tried again
    assert len(sink.events) == 1


def test_a_transient_failure_still_stops_the_relay(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    upload_while_down(upload_client, alice, sink, "minimal.json", "jpy-no-decimals.json")
    first, second = pending()
    sink.refused[first.event_id] = 503  # this one only, but the relay cannot know that
    assert relay(get_context()) == 0
    assert sink.events == []
    assert [e.event_id for e in pending()] == [first.event_id, second.event_id]
    assert get_context().repo.set_aside_outbox_events() == []


def outbox(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["outbox", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_operator_lists_set_aside_rows_and_retries_them(
    upload_client: Any, alice: Person, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    upload_while_down(upload_client, alice, sink, "minimal.json", "jpy-no-decimals.json")
    first, second = pending()
    sink.refused = {first.event_id: 413, second.event_id: 415}
    capsys.readouterr()
    status, out, err = outbox(capsys, "relay")
    assert status == 1  # something needs the operator
    assert out.strip() == (
        "relayed 0 event(s); some are set aside (invoiceflow outbox set-aside lists them)"
    )
    status, out, err = outbox(capsys, "set-aside")
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{first.id}\t{first.event_id}\tio.invoiceflow.invoice.uploaded")
    assert first.subject is not None and first.subject in lines[0] and "HTTP 413" in lines[0]
    assert "HTTP 415" in lines[1]
    assert "2 event(s) set aside" in err

    sink.refused = {second.event_id: 415}  # the broker takes the first now (fixed there)
    status, out, err = outbox(capsys, "retry", str(first.id))
    assert status == 0 and "1 event(s) back in the outbox" in out
    status, out, err = outbox(capsys, "relay")
    assert status == 1 and out.startswith("relayed 1 event(s); some are set aside")
    assert [e["id"] for e in sink.of_type("uploaded.v1")] == [first.event_id]

    sink.refused = {}
    status, out, err = outbox(capsys, "retry", "--all")
    assert status == 0 and "1 event(s) back in the outbox" in out
    status, out, err = outbox(capsys, "relay")
    assert status == 0 and out.strip() == "relayed 1 event(s)"
    status, out, err = outbox(capsys, "set-aside")
    assert status == 0 and out == "" and "0 event(s) set aside" in err

    status, out, err = outbox(capsys, "retry")
    assert status == 2 and "name the rows' ids or --all" in err
    status, out, err = outbox(capsys, "retry", "999999")
    assert status == 1 and "0 event(s) back in the outbox" in out
    assert "1 of the ids named are not set-aside events" in err
    status, out, err = outbox(capsys, "retry", str(first.id))  # sent by now
    assert status == 1 and "1 of the ids named are not set-aside events" in err


def test_the_relay_log_of_a_refusal_is_an_error_only_for_the_refused_row(
    upload_client: Any, alice: Person, sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    """The broker's own line (invoiceflow.events) stays a WARNING; the outbox says ERROR once
    per set-aside row, at INFO for the relay an outage stopped."""
    upload_while_down(upload_client, alice, sink, "minimal.json")
    (row,) = pending()
    sink.refused[row.event_id] = 422
    logs.clear()
    relay(get_context())
    levels = [(r.name, r.levelno) for r in logs.records if r.levelno >= logging.WARNING]
    assert levels == [
        ("invoiceflow.events", logging.WARNING),
        ("invoiceflow.outbox", logging.ERROR),
    ]


def age(table: str, column: str, where: str, days: float, *params: Any) -> None:
    """Make the rows of ``table`` that ``where`` picks ``days`` old in ``column``."""
    repo = get_context().repo
    assert isinstance(repo, SQLRepository)
    with repo._transaction() as tx:
        tx.execute(
            f"UPDATE {table} SET {column} = ? WHERE {where}",  # noqa: S608 (the test's own)
            (datetime.now(UTC) - timedelta(days=days), *params),
        )


def test_the_operator_prunes_old_sent_events_and_old_dedupe_records(
    upload_client: Any, alice: Person, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retention: ``invoiceflow outbox prune`` deletes the sent rows older than --older-than
    days (default 30), never a pending or set-aside row however old; and the steps' dedupe
    records older than that, but never younger than steps.PROCESSED_KEPT (7 days)."""
    upload_while_down(
        upload_client, alice, sink, "minimal.json", "jpy-no-decimals.json", "eur-two-rates.json"
    )
    aside, old_sent, new_sent = pending()
    sink.refused[aside.event_id] = 400
    ctx = get_context()
    assert relay(ctx) == 2
    upload_while_down(upload_client, alice, sink, "kwd-three-decimals.json")
    (waiting,) = pending()
    age("outbox", "sent_at", "id = ?", 40, old_sent.id)
    age("outbox", "created_at", "id IN (?, ?, ?)", 60, aside.id, old_sent.id, waiting.id)
    age("outbox", "set_aside_at", "id = ?", 60, aside.id)
    records = {"e-40": 40, "e-10": 10, "e-3": 3, "e-0": 0}
    for event_id, days in records.items():
        assert ctx.repo.mark_processed("notify", "/upload", event_id)
        age("processed_events", "processed_at", "event_id = ?", days, event_id)

    def left() -> tuple[list[int], list[str]]:
        kept = [r.id for r in (aside, old_sent, new_sent, waiting) if outbox_has(r.id)]
        return kept, [e for e in records if ctx.repo.is_processed("notify", "/upload", e)]

    capsys.readouterr()
    status, out, err = outbox(capsys, "prune", "--dry-run")
    assert (status, err) == (0, "")
    assert out.strip() == (
        "would delete 1 sent outbox event(s) older than 30 day(s) and 1 processed event "
        "record(s) older than 30 day(s) (--dry-run: nothing was deleted)"
    )
    assert left() == ([aside.id, old_sent.id, new_sent.id, waiting.id], list(records))
    status, out, err = outbox(capsys, "prune")
    assert status == 0 and out.strip() == (
        "deleted 1 sent outbox event(s) older than 30 day(s) and 1 processed event "
        "record(s) older than 30 day(s)"
    )
    assert left() == ([aside.id, new_sent.id, waiting.id], ["e-10", "e-3", "e-0"])
    # the dedupe records are kept 7 days at least, whatever --older-than says
    status, out, err = outbox(capsys, "prune", "--older-than", "1")
    assert status == 0 and out.strip() == (
        "deleted 0 sent outbox event(s) older than 1 day(s) and 1 processed event "
        "record(s) older than 7 day(s)"
    )
    assert left() == ([aside.id, new_sent.id, waiting.id], ["e-3", "e-0"])
    assert [e.id for e in ctx.repo.set_aside_outbox_events()] == [aside.id]
    assert [e.id for e in pending()] == [waiting.id]

    with pytest.raises(SystemExit) as exited:
        outbox(capsys, "prune", "--older-than", "0")
    assert exited.value.code == 2
    assert "--older-than must be at least 1, not 0" in capsys.readouterr().err
    # the help states the batch and the least age the code uses
    with pytest.raises(SystemExit):
        outbox(capsys, "prune", "--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"windows of {PRUNE_BATCH} rows" in help_text
    assert f"younger than {PROCESSED_KEPT.days} days" in help_text


def outbox_has(row_id: int) -> bool:
    repo = get_context().repo
    assert isinstance(repo, SQLRepository)
    with repo._transaction(write=False) as tx:
        return tx.execute("SELECT 1 AS hit FROM outbox WHERE id = ?", (row_id,)).one() is not None
