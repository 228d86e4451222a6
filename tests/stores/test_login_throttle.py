"""Login throttling in the SQL repository (issue 9, finding 4): on SQLite and PostgreSQL, so
the limits hold across replicas. The clock is injected; nothing sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from invoiceflow.stores import Repository
from invoiceflow.stores.protocols import LoginPolicy

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = LoginPolicy(
    free_failures=3, base_delay=1.0, max_delay=8.0, client_burst=1000.0, client_per_minute=60.0
)


class Clock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self) -> None:
        self.now = START
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo_clock(clock: Clock) -> Clock:
    """The repositories of these tests read the clock the test moves."""
    return clock


def free_attempts(repo: Repository, account: str, policy: LoginPolicy = POLICY) -> int:
    """The attempts the account may still make before one must wait: ``free_failures`` less
    the failures counted against it, as a login sees them (the attempts are used up)."""
    for made in range(policy.free_failures + 1):
        if repo.reserve_login_attempt(account, None, policy) > 0:
            return made
    raise AssertionError(f"{account} is never made to wait")


def test_the_delay_doubles_per_failure_past_the_free_ones_up_to_the_cap() -> None:
    policy = LoginPolicy(free_failures=5, base_delay=1.0, max_delay=900.0)
    assert [policy.delay(n) for n in range(0, 12)] == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64]
    assert policy.delay(15) == 900 and policy.delay(10**9) == 900


def test_failures_past_the_free_ones_must_wait_exponentially(
    repo: Repository, clock: Clock
) -> None:
    for _ in range(3):
        assert repo.reserve_login_attempt("acct", None, POLICY) == 0.0
    waits = []
    for _ in range(6):
        wait = repo.reserve_login_attempt("acct", None, POLICY)
        waits.append(wait)
        # refused attempts are not counted and do not extend the window
        assert repo.reserve_login_attempt("acct", None, POLICY) == pytest.approx(wait)
        clock.advance(wait)
        assert repo.reserve_login_attempt("acct", None, POLICY) == 0.0
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # capped at max_delay
    assert repo.reserve_login_attempt("acct", None, POLICY) == pytest.approx(8.0)
    assert repo.reserve_login_attempt("other", None, POLICY) == 0.0  # per account


def test_a_success_resets_the_account(repo: Repository, clock: Clock) -> None:
    for _ in range(4):
        repo.reserve_login_attempt("acct", None, POLICY)
    assert repo.reserve_login_attempt("acct", None, POLICY) > 0
    clock.advance(2)
    assert repo.reserve_login_attempt("acct", None, POLICY) == 0.0
    repo.finish_login_attempt("acct", "succeeded")
    assert free_attempts(repo, "acct") == 3


def test_an_abandoned_attempt_is_given_back(repo: Repository) -> None:
    for _ in range(2):
        repo.reserve_login_attempt("acct", None, POLICY)
    repo.finish_login_attempt("acct", "abandoned")
    repo.finish_login_attempt("acct", "failed")
    assert free_attempts(repo, "acct") == 2  # one failure counted


def test_old_failures_are_forgotten(repo: Repository, clock: Clock) -> None:
    for _ in range(5):
        repo.reserve_login_attempt("acct", None, POLICY)
    clock.advance(POLICY.failure_memory.total_seconds() + 1)
    assert repo.reserve_login_attempt("acct", None, POLICY) == 0.0
    assert free_attempts(repo, "acct") == 2  # only the last failure is counted


def test_each_client_has_a_token_bucket(repo: Repository, clock: Clock) -> None:
    policy = LoginPolicy(free_failures=100, client_burst=3.0, client_per_minute=30.0)
    for i in range(3):
        assert repo.reserve_login_attempt(f"a{i}", "client-1", policy) == 0.0
    assert repo.reserve_login_attempt("a9", "client-1", policy) == pytest.approx(2.0)
    assert repo.reserve_login_attempt("a9", "client-2", policy) == 0.0  # another client
    clock.advance(2)  # 30 per minute: one token back every 2 s
    assert repo.reserve_login_attempt("a8", "client-1", policy) == 0.0
    assert repo.reserve_login_attempt("a7", "client-1", policy) > 0
    clock.advance(3600)  # refills up to the burst only
    for i in range(3):
        assert repo.reserve_login_attempt(f"b{i}", "client-1", policy) == 0.0
    assert repo.reserve_login_attempt("b9", "client-1", policy) > 0
    # a9's refused attempt was not counted against it, the one from client-2 was
    assert free_attempts(repo, "a9", policy) == policy.free_failures - 1


def test_concurrent_attempts_are_counted_atomically(make_repo: Callable[..., Repository]) -> None:
    """20 attempts at the same instant from 4 connections (replicas): exactly the free ones
    get through, whatever the interleaving."""
    repos = [make_repo() for _ in range(4)]
    policy = LoginPolicy(free_failures=5, base_delay=60.0, max_delay=900.0)
    barrier = threading.Barrier(20)

    def attempt(i: int) -> float:
        barrier.wait(timeout=10)
        return repos[i % 4].reserve_login_attempt("acct", f"c{i % 2}", policy)

    with ThreadPoolExecutor(max_workers=20) as pool:
        waits = list(pool.map(attempt, range(20), timeout=60))
    assert sum(1 for w in waits if w == 0.0) == 5
    # five failures counted, not more: the next attempt waits the first delay
    assert repos[0].reserve_login_attempt("acct", None, policy) == pytest.approx(60.0)


def test_reset_and_prune(repo: Repository, clock: Clock) -> None:
    for _ in range(6):
        repo.reserve_login_attempt("acct", "client", POLICY)
    assert repo.reset_login_throttle("acct") is True
    assert repo.reserve_login_attempt("acct", "client", POLICY) == 0.0
    repo.reserve_login_attempt("old", None, POLICY)
    clock.advance(3 * 86400)
    repo.reserve_login_attempt("new", "client2", POLICY)
    assert repo.prune_login_throttle(clock() - timedelta(days=1)) == 3  # acct, old, client
    assert free_attempts(repo, "old") == 3  # forgotten
    assert free_attempts(repo, "new") == 2  # kept: one failure
