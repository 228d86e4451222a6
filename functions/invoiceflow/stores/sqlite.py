"""SQLite adapter of the SQL repository (stdlib sqlite3): the embedded default for ``dev``.

A pool of connections (WAL mode, so readers never block the writer): a transaction takes an
idle connection or opens one, and gives it back when it ends, so a thread-per-request server
(the local runtime's) does not open a connection, and set its pragmas, per request. Each
connection serves one transaction, so one thread, at a time; at most
:data:`MAX_IDLE_CONNECTIONS` are kept idle. A busy timeout makes concurrent writers wait
instead of failing, and ``BEGIN IMMEDIATE`` for every write transaction takes the write lock
up front (no deadlock-prone lock upgrades). A read (one SELECT) and a write of one statement
run in autocommit, each its own transaction, without BEGIN and COMMIT.

``synchronous = NORMAL`` in WAL mode: a commit writes the WAL without an fsync (the WAL is
synced at each checkpoint). The database is never corrupted; a power loss (not a crash of the
process) may lose the last commits before the checkpoint.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from invoiceflow.errors import Unavailable
from invoiceflow.stores.sql import Clock, SQLRepository, Tx, iso, iter_statements

#: idle connections kept open for the next transactions (more are closed when given back)
MAX_IDLE_CONNECTIONS = 16


def _translate(sql: str) -> str:
    return sql


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return int(value)
    return value


class _SqliteTx(Tx):
    def script(self, sql: str) -> None:
        for statement in iter_statements(sql):
            self._cursor.execute(statement)


class SQLiteRepository(SQLRepository):
    dialect = "sqlite"
    HOLDS_ITS_NUMBER = "number_reused = 0"  # 0005_numbering.sqlite.sql's words

    _SCHEMA_MIGRATIONS_DDL = (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL);"
    )

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 30.0, clock: Clock | None = None
    ) -> None:
        super().__init__(clock)
        self.path = Path(path)
        if str(path) in ("", ":memory:"):
            raise ValueError("SQLite needs a file path (a pool of connections to one database)")
        self._busy_timeout = busy_timeout
        self._idle: list[sqlite3.Connection] = []
        #: every open connection, idle or in a transaction (so close() reaches them all)
        self._open: set[sqlite3.Connection] = set()
        self._lock = threading.Lock()
        self._closed = False

    def _checkout(self) -> sqlite3.Connection:
        """An idle connection, or a new one when none is."""
        with self._lock:
            if self._closed:
                raise Unavailable("the repository is closed")
            if self._idle:
                return self._idle.pop()
        conn = self._connect()
        with self._lock:
            self._open.add(conn)
        return conn

    def _checkin(self, conn: sqlite3.Connection) -> None:
        """Give ``conn`` back: kept idle unless the repository is closed, enough are idle, or
        a transaction is left open on it (a failed ROLLBACK)."""
        with self._lock:
            keep = (
                conn in self._open
                and not self._closed
                and not conn.in_transaction
                and len(self._idle) < MAX_IDLE_CONNECTIONS
            )
            if keep:
                self._idle.append(conn)
            else:
                self._open.discard(conn)
        if not keep:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False:
            # a pooled connection serves one thread at a time, not always the same one.
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.OperationalError, OSError) as exc:
            raise Unavailable(f"cannot open the SQLite database {self.path}: {exc}") from exc
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (a persistent setting). Switching needs an exclusive lock and
        SQLite does not wait for it (no busy handler), so retry until the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() == "wal":
                    return
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @contextmanager
    def _transaction(self, *, write: bool = True, one_statement: bool = False) -> Iterator[Tx]:
        """A write transaction takes the write lock at once (BEGIN IMMEDIATE: no deadlock
        between two writers that both read first). A read is one SELECT and a
        ``one_statement`` write one statement: each runs in autocommit, its own transaction."""
        conn = self._checkout()
        in_transaction = write and not one_statement
        try:
            if conn.in_transaction:  # left open (a failed ROLLBACK): never read through it
                raise sqlite3.OperationalError("a transaction was left open on this connection")
            if in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.cursor()
                try:
                    yield _SqliteTx(cursor, _translate, _adapt)
                finally:
                    cursor.close()  # ends the statement, and so an autocommit's transaction
                if in_transaction:
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            # "database is locked" past the busy timeout, disk I/O errors, missing tables
            raise Unavailable(f"database unavailable: {exc}") from exc
        finally:
            self._checkin(conn)

    @contextmanager
    def _migration_transaction(self) -> Iterator[Tx]:
        # BEGIN IMMEDIATE is the lock: one writer (and so one migrator) at a time
        with self._transaction() as tx:
            yield tx

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._open, self._idle = list(self._open), set(), []
        for conn in connections:
            conn.close()
