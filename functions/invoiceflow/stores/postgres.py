"""PostgreSQL adapter of the SQL repository (psycopg2, a small thread-safe pool).

Nothing connects until the first query, so a scale-to-zero function starts even when the
database is down; that first query then raises :class:`~invoiceflow.errors.Unavailable`.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.pool

from invoiceflow.errors import Conflict, Unavailable
from invoiceflow.stores.sql import Clock, SQLRepository, Tx

#: pg_advisory_xact_lock key serializing migrators (any constant unique to this product)
MIGRATION_LOCK_KEY = 0x1F_0A_1CE_F10

#: seconds a thread waits for a free pooled connection before giving up (Unavailable)
POOL_WAIT_SECONDS = 30.0


@lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    return sql.replace("?", "%s")


def _adapt(value: Any) -> Any:
    return value


class _PgTx(Tx):
    def script(self, sql: str) -> None:
        self._cursor.execute(sql)


class PostgresRepository(SQLRepository):
    dialect = "postgres"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    _SCHEMA_MIGRATIONS_DDL = (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )

    def __init__(
        self,
        database_url: str,
        *,
        max_connections: int = 8,
        connect_timeout: int = 5,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        options: dict[str, Any] = {"application_name": "invoiceflow"}
        if "connect_timeout" not in database_url:
            options["connect_timeout"] = connect_timeout
        # minconn=0: connect lazily, on the first query
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            0, max_connections, database_url, **options
        )
        # psycopg2's pool closes every returned connection beyond minconn idle ones, which with
        # 0 would reconnect on every transaction: keep up to max_connections idle (still none
        # opened before the first query)
        self._pool.minconn = max_connections
        # ThreadedConnectionPool fails at once when exhausted; make callers wait for a slot
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_connections = max_connections
        self._closed = False

    # -- connections ---------------------------------------------------------------------------

    def _checkout(self) -> Any:
        if self._closed:
            raise Unavailable("the repository is closed")
        if not self._slots.acquire(timeout=POOL_WAIT_SECONDS):
            raise Unavailable("no free database connection")
        try:
            # every idle connection may have been cut (a server restart), then a new one
            for _ in range(self._max_connections + 2):
                conn = self._pool.getconn()
                if not conn.closed and not _hung_up(conn):
                    return conn
                self._pool.putconn(conn, close=True)
            raise Unavailable("database connections keep closing")
        except psycopg2.Error as exc:
            self._slots.release()
            raise Unavailable(f"cannot connect to the database: {_first_line(exc)}") from exc
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, conn: Any) -> None:
        try:
            if not self._closed:
                self._pool.putconn(conn, close=bool(conn.closed))
        except psycopg2.pool.PoolError:  # pragma: no cover - pool closed meanwhile
            pass
        finally:
            self._slots.release()

    @contextmanager
    def _transaction(self, *, write: bool = True, one_statement: bool = False) -> Iterator[Tx]:
        """A transaction; a read (``write=False``) runs in autocommit: every reader is one
        SELECT, which PostgreSQL runs atomically on its own snapshot (READ COMMITTED gives a
        multi-statement transaction no more than that either), so the BEGIN and COMMIT round
        trips around it would buy nothing: a third of the statements per invoice. So does a
        write of one statement (``one_statement``), atomic on its own."""
        conn = self._checkout()
        in_transaction = write and not one_statement
        try:
            try:
                conn.autocommit = not in_transaction  # client-side in psycopg2: no round trip
                with conn.cursor() as cursor:
                    yield _PgTx(cursor, _translate, _adapt)
                if in_transaction:
                    conn.commit()
            except BaseException:
                _rollback(conn)
                raise
        except psycopg2.extensions.TransactionRollbackError as exc:
            # serialization failure / deadlock: somebody else is doing the same work
            raise Conflict(f"database transaction conflict: {_first_line(exc)}") from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            raise Unavailable(f"database unavailable: {_first_line(exc)}") from exc
        finally:
            self._checkin(conn)

    @contextmanager
    def _migration_transaction(self) -> Iterator[Tx]:
        with self._transaction() as tx:
            # held until commit: a second migrator waits, then finds everything applied
            tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))
            yield tx

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.closeall()


def _hung_up(conn: Any) -> bool:
    """True when the idle ``conn`` has something to read: the server closed it (a restart
    sends "terminating connection" and hangs up), which psycopg2 notices only when a query
    fails on it. Costs no round trip."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([conn.fileno()], [], [], 0)[0])  # pragma: no cover - Windows
    except (OSError, ValueError, psycopg2.Error):  # no usable socket: not worth keeping
        return True


def _rollback(conn: Any) -> None:
    if conn.closed:
        return
    try:
        conn.rollback()
    except psycopg2.Error:  # the connection broke; checkin discards it
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
