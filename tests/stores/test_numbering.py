"""The repository's invoice numbers (SQLite and PostgreSQL): numbers unique per owner, the
next number of a series taken inside the accepting transaction (a rollback gives it back),
the series settings, and migration 0005 on a database that already holds duplicates."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest

from invoiceflow import numbering
from invoiceflow.errors import NumberAlreadyUsed
from invoiceflow.stores import NewInvoiceRecord, NewOutboxEvent, Repository, open_repository, sql
from invoiceflow.stores.protocols import NumberAssignment, NumberCounter

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ISSUED = date(2026, 3, 1)


@pytest.fixture
def repo_clock() -> Callable[[], datetime]:
    ticks = iter(range(10**9))
    lock = threading.Lock()

    def clock() -> datetime:
        with lock:
            return START + timedelta(milliseconds=next(ticks))

    return clock


def new_user(repo: Repository) -> str:
    user = repo.add_user(f"{uuid.uuid4().hex[:8]}@example.com", "hash")
    assert user is not None
    return user.id


def series(
    pattern: str = "RE-{yyyy}-{seq:04}", issued: date = ISSUED, reset: bool = True
) -> NumberAssignment:
    return numbering.assignment(numbering.NumberSeries(pattern, reset), issued)


def record(
    owner: str, number: str = "", assign: NumberAssignment | None = None, key: str | None = None
) -> NewInvoiceRecord:
    invoice_id = str(uuid.uuid4())
    return NewInvoiceRecord(
        id=invoice_id,
        owner_id=owner,
        number=number,
        source="http",
        raw_file_id=f"{invoice_id}-json",
        formats=("pdf",),
        idempotency_key=key,
        request_sha256="sha" if key else None,
        assign_number=assign,
    )


def numbered(owner: str, **kw: Any) -> NewInvoiceRecord:
    return record(owner, assign=kw.pop("assign", None) or series(), **kw)


def test_numbers_follow_the_series_and_each_year_restarts(repo: Repository) -> None:
    owner = new_user(repo)
    got = [repo.accept_invoice(numbered(owner)).invoice.number for _ in range(3)]
    assert got == ["RE-2026-0001", "RE-2026-0002", "RE-2026-0003"]
    next_year = series(issued=date(2027, 1, 4))
    assert repo.accept_invoice(numbered(owner, assign=next_year)).invoice.number == ("RE-2027-0001")
    assert repo.accept_invoice(numbered(owner)).invoice.number == "RE-2026-0004"
    assert repo.number_counters(owner) == [NumberCounter("2026", 4), NumberCounter("2027", 1)]
    # another owner: a series of their own
    assert repo.accept_invoice(numbered(new_user(repo))).invoice.number == "RE-2026-0001"


def test_concurrent_acceptances_take_consecutive_numbers(
    make_repo: Callable[..., Repository],
) -> None:
    repos = [make_repo() for _ in range(4)]  # separate pools/connections
    owner = new_user(repos[0])
    n = 24
    barrier = threading.Barrier(n)

    def accept(i: int) -> str:
        barrier.wait(timeout=10)
        return repos[i % len(repos)].accept_invoice(numbered(owner)).invoice.number

    with ThreadPoolExecutor(max_workers=n) as pool:
        numbers = list(pool.map(accept, range(n)))
    assert sorted(numbers) == [f"RE-2026-{i:04d}" for i in range(1, n + 1)]


def test_a_rolled_back_acceptance_gives_its_number_back(repo: Repository) -> None:
    owner = new_user(repo)
    seen: list[str] = []

    def failing(number: str) -> list[NewOutboxEvent]:
        seen.append(number)
        raise RuntimeError("the document store failed")

    with pytest.raises(RuntimeError):
        repo.accept_invoice(numbered(owner), complete=failing)
    assert seen == ["RE-2026-0001"]
    assert repo.number_counters(owner) == []

    def events(number: str) -> list[NewOutboxEvent]:
        return [NewOutboxEvent(f"{number}.uploaded", "t", "/upload", {"number": number})]

    accepted = repo.accept_invoice(numbered(owner), complete=events)
    assert accepted.invoice.number == "RE-2026-0001"
    (event,) = repo.pending_outbox_events()
    assert event.data == {"number": "RE-2026-0001"}


def test_an_uploaded_number_is_used_once_per_owner(repo: Repository) -> None:
    owner, other = new_user(repo), new_user(repo)
    first = repo.accept_invoice(record(owner, "INV-7")).invoice
    with pytest.raises(NumberAlreadyUsed) as refused:
        repo.accept_invoice(record(owner, "INV-7"))
    assert refused.value.status == 409
    assert refused.value.detail.startswith(
        f"invoice number INV-7 is already used by invoice {first.id} of 2026-03-01"
    )
    assert repo.accept_invoice(record(other, "INV-7")).created
    assert repo.get_invoice_by_number(owner, "INV-7") == first


def test_a_series_passes_over_numbers_uploads_took(repo: Repository) -> None:
    owner = new_user(repo)
    repo.accept_invoice(record(owner, "RE-2026-0001"))
    repo.accept_invoice(record(owner, "RE-2026-0002"))
    assert repo.accept_invoice(numbered(owner)).invoice.number == "RE-2026-0003"


def test_a_series_passes_over_any_run_of_taken_numbers_in_one_step_and_fills_no_gap(
    repo: Repository,
) -> None:
    """An owner who brought 1,500 numbered invoices from their old system (or whose series
    was switched to a yearly reset mid-year) gets the next free number, not a 409 after a
    thousand; a number free between taken ones is given, never skipped."""
    owner = new_user(repo)
    for seq in [*range(1, 1501), 1502, 1503]:
        repo.accept_invoice(record(owner, f"RE-2026-{seq:04d}"))
    repo.accept_invoice(record(owner, "RE-2026-01504"))  # another padding: not the series'
    repo.accept_invoice(record(owner, "RE-2025-1504"))  # another year: not this series'
    got = [repo.accept_invoice(numbered(owner)).invoice.number for _ in range(3)]
    assert got == ["RE-2026-1501", "RE-2026-1504", "RE-2026-1505"]
    assert repo.number_counters(owner) == [NumberCounter("2026", 1505)]


def test_a_taken_number_is_looked_up_in_the_unique_index_of_numbers(repo: Repository) -> None:
    """The series' check for a taken number runs on every upload without a number: it must
    find it in invoices_owner_number (whose condition a query must state in the database's
    own words for SQLite), not read the owner's every invoice."""
    sql_repo = cast(sql.SQLRepository, repo)
    query = (
        "SELECT 1 AS hit FROM invoices WHERE owner_id = ? AND number = ? AND "  # noqa: S608 - the repository's constant, no input
        + sql_repo.HOLDS_ITS_NUMBER
    )
    with sql_repo._transaction() as tx:
        if sql_repo.dialect == "postgres":
            tx.execute("SET LOCAL enable_seqscan = off")
        plan = tx.execute(
            ("EXPLAIN QUERY PLAN " if sql_repo.dialect == "sqlite" else "EXPLAIN ") + query,
            ("owner", "RE-2026-0001"),
        ).all()
    assert "invoices_owner_number" in str(plan), plan


def test_switching_the_series_to_a_yearly_reset_continues_after_the_years_numbers(
    repo: Repository,
) -> None:
    owner = new_user(repo)
    running = series("{yyyy}-{seq:05}", reset=False)
    numbers = [repo.accept_invoice(numbered(owner, assign=running)).invoice.number for _ in "abc"]
    assert numbers == ["2026-00001", "2026-00002", "2026-00003"]
    yearly = series("{yyyy}-{seq:05}", reset=True)
    assert repo.accept_invoice(numbered(owner, assign=yearly)).invoice.number == "2026-00004"
    assert repo.number_counters(owner) == [NumberCounter("", 3), NumberCounter("2026", 4)]


def test_a_prefix_with_like_wildcards_reads_only_its_own_numbers(repo: Repository) -> None:
    owner = new_user(repo)
    underscore = series("R_{yyyy}-{seq}")
    repo.accept_invoice(record(owner, "R_2026-1"))
    repo.accept_invoice(record(owner, "RX2026-2"))  # matched by an unescaped "_"
    got = [repo.accept_invoice(numbered(owner, assign=underscore)).invoice.number for _ in "ab"]
    assert got == ["R_2026-2", "R_2026-3"]


def test_an_idempotent_replay_takes_no_number(repo: Repository) -> None:
    owner = new_user(repo)
    first = repo.accept_invoice(numbered(owner, key="k"))
    replay = repo.accept_invoice(numbered(owner, key="k"))
    assert not replay.created and replay.invoice == first.invoice
    assert repo.accept_invoice(numbered(owner)).invoice.number == "RE-2026-0002"


def test_concurrent_replays_of_one_key_take_one_number(
    make_repo: Callable[..., Repository],
) -> None:
    repos = [make_repo() for _ in range(4)]
    owner = new_user(repos[0])
    n = 8
    barrier = threading.Barrier(n)

    def accept(i: int) -> tuple[bool, str]:
        barrier.wait(timeout=10)
        got = repos[i % len(repos)].accept_invoice(numbered(owner, key="same"))
        return got.created, got.invoice.number

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(accept, range(n)))
    assert sorted(results)[-1] == (True, "RE-2026-0001")
    assert {number for _, number in results} == {"RE-2026-0001"}
    assert sum(created for created, _ in results) == 1
    assert repos[0].number_counters(owner) == [NumberCounter("2026", 1)]


def test_the_series_settings(repo: Repository) -> None:
    owner = new_user(repo)
    assert repo.get_number_series(owner) is None
    repo.set_number_series(owner, "A-{seq}", False)
    repo.set_number_series(owner, "B-{yy}{seq:03}", True)
    assert repo.get_number_series(owner) == ("B-{yy}{seq:03}", True)


def test_migration_0005_keeps_old_duplicates_and_refuses_new_ones(
    database_url: str, repo_clock: Callable[[], datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    every = sql.load_migrations
    monkeypatch.setattr(
        sql, "load_migrations", lambda d: [m for m in every(d) if m.version < "0005"]
    )
    old = open_repository(database_url, clock=repo_clock)
    try:
        old.migrate()
        owner = new_user(old)
        ids = []
        with old._transaction() as tx:  # type: ignore[attr-defined]
            for i in range(3):  # three invoices numbered D-1 (nothing refused them then)
                ids.append(str(uuid.uuid4()))
                tx.execute(
                    "INSERT INTO invoices (id, owner_id, number, status, source, raw_file_id, "
                    "formats, created_at, updated_at) VALUES (?, ?, 'D-1', 'received', 'http', "
                    "?, 'pdf', ?, ?)",
                    (ids[-1], owner, f"{ids[-1]}-json", START + timedelta(i), START),
                )
    finally:
        old.close()
    monkeypatch.setattr(sql, "load_migrations", every)
    repo = open_repository(database_url, clock=repo_clock)
    try:
        assert repo.migrate()[-1] >= "0005"
        # all three are kept; the first accepted one holds the number
        assert all(repo.get_invoice(i) is not None for i in ids)
        holder = repo.get_invoice_by_number(owner, "D-1")
        assert holder is not None and holder.id == ids[0]
        with pytest.raises(NumberAlreadyUsed):
            repo.accept_invoice(record(owner, "D-1"))
    finally:
        repo.close()
