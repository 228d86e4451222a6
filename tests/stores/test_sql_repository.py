"""Contract tests of the SQL repository: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from invoiceflow import accounts
from invoiceflow.errors import BadRequest, IdempotencyConflict, Unavailable
from invoiceflow.stores import (
    NewInvoiceRecord,
    NewOutboxEvent,
    OutboxEvent,
    Repository,
    migrate,
    open_repository,
)
from invoiceflow.stores.postgres import PostgresRepository
from invoiceflow.stores.sql import SQLRepository, load_migrations
from invoiceflow.stores.sqlite import SQLiteRepository
from support.records import invoice_record

T = TypeVar("T")
FORMATS = ("pdf", "xlsx")
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
#: every migration version, in order (the same for both dialects)
VERSIONS = [m.version for m in load_migrations("sqlite")]


class TickingClock:
    """Every reading is 1 ms after the previous one: a deterministic, strictly increasing
    clock (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticks = 0

    def __call__(self) -> datetime:
        with self._lock:
            self._ticks += 1
            return START + timedelta(milliseconds=self._ticks)


@pytest.fixture
def repo_clock() -> TickingClock:
    """Each read a millisecond later: the order of writes is the order of their times."""
    return TickingClock()


def concurrently(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run fn(0..n-1) in n threads released together; re-raise the first failure."""
    barrier = threading.Barrier(n)

    def call(i: int) -> T:
        barrier.wait(timeout=10)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n), timeout=30))


def new_user(repo: Repository, email: str | None = None) -> str:
    user = repo.add_user(email or f"{uuid.uuid4().hex[:8]}@example.com", "hash")
    assert user is not None
    return user.id


def new_invoice(
    owner_id: str, *, key: str | None = None, sha: str | None = None, number: str | None = None
) -> NewInvoiceRecord:
    """An invoice to accept; its number is unique unless given (numbers are unique per owner:
    tests/stores/test_numbering.py)."""
    invoice_id = str(uuid.uuid4())
    return NewInvoiceRecord(
        id=invoice_id,
        owner_id=owner_id,
        number=number or f"INV-{invoice_id}",
        source="http",
        raw_file_id=f"{invoice_id}-raw",
        formats=FORMATS,
        idempotency_key=key,
        request_sha256=sha,
    )


def event(name: str = "uploaded", **data: Any) -> NewOutboxEvent:
    return NewOutboxEvent(
        event_id=str(uuid.uuid4()),
        type=f"io.invoiceflow.invoice.{name}.v1",
        source="/upload",
        subject="invoice",
        data=data or {"n": 1},
    )


# -- migrations -------------------------------------------------------------------------------


def test_migrate_twice_is_a_no_op(repo: Repository, database_url: str) -> None:
    assert repo.migrate() == []
    assert migrate(database_url) == []


def test_first_migrate_applies_everything_once(database_url: str) -> None:
    assert migrate(database_url) == VERSIONS
    assert migrate(database_url) == []


def test_concurrent_migrators_apply_each_migration_once(database_url: str) -> None:
    results = concurrently(4, lambda _: migrate(database_url))
    assert sorted(results) == [[], [], [], VERSIONS]
    with open_repository(database_url) as repo:
        assert repo.migrate() == []  # every migration is applied
        assert repo.add_user("after@example.com", "h") is not None


# -- users ------------------------------------------------------------------------------------


def test_users(repo: Repository) -> None:
    user = repo.add_user("  Alice@Example.COM ", "argon-hash")
    assert user is not None
    assert user.email == "alice@example.com"
    assert "argon-hash" not in repr(user)
    assert repo.add_user("ALICE@example.com", "other") is None  # unique case-insensitively
    assert repo.get_user_by_email("alice@EXAMPLE.com") == user
    assert repo.get_user(user.id) == user
    assert repo.get_user(str(uuid.uuid4())) is None
    assert repo.get_user_by_email("nobody@example.com") is None
    assert repo.set_user_disabled(user.id, True) is True
    assert repo.get_user(user.id).disabled is True  # type: ignore[union-attr]
    assert repo.set_user_disabled(str(uuid.uuid4()), True) is False
    bob = repo.add_user("bob@example.com", "h", disabled=False)
    assert [u.email for u in repo.list_users()] == ["alice@example.com", "bob@example.com"]
    assert bob is not None and not bob.disabled


def test_concurrent_signups_with_one_email_create_one_user(repo: Repository) -> None:
    results = concurrently(6, lambda i: repo.add_user(f"Same@Example.com{' ' * i}", f"h{i}"))
    assert sum(r is not None for r in results) == 1


# -- invoices + outbox ------------------------------------------------------------------------


def test_accept_stores_invoice_and_events_together(repo: Repository) -> None:
    owner = new_user(repo)
    new = new_invoice(owner, key="k-1", sha="a" * 64)
    accepted = repo.accept_invoice(new, [event("uploaded"), event("requested")])
    assert accepted.created
    invoice = accepted.invoice
    assert (invoice.id, invoice.status, invoice.source, invoice.formats) == (
        new.id,
        "received",
        "http",
        FORMATS,
    )
    assert invoice.raw_file_id == new.raw_file_id and invoice.error is None
    assert repo.get_invoice(new.id) == invoice
    pending = repo.pending_outbox_events()
    assert [e.type for e in pending] == [
        "io.invoiceflow.invoice.uploaded.v1",
        "io.invoiceflow.invoice.requested.v1",
    ]


def test_failure_after_invoice_insert_persists_nothing(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = new_user(repo)
    new = new_invoice(owner, key="atomic")
    calls = []

    def broken_outbox(tx: Any, events: Any) -> Any:
        # the invoice row is already inserted in this transaction when this runs
        row = tx.execute("SELECT count(*) AS n FROM invoices WHERE id = ?", (new.id,)).one()
        calls.append(row["n"])
        raise RuntimeError("broker table exploded")

    monkeypatch.setattr(repo, "_insert_outbox", broken_outbox)
    with pytest.raises(RuntimeError, match="exploded"):
        repo.accept_invoice(new, [event()])
    assert calls == [1]
    monkeypatch.undo()
    assert repo.get_invoice(new.id) is None
    assert repo.find_invoice_by_idempotency_key(owner, "atomic") is None
    assert repo.pending_outbox_events() == []
    # and the same request goes through afterwards
    assert repo.accept_invoice(new, [event()]).created
    assert len(repo.pending_outbox_events()) == 1


def test_event_that_cannot_be_stored_rolls_back_the_invoice(repo: Repository) -> None:
    owner = new_user(repo)
    new = new_invoice(owner)
    good = event()
    bad = NewOutboxEvent(event_id="x", type="t", source="/s", data={"oops": object()})
    with pytest.raises(TypeError):
        repo.accept_invoice(new, [good, bad])
    assert repo.get_invoice(new.id) is None
    assert repo.list_invoices(owner).items == ()
    assert repo.pending_outbox_events() == []


def test_idempotency_key(repo: Repository) -> None:
    owner, other = new_user(repo), new_user(repo)
    first = repo.accept_invoice(new_invoice(owner, key="key", sha="1" * 64), [event()])
    replay = repo.accept_invoice(new_invoice(owner, key="key", sha="1" * 64), [event()])
    assert first.created and not replay.created
    assert replay.invoice == first.invoice
    assert len(repo.pending_outbox_events()) == 1  # the replay enqueued nothing
    with pytest.raises(IdempotencyConflict):
        repo.accept_invoice(new_invoice(owner, key="key", sha="2" * 64))
    assert repo.find_invoice_by_idempotency_key(owner, "key") == first.invoice
    assert repo.find_invoice_by_idempotency_key(other, "key") is None
    # keys are per owner, and invoices without a key never collide
    assert repo.accept_invoice(new_invoice(other, key="key")).created
    assert repo.accept_invoice(new_invoice(owner)).created
    assert repo.accept_invoice(new_invoice(owner)).created


def test_concurrent_requests_with_one_idempotency_key_create_one_invoice(repo: Repository) -> None:
    owner = new_user(repo)
    results = concurrently(
        6, lambda _: repo.accept_invoice(new_invoice(owner, key="race", sha="f" * 64), [event()])
    )
    assert sum(r.created for r in results) == 1
    assert len({r.invoice.id for r in results}) == 1
    assert len(repo.pending_outbox_events()) == 1


def test_get_invoice_hides_other_owners(repo: Repository) -> None:
    owner, other = new_user(repo), new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    assert repo.get_invoice(invoice.id, owner_id=owner) == invoice
    assert repo.get_invoice(invoice.id, owner_id=other) is None
    assert repo.get_invoice("not-a-uuid") is None


def test_pagination_newest_first(repo: Repository) -> None:
    owner, other = new_user(repo), new_user(repo)
    ids = [repo.accept_invoice(new_invoice(owner, number=f"N{i}")).invoice.id for i in range(5)]
    repo.accept_invoice(new_invoice(other))
    pages, cursor = [], None
    while True:
        page = repo.list_invoices(owner, limit=2, cursor=cursor)
        pages.append([i.id for i in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[0:1]]
    assert [i.id for i in repo.list_invoices(owner).items] == ids[::-1]
    with pytest.raises(BadRequest):
        repo.list_invoices(owner, cursor="not a cursor!")


def test_pagination_with_equal_timestamps_neither_skips_nor_repeats(
    make_repo: Callable[..., Repository],
) -> None:
    repo = make_repo(clock=lambda: START)
    owner = new_user(repo)
    ids = {repo.accept_invoice(new_invoice(owner)).invoice.id for _ in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = repo.list_invoices(owner, limit=2, cursor=cursor)
        seen += [i.id for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert seen == sorted(ids, reverse=True)


def test_mark_failed(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    assert repo.mark_invoice_failed(invoice.id, "font missing", [event("failed")]) is True
    assert repo.mark_invoice_failed(invoice.id, "again", [event("failed")]) is False
    stored = repo.get_invoice(invoice.id)
    assert stored is not None and (stored.status, stored.error) == ("failed", "font missing")
    assert stored.updated_at > stored.created_at
    assert len(repo.pending_outbox_events()) == 1


def test_mark_failed_unless_complete_counts_the_files_committed_when_it_runs(
    repo: Repository,
) -> None:
    """dead-letter's guard: an invoice whose last file was committed after the caller looked
    is not failed (the count is in the UPDATE itself); one still missing a file is."""
    owner = new_user(repo)
    complete = repo.accept_invoice(new_invoice(owner)).invoice
    repo.record_artifact(complete.id, "pdf", f"{complete.id}-pdf", 10, "a" * 64)
    repo.record_artifact(complete.id, "xlsx", f"{complete.id}-xlsx", 10, "b" * 64)
    failed = [event("failed")]
    assert repo.mark_invoice_failed(complete.id, "x", failed, unless_complete=FORMATS) is False
    assert invoice_record(repo, complete.id).status == "received"
    assert repo.pending_outbox_events() == []
    partial = repo.accept_invoice(new_invoice(owner)).invoice
    repo.record_artifact(partial.id, "pdf", f"{partial.id}-pdf", 10, "c" * 64)
    assert repo.mark_invoice_failed(partial.id, "x", failed, unless_complete=FORMATS) is True
    assert invoice_record(repo, partial.id).status == "failed"
    assert len(repo.pending_outbox_events()) == 1


def test_mark_ready_only_when_every_format_exists(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    assert repo.mark_ready_if_complete(invoice.id, FORMATS) is False
    repo.record_artifact(invoice.id, "pdf", f"{invoice.id}-pdf", 10, "a" * 64)
    assert repo.mark_ready_if_complete(invoice.id, FORMATS) is False
    assert invoice_record(repo, invoice.id).status == "received"
    repo.record_artifact(invoice.id, "xlsx", f"{invoice.id}-xlsx", 10, "b" * 64)
    assert repo.mark_ready_if_complete(invoice.id, FORMATS, [event("rendered")]) is True
    assert repo.mark_ready_if_complete(invoice.id, FORMATS, [event("rendered")]) is False
    assert invoice_record(repo, invoice.id).status == "ready"
    assert len(repo.pending_outbox_events()) == 1
    # a failed invoice cannot become failed again once ready
    assert repo.mark_invoice_failed(invoice.id, "late") is False


def test_mark_ready_concurrently_returns_true_exactly_once(repo: Repository) -> None:
    owner = new_user(repo)
    for _ in range(5):
        invoice = repo.accept_invoice(new_invoice(owner)).invoice
        for fmt in FORMATS:
            repo.record_artifact(invoice.id, fmt, f"{invoice.id}-{fmt}", 1, "c" * 64)
        invoice_id = invoice.id

        def mark_ready(_: int, invoice_id: str = invoice_id) -> bool:
            return repo.mark_ready_if_complete(invoice_id, FORMATS, [event("ready")])

        results = concurrently(8, mark_ready)
        assert results.count(True) == 1
    assert len(repo.pending_outbox_events()) == 5


def test_renderers_finishing_together_mark_ready_once(repo: Repository) -> None:
    """Each renderer records its own format and then asks; exactly one of them wins."""
    owner = new_user(repo)
    for _ in range(5):
        invoice = repo.accept_invoice(new_invoice(owner)).invoice

        def render(i: int, invoice_id: str = invoice.id) -> bool:
            fmt = FORMATS[i % 2]
            repo.record_artifact(invoice_id, fmt, f"{invoice_id}-{fmt}", 1, "d" * 64)
            return repo.mark_ready_if_complete(invoice_id, FORMATS)

        assert concurrently(4, render).count(True) == 1


def test_mark_ready_and_get_reads_the_invoice_and_its_artifacts_in_one_call(
    repo: Repository,
) -> None:
    assert repo.mark_ready_and_get("no-such-invoice") is None
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    state = repo.mark_ready_and_get(invoice.id)
    assert state is not None and state.invoice == invoice
    assert (dict(state.artifacts), state.missing, state.became_ready) == (
        {},
        ["pdf", "xlsx"],
        False,
    )
    pdf = repo.record_artifact(invoice.id, "pdf", f"{invoice.id}-pdf", 10, "a" * 64)
    state = repo.mark_ready_and_get(invoice.id)
    assert state is not None and state.invoice.status == "received"
    assert (dict(state.artifacts), state.missing) == ({"pdf": pdf}, ["xlsx"])
    xlsx = repo.record_artifact(invoice.id, "xlsx", f"{invoice.id}-xlsx", 10, "b" * 64)
    state = repo.mark_ready_and_get(invoice.id)
    assert state is not None and state.became_ready is True and state.missing == []
    assert dict(state.artifacts) == {"pdf": pdf, "xlsx": xlsx}
    stored = invoice_record(repo, invoice.id)
    assert (stored.status, stored.error) == ("ready", None)
    assert state.invoice == stored  # the invoice as stored, not as it was read
    again = repo.mark_ready_and_get(invoice.id)
    assert again is not None and again.became_ready is False and again.invoice == stored
    # the same as mark_ready_if_complete: nothing left for it to do
    assert repo.mark_ready_if_complete(invoice.id, FORMATS) is False


def test_mark_ready_and_get_makes_a_failed_complete_invoice_ready_like_mark_ready(
    repo: Repository,
) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    repo.record_artifact(invoice.id, "pdf", f"{invoice.id}-pdf", 10, "a" * 64)
    assert repo.mark_invoice_failed(invoice.id, "xlsx timed out") is True
    state = repo.mark_ready_and_get(invoice.id)
    assert state is not None and state.invoice.status == "failed" and state.missing == ["xlsx"]
    repo.record_artifact(invoice.id, "xlsx", f"{invoice.id}-xlsx", 10, "b" * 64)
    state = repo.mark_ready_and_get(invoice.id)
    assert state is not None and state.became_ready is True
    assert (state.invoice.status, state.invoice.error) == ("ready", None)
    assert invoice_record(repo, invoice.id).status == "ready"


def test_renderers_finishing_together_make_it_ready_once_through_mark_ready_and_get(
    repo: Repository,
) -> None:
    owner = new_user(repo)
    for _ in range(5):
        invoice = repo.accept_invoice(new_invoice(owner)).invoice

        def render(i: int, invoice_id: str = invoice.id) -> bool:
            fmt = FORMATS[i % 2]
            repo.record_artifact(invoice_id, fmt, f"{invoice_id}-{fmt}", 1, "d" * 64)
            state = repo.mark_ready_and_get(invoice_id)
            assert state is not None
            return state.became_ready

        assert concurrently(4, render).count(True) == 1
        assert invoice_record(repo, invoice.id).status == "ready"


# -- artifacts --------------------------------------------------------------------------------


def test_record_artifact_is_idempotent(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    first = repo.record_artifact(invoice.id, "pdf", f"{invoice.id}-pdf", 1234, "e" * 64)
    again = repo.record_artifact(invoice.id, "pdf", "another-file", 99, "f" * 64)
    assert again == first
    assert (first.file_id, first.size, first.sha256) == (f"{invoice.id}-pdf", 1234, "e" * 64)
    assert repo.list_artifacts(invoice.id) == [first]
    assert repo.get_artifact(invoice.id, "pdf") == first
    assert repo.get_artifact(invoice.id, "xlsx") is None


def test_concurrent_artifact_records_keep_one_row(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    results = concurrently(
        6, lambda i: repo.record_artifact(invoice.id, "xlsx", f"file-{i}", i, "0" * 64)
    )
    assert len(set(results)) == 1
    assert repo.list_artifacts(invoice.id) == [results[0]]


def test_step_invoice_reads_processed_invoice_and_artifacts_at_once(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    read = repo.step_invoice("render-xml", "/upload", "e-1", invoice.id, ("cii", "ubl"))
    assert (read.processed, read.invoice, read.artifacts) == (False, invoice, {})
    cii = repo.record_artifact(invoice.id, "cii", f"{invoice.id}-cii", 10, "a" * 64)
    ubl = repo.record_artifact(invoice.id, "ubl", f"{invoice.id}-ubl", 20, "b" * 64)
    repo.record_artifact(invoice.id, "pdf", f"{invoice.id}-pdf", 30, "c" * 64)
    read = repo.step_invoice("render-xml", "/upload", "e-1", invoice.id, ("cii", "ubl"))
    assert read.artifacts == {"cii": cii, "ubl": ubl}  # only the formats asked for
    assert read.invoice == repo.get_invoice(invoice.id)
    one = repo.step_invoice("render-xml", "/upload", "e-1", invoice.id, ("ubl",))
    assert one.artifacts == {"ubl": ubl}
    repo.mark_processed("render-xml", "/upload", "e-1")
    assert repo.step_invoice("render-xml", "/upload", "e-1", invoice.id, ()).processed
    # another consumer or event is not processed; an unknown invoice reads as None
    assert not repo.step_invoice("render-pdf", "/upload", "e-1", invoice.id, ()).processed
    missing = repo.step_invoice("render-xml", "/upload", "e-1", "no-such-invoice", ("cii",))
    assert (missing.processed, missing.invoice, missing.artifacts) == (True, None, {})


# -- notifications ----------------------------------------------------------------------------


def test_notification_claimed_exactly_once_under_threads(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    wins = concurrently(8, lambda _: repo.claim_notification(invoice.id, "ready", "a@x.io"))
    assert wins.count(True) == 1
    note = repo.get_notification(invoice.id, "ready")
    assert note is not None and note.state == "claimed" and note.claimed_at is not None
    # the send failed: give it back, so exactly one retry can claim it
    assert repo.release_notification(invoice.id, "ready") is True
    assert repo.release_notification(invoice.id, "ready") is False
    wins = concurrently(8, lambda _: repo.claim_notification(invoice.id, "ready", "a@x.io"))
    assert wins.count(True) == 1
    assert repo.mark_notification_sent(invoice.id, "ready", "sg-123") is True
    note = repo.get_notification(invoice.id, "ready")
    assert note is not None and (note.state, note.provider_message_id) == ("sent", "sg-123")
    assert note.sent_at is not None
    # sent is final
    assert repo.claim_notification(invoice.id, "ready", "a@x.io") is False
    assert repo.release_notification(invoice.id, "ready") is False
    assert repo.mark_notification_sent(invoice.id, "ready", "again") is False
    # the other kind is independent
    assert repo.claim_notification(invoice.id, "failed", "a@x.io") is True


def test_stale_claim_can_be_taken_over(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    assert repo.claim_notification(invoice.id, "ready", "a@x.io")
    # the ticking clock moved only milliseconds: not stale after an hour...
    assert not repo.claim_notification(
        invoice.id, "ready", "a@x.io", reclaim_after=timedelta(hours=1)
    )
    # ...but stale after a microsecond
    assert repo.claim_notification(
        invoice.id, "ready", "a@x.io", reclaim_after=timedelta(microseconds=1)
    )


def test_claim_for_records_the_claimer_and_answers_the_row_that_stands(
    repo: Repository,
) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    hour = timedelta(hours=1)
    first = repo.claim_notification_for(invoice.id, "ready", "a@x.io", "E1", reclaim_after=hour)
    assert first.claimed is True and first.found is None
    # anyone else, the same claimer too, loses a fresh claim and sees who holds it
    for claimer in ("E2", "E1"):
        lost = repo.claim_notification_for(
            invoice.id, "ready", "a@x.io", claimer, reclaim_after=hour
        )
        assert lost.claimed is False and lost.found is not None
        assert (lost.found.state, lost.found.claimed_by) == ("claimed", "E1")
    note = repo.get_notification(invoice.id, "ready")
    assert note is not None and note.claimed_by == "E1"
    # stale (a microsecond): E2 takes it over, and is the claimer now
    taken = repo.claim_notification_for(
        invoice.id, "ready", "a@x.io", "E2", reclaim_after=timedelta(microseconds=1)
    )
    assert taken.claimed is True and taken.found is not None
    assert (taken.found.state, taken.found.claimed_by) == ("claimed", "E1")
    lost = repo.claim_notification_for(invoice.id, "ready", "a@x.io", "E1", reclaim_after=hour)
    assert lost.found is not None and (lost.claimed, lost.found.claimed_by) == (False, "E2")
    # released: claimed again at once
    assert repo.release_notification(invoice.id, "ready") is True
    again = repo.claim_notification_for(invoice.id, "ready", "a@x.io", "E3", reclaim_after=hour)
    assert again.claimed is True and again.found is not None and again.found.state == "released"
    # sent is final, even for a stale claim time
    assert repo.mark_notification_sent(invoice.id, "ready", "id-1") is True
    done = repo.claim_notification_for(
        invoice.id, "ready", "a@x.io", "E4", reclaim_after=timedelta(microseconds=1)
    )
    assert done.claimed is False and done.found is not None
    assert (done.found.state, done.found.claimed_by) == ("sent", "E3")
    # the claim without a claimer (the older call) leaves none recorded
    assert repo.claim_notification(invoice.id, "failed", "a@x.io") is True
    lost = repo.claim_notification_for(invoice.id, "failed", "a@x.io", "E5", reclaim_after=hour)
    assert lost.found is not None and (lost.claimed, lost.found.claimed_by) == (False, None)


def test_claim_for_is_won_exactly_once_under_threads(repo: Repository) -> None:
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner)).invoice
    claims = concurrently(
        8,
        lambda i: repo.claim_notification_for(
            invoice.id, "ready", "a@x.io", f"E{i}", reclaim_after=timedelta(hours=1)
        ),
    )
    winners = [i for i, claim in enumerate(claims) if claim.claimed]
    assert len(winners) == 1
    for claim in claims:
        if not claim.claimed:  # each loser sees the winner's row
            assert claim.found is not None and claim.found.claimed_by == f"E{winners[0]}"


# -- processed events -------------------------------------------------------------------------


def test_processed_events_first_time_only(repo: Repository) -> None:
    assert not repo.is_processed("notify", "/render-pdf", "e-1")
    wins = concurrently(6, lambda _: repo.mark_processed("notify", "/render-pdf", "e-1"))
    assert wins.count(True) == 1
    assert repo.is_processed("notify", "/render-pdf", "e-1")
    assert repo.mark_processed("notify", "/render-pdf", "e-1") is False
    # another consumer, or another source, is a different key
    assert repo.mark_processed("render-xlsx", "/render-pdf", "e-1") is True
    assert repo.mark_processed("notify", "/upload", "e-1") is True


# -- outbox -----------------------------------------------------------------------------------


def emit(repo: Repository, events: list[NewOutboxEvent]) -> list[OutboxEvent]:
    """Enqueue ``events`` the way production does: with a change of an invoice (accepted)."""
    repo.accept_invoice(new_invoice(new_user(repo)), events)
    wanted = {(e.source, e.event_id) for e in events}
    return [e for e in repo.pending_outbox_events(10_000) if (e.source, e.event_id) in wanted]


def test_outbox(repo: Repository) -> None:
    first, second, third = event(n=1), event(n=2), event(n=3)
    owner = new_user(repo)
    invoice = repo.accept_invoice(new_invoice(owner), [first, second]).invoice
    stored = repo.pending_outbox_events()
    assert [e.data for e in stored] == [{"n": 1}, {"n": 2}]
    # the same event is stored once, whichever change enqueues it again
    assert repo.mark_invoice_failed(invoice.id, "render failed", [first]) is True
    assert repo.pending_outbox_events() == stored
    emit(repo, [third])
    pending = repo.pending_outbox_events()
    assert [e.event_id for e in pending] == [first.event_id, second.event_id, third.event_id]
    assert [e.event_id for e in repo.pending_outbox_events(limit=2)] == [
        first.event_id,
        second.event_id,
    ]
    assert pending[0].subject == "invoice" and pending[0].source == "/upload"
    assert repo.record_outbox_failure(pending[0].id, "broker said 503") is True
    assert repo.record_outbox_failure(pending[0].id, "x" * 5000) is True
    retried = repo.pending_outbox_events()[0]
    assert retried.attempts == 2 and retried.last_error is not None
    assert len(retried.last_error) <= 2000
    assert repo.mark_outbox_sent(pending[0].id) is True
    assert repo.mark_outbox_sent(pending[0].id) is False
    assert repo.record_outbox_failure(pending[0].id, "late") is False
    assert [e.event_id for e in repo.pending_outbox_events()] == [second.event_id, third.event_id]


def test_outbox_claims_give_each_row_to_one_relay(repo: Repository) -> None:
    """Issue 9, finding 8: eight relays claiming at once never share a row."""
    emit(repo, [event(n=i) for i in range(40)])
    claims = concurrently(8, lambda _: repo.claim_outbox_events(5, lease=60))
    ids = [e.id for claim in claims for e in claim]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert repo.claim_outbox_events(100) == []  # everything is claimed
    assert len(repo.pending_outbox_events()) == 40  # and still unsent


def test_outbox_claim_by_key_release_and_lease(repo: Repository) -> None:
    first, second = event(n=1), event(n=2)
    emit(repo, [first, second])
    (mine,) = repo.claim_outbox_events(10, keys=[(second.source, second.event_id)])
    assert mine.event_id == second.event_id
    assert repo.claim_outbox_events(10, keys=[(second.source, second.event_id)]) == []
    assert repo.claim_outbox_events(10, keys=[]) == []
    (other,) = repo.claim_outbox_events(10)
    assert other.event_id == first.event_id
    assert repo.release_outbox_claims([other.id]) == 1
    assert [e.id for e in repo.claim_outbox_events(10)] == [other.id]
    assert repo.record_outbox_failure(mine.id, "503") is True  # a failure releases the claim
    assert [e.id for e in repo.claim_outbox_events(10)] == [mine.id]
    # an expired lease (a relay that died) frees the row; the TickingClock moves 1 ms a read
    assert [e.id for e in repo.claim_outbox_events(10, lease=-1)] == []
    assert repo.release_outbox_claims([mine.id, other.id]) == 2
    assert len(repo.claim_outbox_events(10, lease=-1)) == 2
    assert len(repo.claim_outbox_events(10)) == 2
    assert repo.mark_outbox_sent(mine.id) is True
    assert repo.release_outbox_claims([mine.id]) == 0


def test_outbox_row_set_aside_is_neither_pending_nor_claimed_until_retried(
    repo: Repository,
) -> None:
    """A row the broker refused for good is set aside: no relay claims it again, it is not
    pending, the operator lists it (oldest first) and puts it back (one, or all)."""
    first, second, third = emit(repo, [event(n=1), event(n=2), event(n=3)])
    (claimed, *_) = repo.claim_outbox_events(10)
    assert claimed.id == first.id
    assert repo.set_outbox_event_aside(first.id, "the event broker refused it: HTTP 400") is True
    assert repo.set_outbox_event_aside(first.id, "again") is False  # set aside already
    assert repo.set_outbox_event_aside(third.id, "refused too") is True
    assert [e.id for e in repo.pending_outbox_events()] == [second.id]
    assert repo.release_outbox_claims(None) == 1  # only second's claim was left
    assert [e.id for e in repo.claim_outbox_events(10)] == [second.id]
    aside = repo.set_aside_outbox_events()
    assert [e.id for e in aside] == [first.id, third.id]
    assert aside[0].attempts == 1 and aside[0].last_error == "the event broker refused it: HTTP 400"
    assert aside[0].set_aside_at is not None and aside[0].sent_at is None
    assert [e.id for e in repo.set_aside_outbox_events(limit=1)] == [first.id]
    assert repo.retry_outbox_events([first.id, second.id]) == 1  # second was not set aside
    assert [e.id for e in repo.set_aside_outbox_events()] == [third.id]
    (back,) = repo.claim_outbox_events(10)
    assert back.id == first.id and back.set_aside_at is None and back.attempts == 1
    assert repo.mark_outbox_sent(second.id) is True
    assert repo.set_outbox_event_aside(second.id, "late") is False  # sent already
    assert repo.retry_outbox_events(None) == 1  # every set-aside row
    assert repo.set_aside_outbox_events() == []
    assert repo.retry_outbox_events([]) == 0


def test_migration_0007_keeps_pending_rows_pending(
    database_url: str, repo_clock: TickingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows pending when the set-aside column arrives stay pending and claimable."""
    from invoiceflow.stores import sql

    every = sql.load_migrations
    monkeypatch.setattr(
        sql, "load_migrations", lambda d: [m for m in every(d) if m.version < "0007"]
    )
    with open_repository(database_url, clock=repo_clock) as old:
        old.migrate()
        with old._transaction() as tx:  # type: ignore[attr-defined]
            for n in (1, 2):  # as the relay of that version wrote them (no set_aside_at yet)
                tx.execute(
                    "INSERT INTO outbox (event_id, type, source, subject, data, created_at) "
                    "VALUES (?, 'io.invoiceflow.invoice.uploaded.v1', '/upload', NULL, ?, ?)",
                    (f"e-{n}", f'{{"n": {n}}}', START),
                )
    monkeypatch.setattr(sql, "load_migrations", every)
    with open_repository(database_url, clock=repo_clock) as repo:
        assert "0007" in repo.migrate()
        pending = repo.pending_outbox_events()
        assert [e.data for e in pending] == [{"n": 1}, {"n": 2}]
        assert all(e.set_aside_at is None for e in pending)
        assert [e.id for e in repo.claim_outbox_events(10)] == [e.id for e in pending]


def outbox_event_ids(repo: Repository) -> list[str]:
    """Every row of the outbox, sent or not, by its event id, oldest first."""
    assert isinstance(repo, SQLRepository)
    with repo._transaction(write=False) as tx:
        return [r["event_id"] for r in tx.execute("SELECT event_id FROM outbox ORDER BY id").all()]


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_prune_outbox_deletes_only_rows_sent_before_the_cutoff(
    repo: Repository, repo_clock: TickingClock, batch: int
) -> None:
    """Retention: a sent row older than the cutoff goes, in windows of ``batch`` rows; a
    pending or set-aside row never does, however old, nor a row sent after the cutoff."""
    rows = emit(repo, [event(n=i) for i in range(7)])
    for row in (rows[0], rows[1], rows[2], rows[4]):
        assert repo.mark_outbox_sent(row.id) is True
    assert repo.set_outbox_event_aside(rows[3].id, "HTTP 400") is True
    cutoff = repo_clock()
    assert repo.mark_outbox_sent(rows[6].id) is True  # sent after the cutoff
    everything = [r.event_id for r in rows]
    assert repo.prune_outbox(cutoff, dry_run=True) == 4
    assert outbox_event_ids(repo) == everything  # a dry run deletes nothing
    assert repo.prune_outbox(cutoff, batch=batch) == 4
    kept = [rows[3].event_id, rows[5].event_id, rows[6].event_id]
    assert outbox_event_ids(repo) == kept
    assert [e.id for e in repo.set_aside_outbox_events()] == [rows[3].id]
    assert [e.id for e in repo.pending_outbox_events()] == [rows[5].id]
    assert repo.prune_outbox(cutoff, batch=batch) == 0
    assert repo.prune_outbox(repo_clock(), batch=batch) == 1  # rows[6] now
    assert outbox_event_ids(repo) == kept[:2]


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_prune_processed_events_deletes_only_records_older_than_the_cutoff(
    repo: Repository, repo_clock: TickingClock, batch: int
) -> None:
    """The walk in primary key order (consumer, source, event id) crosses consumers and
    sources: every old record goes, each younger one stays."""
    old = [
        ("notify", "/render-pdf", "e-2"),
        ("render-pdf", "/upload", "e-1"),
        ("notify", "/render-pdf", "e-9"),
        ("dead-letter", "/upload", "e-1"),
        ("notify", "/dead-letter", "e-1"),
    ]
    for key in old:
        assert repo.mark_processed(*key) is True
    cutoff = repo_clock()
    young = [("notify", "/render-pdf", "e-5"), ("render-pdf", "/upload", "e-0")]
    for key in young:
        assert repo.mark_processed(*key) is True
    assert repo.prune_processed_events(cutoff, dry_run=True) == 5
    assert all(repo.is_processed(*key) for key in old)
    assert repo.prune_processed_events(cutoff, batch=batch) == 5
    assert not any(repo.is_processed(*key) for key in old)
    assert all(repo.is_processed(*key) for key in young)
    assert repo.prune_processed_events(cutoff, batch=batch) == 0


def test_outbox_data_keeps_money_exact(repo: Repository) -> None:
    from decimal import Decimal

    stored = emit(
        repo,
        [
            NewOutboxEvent(
                event_id="money",
                type="t",
                source="/s",
                data={"total": Decimal("10.10")},
                extensions={"invoiceid": "abc"},
            )
        ],
    )
    assert stored[0].data == {"total": "10.10"}
    assert stored[0].extensions == {"invoiceid": "abc"}


# -- failures ---------------------------------------------------------------------------------


def test_unreachable_postgres_is_unavailable() -> None:
    repo = open_repository("postgresql://postgres@127.0.0.1:1/test", connect_timeout=2)
    with pytest.raises(Unavailable):
        repo.ping()
    with pytest.raises(Unavailable):
        repo.get_user("x")
    repo.close()


def test_unopenable_sqlite_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    repo = open_repository(f"sqlite:///{blocker / 'db.sqlite'}")
    with pytest.raises(Unavailable):
        repo.ping()
    repo.close()


def test_unmigrated_database_is_unavailable(sqlite_url: str) -> None:
    with open_repository(sqlite_url) as repo:
        with pytest.raises(Unavailable):
            repo.get_user("x")


def test_factory_rejects_unknown_schemes() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        open_repository("mysql://x/y")


def test_sqlite_reuses_its_connections_across_threads(tmp_path: Path) -> None:
    """A thread-per-request server must neither open a connection per request nor leak one:
    the transactions of threads that come one after the other share one pooled connection."""
    from invoiceflow.stores import open_repository

    repo = open_repository(f"sqlite:///{tmp_path / 'reuse.db'}")
    assert isinstance(repo, SQLiteRepository)
    repo.migrate()
    opened: list[object] = []
    connect = repo._connect

    def counting_connect() -> Any:
        conn = connect()
        opened.append(conn)
        return conn

    repo._connect = counting_connect  # type: ignore[method-assign]
    for _ in range(50):
        t = threading.Thread(target=repo.list_users)
        t.start()
        t.join()
    repo.list_users()
    assert opened == []  # the migration's connection served all 51 transactions
    assert len(repo._open) == 1
    repo.close()


def test_sqlite_pool_opens_a_connection_per_concurrent_transaction_and_closes_all(
    tmp_path: Path,
) -> None:
    from invoiceflow.stores import open_repository
    from invoiceflow.stores.sqlite import MAX_IDLE_CONNECTIONS

    repo = open_repository(f"sqlite:///{tmp_path / 'pool.db'}")
    assert isinstance(repo, SQLiteRepository)
    repo.migrate()
    inside = threading.Barrier(3)
    transactions = []

    def hold() -> None:
        with repo._transaction(write=False) as tx:
            tx.execute("SELECT 1").one()
            transactions.append(tx)
            inside.wait(10)  # three read transactions open at once: three connections

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(transactions) == 3
    assert len(repo._open) == len(repo._idle) == 3 <= MAX_IDLE_CONNECTIONS
    kept = list(repo._open)
    repo.close()
    assert repo._open == set() and repo._idle == []
    for conn in kept:
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            conn.execute("SELECT 1")
    with pytest.raises(Unavailable):
        repo.list_users()


def test_sqlite_drops_a_connection_left_in_a_transaction(tmp_path: Path) -> None:
    """A connection whose ROLLBACK failed is closed, not handed to the next transaction."""
    from invoiceflow.stores import open_repository

    repo = open_repository(f"sqlite:///{tmp_path / 'left.db'}")
    assert isinstance(repo, SQLiteRepository)
    repo.migrate()
    (conn,) = repo._idle
    conn.execute("BEGIN")  # as a failed ROLLBACK leaves it
    with pytest.raises(Unavailable):  # BEGIN inside a transaction: an OperationalError
        repo.list_users()
    assert conn not in repo._open  # dropped...
    assert repo.list_users() == []  # ...and a fresh connection serves the next one
    repo.close()


def test_postgres_keeps_its_connections_open_between_transactions(postgres_url: str) -> None:
    from invoiceflow.stores import open_repository

    repo = open_repository(postgres_url)
    assert isinstance(repo, PostgresRepository)
    repo.migrate()
    repo.list_users()
    first = repo._pool._pool[-1]
    for _ in range(5):
        repo.list_users()
    assert repo._pool._pool[-1] is first and not first.closed  # reused, not reconnected
    repo.close()


@pytest.mark.postgres
def test_postgres_reads_run_without_begin_and_writes_in_a_transaction(postgres_url: str) -> None:
    """A read is one SELECT in autocommit (its own snapshot, no BEGIN/COMMIT round trips);
    a write is still one transaction: a failure rolls back all of it."""
    repo = open_repository(postgres_url)
    assert isinstance(repo, PostgresRepository)
    repo.migrate()
    activity = (
        "SELECT xact_start = query_start AS own FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    )
    try:
        with repo._transaction(write=False) as tx:
            row = tx.execute(activity).one()
            assert row is not None and row["own"] is True  # its own transaction
        with repo._transaction() as tx:
            tx.execute("SELECT 1").one()
            row = tx.execute(activity).one()
            assert row is not None and row["own"] is False  # BEGIN came first
        user = accounts.add_user(repo, "tx@example.com", "a long enough password")
        with pytest.raises(RuntimeError), repo._transaction() as tx:
            tx.execute("UPDATE users SET disabled = ? WHERE id = ?", (True, user.id))
            raise RuntimeError("after the update")
        after = repo.get_user(user.id)
        assert after is not None and after.disabled is False
    finally:
        repo.close()


def test_writes_of_one_statement_run_in_autocommit(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that is one statement is atomic on its own: it runs without BEGIN and COMMIT
    (two PostgreSQL round trips fewer), and a failing one leaves nothing and a usable
    connection. The writers of every invoice's hot path are such statements."""
    assert isinstance(repo, SQLRepository)
    with repo._transaction(one_statement=True) as tx:
        conn = tx._cursor.connection
        in_transaction = not conn.autocommit if repo.dialect == "postgres" else conn.in_transaction
        assert in_transaction is False
        tx.execute(
            "INSERT INTO processed_events (consumer, source, event_id, processed_at) "
            "VALUES (?, ?, ?, ?)",
            ("c", "/s", "e-1", datetime.now(UTC)),
        )
    assert repo.is_processed("c", "/s", "e-1")
    with pytest.raises(Exception):  # noqa: B017 - the driver's own IntegrityError
        with repo._transaction(one_statement=True) as tx:
            tx.execute(
                "INSERT INTO processed_events (consumer, source, event_id, processed_at) "
                "VALUES (?, ?, ?, ?)",
                ("c", "/s", "e-1", datetime.now(UTC)),
            )
    assert repo.mark_processed("c", "/s", "e-2") is True

    flags: list[bool] = []
    transaction = repo._transaction

    def spy(*, write: bool = True, one_statement: bool = False) -> Any:
        flags.append(one_statement)
        return transaction(write=write, one_statement=one_statement)

    monkeypatch.setattr(repo, "_transaction", spy)
    repo.mark_processed("c", "/s", "e-3")
    repo.settle_delivery(12345)
    repo.mark_outbox_sent(12345)
    repo.release_notification("i-1", "ready")
    assert flags == [True, True, True, True]
