"""SQLite adapter of the SQL repository (stdlib sqlite3): the embedded default for ``dev``.

One connection per thread (WAL mode, so readers never block the writer), a busy timeout so
concurrent writers wait instead of failing, and ``BEGIN IMMEDIATE`` for every write
transaction so the write lock is taken up front (no deadlock-prone lock upgrades).
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
            raise ValueError("SQLite needs a file path (one connection per thread)")
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        #: thread ident -> that thread's connection (so close() and pruning can reach them)
        self._connections: dict[int, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise Unavailable("the repository is closed")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False
            # only so close() may close every thread's connection; each is used by one thread.
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.OperationalError, OSError) as exc:
            raise Unavailable(f"cannot open the SQLite database {self.path}: {exc}") from exc
        with self._lock:
            self._prune_locked()
            stale = self._connections.pop(threading.get_ident(), None)  # a reused thread id
            if stale is not None:
                stale.close()
            self._connections[threading.get_ident()] = conn
        self._local.conn = conn
        return conn

    def _prune_locked(self) -> None:
        """Close the connections of threads that have ended: a server that starts a thread per
        request (the local runtime's) would otherwise leak one connection per request."""
        alive = {t.ident for t in threading.enumerate()}
        for ident in [i for i in self._connections if i not in alive]:
            self._connections.pop(ident).close()

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
    def _transaction(self, *, write: bool = True) -> Iterator[Tx]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                cursor = conn.cursor()
                try:
                    yield _SqliteTx(cursor, _translate, _adapt)
                finally:
                    cursor.close()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            # "database is locked" past the busy timeout, disk I/O errors, missing tables
            raise Unavailable(f"database unavailable: {exc}") from exc

    @contextmanager
    def _migration_transaction(self) -> Iterator[Tx]:
        # BEGIN IMMEDIATE is the lock: one writer (and so one migrator) at a time
        with self._transaction() as tx:
            yield tx

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()
        self._local = threading.local()
