"""The SQL repository logic shared by the PostgreSQL and SQLite adapters.

Every query is written once, with ``?`` placeholders; an adapter only provides transactions
(:meth:`SQLRepository._transaction`), placeholder/parameter translation and the migration lock.
Race-sensitive decisions are single statements (``INSERT ... ON CONFLICT``, conditional
``UPDATE``) so the database, not the application, decides who wins.

SQL text is assembled only from this module's constants (column lists, ``?`` marks); every
value is passed as a query parameter, hence the file-wide S608 exemption below.
"""
# ruff: noqa: S608

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from invoiceflow.errors import BadRequest, Conflict, IdempotencyConflict, NumberAlreadyUsed
from invoiceflow.records import record
from invoiceflow.stores.protocols import (
    INVOICE_SOURCES,
    MAX_PAGE_SIZE,
    NOTIFICATION_KINDS,
    Accepted,
    Artifact,
    CompleteAccepted,
    InvoicePage,
    InvoiceRecord,
    LoginOutcome,
    LoginPolicy,
    NewInvoiceRecord,
    NewOutboxEvent,
    Notification,
    NotificationClaim,
    NotificationKind,
    NumberCounter,
    OutboxEvent,
    QueuedDelivery,
    RenderedInvoice,
    StalledInvoice,
    StepInvoice,
    User,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_FILE = re.compile(
    r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<dialect>[a-z]+))?\.sql"
)

#: longest error text stored (invoices.error, outbox.last_error)
MAX_ERROR_CHARS = 2000

Clock = Callable[[], datetime]


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for the texts that begin with ``prefix`` (``\\`` escapes)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _rendered_formats(invoice_id: str, formats: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """A subquery (and its parameters) counting how many of ``formats`` the invoice has an
    artifact of, as committed when the statement runs."""
    wanted = sorted(set(formats))
    marks = ", ".join("?" for _ in wanted)
    return (
        "(SELECT count(DISTINCT format) FROM artifacts "
        f"WHERE invoice_id = ? AND format IN ({marks}))",
        (invoice_id, *wanted),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# migrations
# --------------------------------------------------------------------------------------------


@record
class Migration:
    version: str
    name: str
    sql: str


def load_migrations(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for ``dialect`` in version order. ``NNNN_name.sql`` is shared by every
    dialect; ``NNNN_name.<dialect>.sql`` is that dialect's own (and wins over a shared one)."""
    chosen: dict[str, tuple[bool, Path, str]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise RuntimeError(f"badly named migration file: {path.name}")
        file_dialect = match["dialect"]
        if file_dialect is not None and file_dialect != dialect:
            continue
        version, specific = match["version"], file_dialect is not None
        previous = chosen.get(version)
        if previous is not None and previous[0] == specific:
            raise RuntimeError(f"two migrations numbered {version} for {dialect}")
        if previous is None or specific:
            chosen[version] = (specific, path, match["name"])
    return [
        Migration(v, name, path.read_text(encoding="utf-8"))
        for v, (_, path, name) in sorted(chosen.items())
    ]


# --------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------


def as_datetime(value: Any) -> datetime | None:
    """A UTC datetime from what a driver returns (datetime from psycopg2, text from sqlite3)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """The one text form of a timestamp: UTC, microseconds, sortable as text."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dump_json(value: Mapping[str, Any]) -> str:
    return json.dumps(
        dict(value),
        default=_json_default,
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )


def normalize_email(email: str) -> str:
    return email.strip().lower()


def encode_cursor(created_at: datetime, invoice_id: str) -> str:
    raw = json.dumps([iso(created_at), invoice_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: a cursor is two short strings; anything longer is not one of ours
_MAX_CURSOR_CHARS = 512


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor from :func:`encode_cursor`; BadRequest for anything else, whatever it holds
    (extreme dates, deep nesting, NUL characters that PostgreSQL text cannot hold, lone
    surrogates that no database encoding holds)."""
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, invoice_id = json.loads(raw)
        if (
            not isinstance(created, str)
            or not isinstance(invoice_id, str)
            or any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in invoice_id)
        ):
            raise ValueError(cursor)  # control characters, lone surrogates: not one of ours
        when = as_datetime(created)
        if when is None:
            raise ValueError(cursor)
        return when, invoice_id
    except (
        binascii.Error,
        ValueError,
        TypeError,
        UnicodeDecodeError,
        OverflowError,
        RecursionError,
    ) as exc:
        raise BadRequest(
            "invalid pagination cursor: pass the next_cursor of the previous page unchanged"
        ) from exc


# --------------------------------------------------------------------------------------------
# transactions
# --------------------------------------------------------------------------------------------


class Tx:
    """A cursor inside one transaction. Queries use ``?`` placeholders; rows come back as
    dicts keyed by column name."""

    def __init__(
        self, cursor: Any, translate: Callable[[str], str], adapt: Callable[[Any], Any]
    ) -> None:
        self._cursor = cursor
        self._translate = translate
        self._adapt = adapt

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        args = tuple(self._adapt(p) for p in params)
        if args:
            self._cursor.execute(self._translate(sql), args)
        else:
            self._cursor.execute(self._translate(sql))
        return self

    def script(self, sql: str) -> None:
        """Run a migration script (several statements, no parameters)."""
        raise NotImplementedError

    def one(self) -> dict[str, Any] | None:
        row = self._cursor.fetchone()
        if row is None:
            return None
        return dict(zip(self._names(), row, strict=True))

    def all(self) -> list[dict[str, Any]]:
        names = self._names()
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def _names(self) -> list[str]:
        return [d[0] for d in self._cursor.description]


_USER_COLS = "id, email, password_hash, disabled, created_at"
_INVOICE_COLS = (
    "id, owner_id, number, status, source, raw_file_id, formats, error, "
    "idempotency_key, request_sha256, created_at, updated_at, document_file_id"
)
_ARTIFACT_COLS = "invoice_id, format, file_id, size, sha256, created_at"
_ARTIFACT_NAMES = tuple(_ARTIFACT_COLS.split(", "))
#: the columns of a join of invoices (i) with their artifacts (a; named ``a_<column>``): one
#: read of an invoice and its artifacts (step_invoice, mark_ready_and_get)
_JOINED_INVOICE_COLS = ", ".join(f"i.{name}" for name in _INVOICE_COLS.split(", "))
_JOINED_ARTIFACT_COLS = ", ".join(f"a.{name} AS a_{name}" for name in _ARTIFACT_NAMES)
_NOTIFICATION_COLS = (
    "invoice_id, kind, recipient, state, claimed_at, sent_at, provider_message_id, claimed_by"
)
_OUTBOX_COLS = (
    "id, event_id, type, source, subject, data, extensions, created_at, sent_at, "
    "attempts, last_error, set_aside_at"
)
#: an outbox row waiting for a relay: neither sent nor set aside (the index outbox_pending)
_OUTBOX_PENDING = "sent_at IS NULL AND set_aside_at IS NULL"
#: the rows a prune reads, and so at most deletes, in one transaction (a window of a table in
#: its primary key's order): a huge table is never held in one long transaction or lock
PRUNE_BATCH = 1000
_QUEUE_COLS = (
    "id, broker, trigger_name, source, event_id, headers, body, state, phase, "
    "attempt, due_at, outgoing, created_at, last_error"
)


def _user(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        disabled=bool(row["disabled"]),
        created_at=_ts(row["created_at"]),
    )


def _invoice(row: dict[str, Any]) -> InvoiceRecord:
    return InvoiceRecord(
        id=row["id"],
        owner_id=row["owner_id"],
        number=row["number"],
        status=row["status"],
        source=row["source"],
        raw_file_id=row["raw_file_id"],
        formats=tuple(f for f in row["formats"].split(",") if f),
        error=row["error"],
        idempotency_key=row["idempotency_key"],
        request_sha256=row["request_sha256"],
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        document_file_id=row["document_file_id"],
    )


def _artifact(row: dict[str, Any]) -> Artifact:
    return Artifact(
        invoice_id=row["invoice_id"],
        format=row["format"],
        file_id=row["file_id"],
        size=int(row["size"]),
        sha256=row["sha256"],
        created_at=_ts(row["created_at"]),
    )


def _joined_artifacts(rows: list[dict[str, Any]]) -> dict[str, Artifact]:
    """The artifacts, by format, of rows joined with ``_JOINED_ARTIFACT_COLS`` (a row whose
    ``a_format`` is NULL joined none)."""
    return {
        row["a_format"]: _artifact({name: row["a_" + name] for name in _ARTIFACT_NAMES})
        for row in rows
        if row["a_format"] is not None
    }


def _notification(row: dict[str, Any]) -> Notification:
    return Notification(
        invoice_id=row["invoice_id"],
        kind=row["kind"],
        recipient=row["recipient"],
        state=row["state"],
        claimed_at=as_datetime(row["claimed_at"]),
        sent_at=as_datetime(row["sent_at"]),
        provider_message_id=row["provider_message_id"],
        claimed_by=row["claimed_by"],
    )


def _check_kind(kind: str) -> None:
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")


def _claim(
    tx: Tx,
    invoice_id: str,
    kind: str,
    recipient: str,
    now: datetime,
    claimer: str | None,
    reclaim_after: timedelta | None,
) -> bool:
    """The one statement that decides a notification claim: a new row, or a released one (with
    ``reclaim_after``: also one claimed before ``now - reclaim_after``) taken over, recording
    ``claimer`` as ``claimed_by`` (None: unknown). True when this call holds the claim."""
    retake = "notifications.state = 'released'"
    params: list[Any] = [invoice_id, kind, recipient, now, claimer]
    if reclaim_after is not None:
        retake += " OR (notifications.state = 'claimed' AND notifications.claimed_at < ?)"
        params.append(now - reclaim_after)
    row = tx.execute(
        f"INSERT INTO notifications ({_NOTIFICATION_COLS}) "
        "VALUES (?, ?, ?, 'claimed', ?, NULL, NULL, ?) "
        "ON CONFLICT (invoice_id, kind) DO UPDATE SET state = 'claimed', "
        "recipient = excluded.recipient, claimed_at = excluded.claimed_at, "
        f"claimed_by = excluded.claimed_by WHERE {retake} RETURNING invoice_id",
        params,
    ).one()
    return row is not None


def _outbox(row: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(
        id=int(row["id"]),
        event_id=row["event_id"],
        type=row["type"],
        source=row["source"],
        subject=row["subject"],
        data=json.loads(row["data"]),
        extensions=json.loads(row["extensions"]),
        created_at=_ts(row["created_at"]),
        sent_at=as_datetime(row["sent_at"]),
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        set_aside_at=as_datetime(row["set_aside_at"]),
    )


def _queued(row: dict[str, Any]) -> QueuedDelivery:
    return QueuedDelivery(
        id=int(row["id"]),
        broker=row["broker"],
        trigger=row["trigger_name"],
        source=row["source"],
        event_id=row["event_id"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
        state=row["state"],
        phase=row["phase"],
        attempt=int(row["attempt"]),
        due_at=_ts(row["due_at"]),
        outgoing=json.loads(row["outgoing"]) if row["outgoing"] else None,
        created_at=_ts(row["created_at"]),
        last_error=row["last_error"],
    )


def _ts(value: Any) -> datetime:
    result = as_datetime(value)
    if result is None:
        raise TypeError("timestamp column is NULL")
    return result


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------
# the repository
# --------------------------------------------------------------------------------------------


class SQLRepository(ABC):
    """Implements :class:`~invoiceflow.stores.protocols.Repository` on top of an adapter's
    transactions. Each public method is exactly one transaction."""

    dialect: str = "?"
    #: the condition of the unique index of numbers, invoices_owner_number (migration 0005),
    #: in the dialect's own words: a query must repeat it word for word for SQLite's planner
    #: to use that index (PostgreSQL proves it from any equivalent form)
    HOLDS_ITS_NUMBER = "NOT number_reused"

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or utc_now

    # -- adapter hooks -------------------------------------------------------------------------

    @abstractmethod
    def _transaction(
        self, *, write: bool = True, one_statement: bool = False
    ) -> AbstractContextManager[Tx]:
        """One transaction: commits when the block ends, rolls back on an exception. Driver
        connection/operational errors come out as Unavailable, lost races as Conflict.
        ``one_statement``: the block runs a single statement that writes, atomic on its own,
        so it runs in autocommit, without BEGIN and COMMIT (two round trips fewer on
        PostgreSQL); the hot writers of every invoice are such statements (processed events,
        the outbox, notification states, the embedded broker's queue)."""

    @abstractmethod
    def _migration_transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction that holds the migration lock (only one migrator at a time)."""

    @abstractmethod
    def close(self) -> None: ...

    _SCHEMA_MIGRATIONS_DDL = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        migrations = load_migrations(self.dialect)
        applied_now: list[str] = []
        with self._migration_transaction() as tx:
            tx.script(self._SCHEMA_MIGRATIONS_DDL)
            done = {r["version"] for r in tx.execute("SELECT version FROM schema_migrations").all()}
            for migration in migrations:
                if migration.version in done:
                    continue
                tx.script(migration.sql)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, self._now()),
                )
                applied_now.append(migration.version)
        return applied_now

    def ping(self) -> None:
        with self._transaction(write=False) as tx:
            tx.execute("SELECT 1").one()

    def __enter__(self) -> SQLRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        return _ts(self._clock())

    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self, email: str, password_hash: str, *, user_id: str | None = None, disabled: bool = False
    ) -> User | None:
        with self._transaction() as tx:
            row = tx.execute(
                f"INSERT INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?) "
                f"ON CONFLICT DO NOTHING RETURNING {_USER_COLS}",
                (
                    user_id or str(uuid.uuid4()),
                    normalize_email(email),
                    password_hash,
                    disabled,
                    self._now(),
                ),
            ).one()
        return _user(row) if row else None

    def get_user(self, user_id: str) -> User | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(f"SELECT {_USER_COLS} FROM users WHERE id = ?", (user_id,)).one()
        return _user(row) if row else None

    def get_user_by_email(self, email: str) -> User | None:
        if "\x00" in email:  # no address holds one (and PostgreSQL text cannot)
            return None
        with self._transaction(write=False) as tx:
            row = tx.execute(
                f"SELECT {_USER_COLS} FROM users WHERE lower(email) = ?", (normalize_email(email),)
            ).one()
        return _user(row) if row else None

    def set_user_disabled(self, user_id: str, disabled: bool) -> bool:
        with self._transaction() as tx:
            return (
                tx.execute(
                    "UPDATE users SET disabled = ? WHERE id = ?", (disabled, user_id)
                ).rowcount
                == 1
            )

    def list_users(self) -> list[User]:
        with self._transaction(write=False) as tx:
            rows = tx.execute(f"SELECT {_USER_COLS} FROM users ORDER BY email").all()
        return [_user(r) for r in rows]

    # -- branding settings ---------------------------------------------------------------------

    def get_branding(self, owner_id: str) -> str | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                "SELECT settings FROM branding_settings WHERE owner_id = ?", (owner_id,)
            ).one()
        return str(row["settings"]) if row else None

    def put_branding(self, owner_id: str, settings_json: str) -> None:
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO branding_settings (owner_id, settings, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (owner_id) DO UPDATE "
                "SET settings = excluded.settings, updated_at = excluded.updated_at",
                (owner_id, settings_json, self._now()),
            )

    # -- login throttling ----------------------------------------------------------------------

    def reserve_login_attempt(self, account: str, client: str | None, policy: LoginPolicy) -> float:
        now = self._now()
        with self._transaction() as tx:
            # the upserts lock both rows (Postgres) / the database (SQLite) until commit, so
            # concurrent attempts are decided one after the other; client row first, always
            tokens = 0.0
            wait = 0.0
            if client is not None:
                row = tx.execute(
                    "INSERT INTO login_clients (client, tokens, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (client) DO UPDATE SET client = excluded.client "
                    "RETURNING tokens, updated_at",
                    (client, float(policy.client_burst), now),
                ).one()
                if row is None:  # pragma: no cover - RETURNING always returns the row
                    raise Conflict("the login throttle row vanished; retry")
                rate = policy.client_per_minute / 60.0
                elapsed = max(0.0, (now - _ts(row["updated_at"])).total_seconds())
                tokens = min(float(policy.client_burst), float(row["tokens"]) + elapsed * rate)
                if tokens < 1.0:
                    wait = (1.0 - tokens) / rate
            row = tx.execute(
                "INSERT INTO login_accounts (account, failures, locked_until, updated_at) "
                "VALUES (?, 0, NULL, ?) "
                "ON CONFLICT (account) DO UPDATE SET account = excluded.account "
                "RETURNING failures, locked_until, updated_at",
                (account, now),
            ).one()
            if row is None:  # pragma: no cover - RETURNING always returns the row
                raise Conflict("the login throttle row vanished; retry")
            failures = int(row["failures"])
            if now - _ts(row["updated_at"]) > policy.failure_memory:
                failures = 0
            locked_until = as_datetime(row["locked_until"])
            if failures and locked_until is not None and locked_until > now:
                wait = max(wait, (locked_until - now).total_seconds())
            if wait > 0:
                return wait
            if client is not None:
                tx.execute(
                    "UPDATE login_clients SET tokens = ?, updated_at = ? WHERE client = ?",
                    (tokens - 1.0, now, client),
                )
            failures += 1
            delay = policy.delay(failures)
            tx.execute(
                "UPDATE login_accounts SET failures = ?, locked_until = ?, "
                "updated_at = ? WHERE account = ?",
                (failures, now + timedelta(seconds=delay) if delay else None, now, account),
            )
        return 0.0

    def finish_login_attempt(self, account: str, outcome: LoginOutcome) -> None:
        if outcome == "failed":
            return
        with self._transaction() as tx:
            if outcome == "succeeded":
                tx.execute("DELETE FROM login_accounts WHERE account = ?", (account,))
            elif outcome == "abandoned":
                tx.execute(
                    "UPDATE login_accounts SET failures = failures - 1 "
                    "WHERE account = ? AND failures > 0",
                    (account,),
                )
            else:
                raise ValueError(f"unknown login outcome {outcome!r}")

    def reset_login_throttle(self, account: str) -> bool:
        with self._transaction() as tx:
            return (
                tx.execute("DELETE FROM login_accounts WHERE account = ?", (account,)).rowcount == 1
            )

    def prune_login_throttle(self, older_than: datetime) -> int:
        with self._transaction() as tx:
            n = tx.execute(
                "DELETE FROM login_accounts WHERE updated_at < ? AND "
                "(locked_until IS NULL OR locked_until < ?)",
                (older_than, older_than),
            ).rowcount
            n += tx.execute(
                "DELETE FROM login_clients WHERE updated_at < ?", (older_than,)
            ).rowcount
        return n

    # -- invoices ------------------------------------------------------------------------------

    def accept_invoice(
        self,
        invoice: NewInvoiceRecord,
        events: Sequence[NewOutboxEvent] = (),
        *,
        complete: CompleteAccepted | None = None,
    ) -> Accepted:
        if invoice.source not in INVOICE_SOURCES:
            raise ValueError(f"unknown invoice source {invoice.source!r}")
        if (invoice.assign_number is None) == (invoice.number == ""):
            raise ValueError("an invoice has either a number or assign_number")
        now = self._now()
        try:
            with self._transaction() as tx:
                if invoice.idempotency_key is not None:
                    row = tx.execute(
                        f"SELECT {_INVOICE_COLS} FROM invoices "
                        "WHERE owner_id = ? AND idempotency_key = ?",
                        (invoice.owner_id, invoice.idempotency_key),
                    ).one()
                    if row is not None:  # a replay: nothing written, no number taken
                        return self._replayed(invoice, _invoice(row))
                number = invoice.number or self._next_number(tx, invoice)
                # DO NOTHING on any unique index: the idempotency key or the number
                row = tx.execute(
                    f"INSERT INTO invoices ({_INVOICE_COLS}) "
                    "VALUES (?, ?, ?, 'received', ?, ?, ?, NULL, ?, ?, ?, ?, ?) "
                    f"ON CONFLICT DO NOTHING RETURNING {_INVOICE_COLS}",
                    (
                        invoice.id,
                        invoice.owner_id,
                        number,
                        invoice.source,
                        invoice.raw_file_id,
                        ",".join(invoice.formats),
                        invoice.idempotency_key,
                        invoice.request_sha256,
                        now,
                        now,
                        invoice.document_file_id,
                    ),
                ).one()
                if row is None:  # a concurrent request won: give a taken number back
                    raise _Refused(number)
                more = complete(number) if complete is not None else ()
                self._insert_outbox(tx, [*events, *more])
                return Accepted(_invoice(row), created=True)
        except _Refused as refused:
            number = refused.number
        # the key was used meanwhile (a concurrent replay), or the number is the owner's already
        if invoice.idempotency_key is not None:
            earlier = self.find_invoice_by_idempotency_key(
                invoice.owner_id, invoice.idempotency_key
            )
            if earlier is not None:
                return self._replayed(invoice, earlier)
        holder = self.get_invoice_by_number(invoice.owner_id, number)
        if holder is None or invoice.assign_number is not None:
            # deleted meanwhile, or an upload took the number just assigned: retry
            raise Conflict("the invoice changed while it was being accepted; retry")
        raise NumberAlreadyUsed(
            number,
            f"invoice number {number} is already used by invoice {holder.id} of "
            f"{holder.created_at.date().isoformat()}; send another number, or none and the "
            "next number of your series is assigned",
        )

    @staticmethod
    def _replayed(invoice: NewInvoiceRecord, earlier: InvoiceRecord) -> Accepted:
        if invoice.request_sha256 is not None and earlier.request_sha256 != invoice.request_sha256:
            raise IdempotencyConflict(
                f"Idempotency-Key {invoice.idempotency_key!r} was used for another request"
            )
        return Accepted(earlier, created=False)

    def _next_number(self, tx: Tx, invoice: NewInvoiceRecord) -> str:
        """The next number of the owner's series, inside the accepting transaction: the
        counter's upsert locks its row until the transaction ends (SQLite: the database is
        locked by BEGIN IMMEDIATE), so concurrent acceptances take numbers one after the other
        and a rollback gives the number back. Numbers the owner's invoices hold already
        (uploaded with their number, or given before the series changed) are passed over in
        one step: the lowest free sequence number above the counter, which then moves there
        (those numbers are not gaps: those invoices hold them)."""
        assign = invoice.assign_number
        assert assign is not None
        row = tx.execute(
            "INSERT INTO number_counters (owner_id, period, last_seq) VALUES (?, ?, 1) "
            "ON CONFLICT (owner_id, period) DO UPDATE "
            "SET last_seq = number_counters.last_seq + 1 RETURNING last_seq",
            (invoice.owner_id, assign.period),
        ).one()
        if row is None:  # pragma: no cover - RETURNING always returns the row
            raise Conflict("the number counter vanished; retry")
        seq = int(row["last_seq"])
        number = assign.format(seq)
        # the rows of the unique index invoices_owner_number (a number reused before
        # migration 0005 is held by its first invoice, which is in it)
        holds = self.HOLDS_ITS_NUMBER
        taken = tx.execute(
            f"SELECT 1 AS hit FROM invoices WHERE owner_id = ? AND number = ? AND {holds}",
            (invoice.owner_id, number),
        ).one()
        if taken is None:
            return number
        held = {
            held_seq
            for r in tx.execute(
                "SELECT number FROM invoices WHERE owner_id = ? AND number LIKE ? ESCAPE '\\' "
                f"AND {holds}",
                (invoice.owner_id, _like_prefix(assign.prefix)),
            ).all()
            if (held_seq := assign.seq_of(r["number"])) is not None
        }
        while seq in held:
            seq += 1
        tx.execute(
            "UPDATE number_counters SET last_seq = ? WHERE owner_id = ? AND period = ?",
            (seq, invoice.owner_id, assign.period),
        )
        return assign.format(seq)

    def get_invoice_by_number(self, owner_id: str, number: str) -> InvoiceRecord | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                f"SELECT {_INVOICE_COLS} FROM invoices WHERE owner_id = ? AND number = ? "
                "ORDER BY created_at, id LIMIT 1",
                (owner_id, number),
            ).one()
        return _invoice(row) if row else None

    # -- numbering -----------------------------------------------------------------------------

    def get_number_series(self, owner_id: str) -> tuple[str, bool] | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                "SELECT pattern, yearly_reset FROM number_series WHERE owner_id = ?", (owner_id,)
            ).one()
        return (row["pattern"], bool(row["yearly_reset"])) if row else None

    def set_number_series(self, owner_id: str, pattern: str, yearly_reset: bool) -> None:
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO number_series (owner_id, pattern, yearly_reset, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (owner_id) DO UPDATE SET "
                "pattern = excluded.pattern, yearly_reset = excluded.yearly_reset, "
                "updated_at = excluded.updated_at",
                (owner_id, pattern, yearly_reset, self._now()),
            )

    def number_counters(self, owner_id: str) -> list[NumberCounter]:
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT period, last_seq FROM number_counters WHERE owner_id = ? ORDER BY period",
                (owner_id,),
            ).all()
        return [NumberCounter(r["period"], int(r["last_seq"])) for r in rows]

    def find_invoice_by_idempotency_key(self, owner_id: str, key: str) -> InvoiceRecord | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                f"SELECT {_INVOICE_COLS} FROM invoices WHERE owner_id = ? AND idempotency_key = ?",
                (owner_id, key),
            ).one()
        return _invoice(row) if row else None

    def get_invoice(self, invoice_id: str, *, owner_id: str | None = None) -> InvoiceRecord | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                f"SELECT {_INVOICE_COLS} FROM invoices WHERE id = ?", (invoice_id,)
            ).one()
        if row is None or (owner_id is not None and row["owner_id"] != owner_id):
            return None
        return _invoice(row)

    def list_invoices(
        self, owner_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> InvoicePage:
        limit = max(1, min(int(limit), MAX_PAGE_SIZE))
        sql = f"SELECT {_INVOICE_COLS} FROM invoices WHERE owner_id = ?"
        params: list[Any] = [owner_id]
        if cursor:
            created_at, last_id = decode_cursor(cursor)
            sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            params += [created_at, created_at, last_id]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit + 1)
        with self._transaction(write=False) as tx:
            rows = tx.execute(sql, params).all()
        items = tuple(_invoice(r) for r in rows[:limit])
        more = len(rows) > limit
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
        return InvoicePage(items, next_cursor)

    def stalled_invoices(
        self,
        changed_before: datetime,
        *,
        limit: int = MAX_PAGE_SIZE,
        after: StalledInvoice | None = None,
    ) -> list[StalledInvoice]:
        limit = max(1, min(int(limit), MAX_PAGE_SIZE))
        cutoff = _ts(changed_before)
        # one pass over the invoices that changed before the cutoff; a received one is found
        # when no artifact is newer, a ready or failed one when its email of that kind (the
        # notification kinds are the statuses' names) was neither sent nor claimed since
        sql = (
            f"SELECT {_INVOICE_COLS} FROM invoices i WHERE updated_at < ? AND ("
            "(status = 'received' AND NOT EXISTS (SELECT 1 FROM artifacts a "
            "WHERE a.invoice_id = i.id AND a.created_at >= ?)) "
            "OR (status IN ('ready', 'failed') AND NOT EXISTS (SELECT 1 FROM notifications n "
            "WHERE n.invoice_id = i.id AND n.kind = i.status "
            "AND (n.state = 'sent' OR n.claimed_at >= ?))))"
        )
        params: list[Any] = [cutoff, cutoff, cutoff]
        if after is not None:
            last = after.invoice
            sql += " AND (updated_at > ? OR (updated_at = ? AND id > ?))"
            params += [last.updated_at, last.updated_at, last.id]
        sql += " ORDER BY updated_at, id LIMIT ?"
        params.append(limit)
        with self._transaction(write=False) as tx:
            invoices = [_invoice(r) for r in tx.execute(sql, params).all()]
            ids = [i.id for i in invoices]
            marks = ", ".join("?" for _ in invoices)
            rows = (
                tx.execute(
                    f"SELECT {_ARTIFACT_COLS} FROM artifacts WHERE invoice_id IN ({marks})", ids
                ).all()
                if invoices
                else []
            )
            emailed = [i.id for i in invoices if i.status != "received"]
            email_rows = (
                tx.execute(
                    f"SELECT {_NOTIFICATION_COLS} FROM notifications WHERE invoice_id IN "
                    f"({', '.join('?' for _ in emailed)})",
                    emailed,
                ).all()
                if emailed
                else []
            )
        artifacts: dict[str, dict[str, Artifact]] = {i.id: {} for i in invoices}
        for row in rows:
            artifact = _artifact(row)
            artifacts[artifact.invoice_id][artifact.format] = artifact
        status = {i.id: i.status for i in invoices}
        # each invoice's email of its status (a ready one may also hold a failure email)
        emails = {
            n.invoice_id: n
            for n in map(_notification, email_rows)
            if n.kind == status[n.invoice_id]
        }
        found = []
        for invoice in invoices:
            email = emails.get(invoice.id)
            changes = [invoice.updated_at, *(a.created_at for a in artifacts[invoice.id].values())]
            if email is not None and email.claimed_at is not None:
                changes.append(email.claimed_at)
            found.append(StalledInvoice(invoice, artifacts[invoice.id], max(changes), email))
        return found

    def mark_invoice_failed(
        self,
        invoice_id: str,
        error: str,
        events: Sequence[NewOutboxEvent] = (),
        *,
        unless_complete: Sequence[str] = (),
    ) -> bool:
        condition = ""
        args: tuple[str, ...] = ()
        if unless_complete:
            rendered, args = _rendered_formats(invoice_id, unless_complete)
            condition = f" AND {rendered} < {len(set(unless_complete))}"
        with self._transaction() as tx:
            changed = (
                tx.execute(
                    "UPDATE invoices SET status = 'failed', error = ?, updated_at = ? "
                    f"WHERE id = ? AND status = 'received'{condition}",
                    (_clip(error), self._now(), invoice_id, *args),
                ).rowcount
                == 1
            )
            if changed:
                self._insert_outbox(tx, events)
        return changed

    def mark_ready_if_complete(
        self,
        invoice_id: str,
        required_formats: Sequence[str],
        events: Sequence[NewOutboxEvent] = (),
    ) -> bool:
        if not required_formats:
            raise ValueError("required_formats is empty")
        rendered, args = _rendered_formats(invoice_id, required_formats)
        with self._transaction() as tx:
            changed = (
                tx.execute(
                    "UPDATE invoices SET status = 'ready', error = NULL, updated_at = ? "
                    f"WHERE id = ? AND status <> 'ready' AND {rendered} = ?",
                    (self._now(), invoice_id, *args, len(set(required_formats))),
                ).rowcount
                == 1
            )
            if changed:
                self._insert_outbox(tx, events)
        return changed

    def mark_ready_and_get(self, invoice_id: str) -> RenderedInvoice | None:
        # two statements, each in autocommit (two round trips, not the five of a
        # transaction): artifacts are never removed, so an invoice read complete stays
        # complete, and the UPDATE's condition on the status makes it ready for one caller only
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_JOINED_INVOICE_COLS}, {_JOINED_ARTIFACT_COLS} FROM invoices i "
                "LEFT JOIN artifacts a ON a.invoice_id = i.id WHERE i.id = ? ORDER BY a.format",
                (invoice_id,),
            ).all()
        if not rows:
            return None
        invoice = _invoice(rows[0])
        artifacts = _joined_artifacts(rows)
        became_ready = False
        if invoice.status != "ready" and invoice.formats and set(invoice.formats) <= set(artifacts):
            now = self._now()
            with self._transaction(one_statement=True) as tx:
                became_ready = (
                    tx.execute(
                        "UPDATE invoices SET status = 'ready', error = NULL, updated_at = ? "
                        "WHERE id = ? AND status <> 'ready'",
                        (now, invoice_id),
                    ).rowcount
                    == 1
                )
            invoice = replace(invoice, status="ready", error=None, updated_at=now)
        return RenderedInvoice(invoice, artifacts, became_ready)

    # -- artifacts -----------------------------------------------------------------------------

    def record_artifact(
        self, invoice_id: str, format: str, file_id: str, size: int, sha256: str
    ) -> Artifact:
        with self._transaction(one_statement=True) as tx:
            row = tx.execute(
                f"INSERT INTO artifacts ({_ARTIFACT_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (invoice_id, format) DO NOTHING RETURNING {_ARTIFACT_COLS}",
                (invoice_id, format, file_id, int(size), sha256, self._now()),
            ).one()
        if row is None:
            # recorded before (a redelivery): the row that stands, committed and never removed
            row = self._artifact_row(invoice_id, format)
        if row is None:  # pragma: no cover - artifacts are never deleted
            raise Conflict("the artifact changed while it was being recorded; retry")
        return _artifact(row)

    def _artifact_row(self, invoice_id: str, format: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as tx:
            return tx.execute(
                f"SELECT {_ARTIFACT_COLS} FROM artifacts WHERE invoice_id = ? AND format = ?",
                (invoice_id, format),
            ).one()

    def get_artifact(self, invoice_id: str, format: str) -> Artifact | None:
        row = self._artifact_row(invoice_id, format)
        return _artifact(row) if row else None

    def list_artifacts(self, invoice_id: str) -> list[Artifact]:
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_ARTIFACT_COLS} FROM artifacts WHERE invoice_id = ? ORDER BY format",
                (invoice_id,),
            ).all()
        return [_artifact(r) for r in rows]

    # -- notifications -------------------------------------------------------------------------

    def claim_notification(
        self,
        invoice_id: str,
        kind: NotificationKind,
        recipient: str,
        *,
        reclaim_after: timedelta | None = None,
    ) -> bool:
        _check_kind(kind)
        now = self._now()
        with self._transaction() as tx:
            return _claim(tx, invoice_id, kind, recipient, now, None, reclaim_after)

    def claim_notification_for(
        self,
        invoice_id: str,
        kind: NotificationKind,
        recipient: str,
        claimer: str,
        *,
        reclaim_after: timedelta,
    ) -> NotificationClaim:
        _check_kind(kind)
        now = self._now()
        select = f"SELECT {_NOTIFICATION_COLS} FROM notifications WHERE invoice_id = ? AND kind = ?"
        with self._transaction() as tx:
            before = tx.execute(select, (invoice_id, kind)).one()
            if before is not None and before["state"] == "sent":
                return NotificationClaim(False, _notification(before))
            # the database decides who wins (one statement); the row read before only tells
            # the winner what it took over
            won = _claim(tx, invoice_id, kind, recipient, now, claimer or None, reclaim_after)
            if not won:
                # lost: the row that stands (PostgreSQL locked it; SQLite holds the write lock)
                before = tx.execute(select, (invoice_id, kind)).one()
        return NotificationClaim(won, _notification(before) if before else None)

    def mark_notification_sent(
        self, invoice_id: str, kind: NotificationKind, provider_message_id: str | None = None
    ) -> bool:
        with self._transaction(one_statement=True) as tx:
            return (
                tx.execute(
                    "UPDATE notifications SET state = 'sent', sent_at = ?, provider_message_id = ? "
                    "WHERE invoice_id = ? AND kind = ? AND state = 'claimed'",
                    (self._now(), provider_message_id, invoice_id, kind),
                ).rowcount
                == 1
            )

    def release_notification(self, invoice_id: str, kind: NotificationKind) -> bool:
        with self._transaction(one_statement=True) as tx:
            return (
                tx.execute(
                    "UPDATE notifications SET state = 'released' "
                    "WHERE invoice_id = ? AND kind = ? AND state = 'claimed'",
                    (invoice_id, kind),
                ).rowcount
                == 1
            )

    def get_notification(self, invoice_id: str, kind: NotificationKind) -> Notification | None:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                f"SELECT {_NOTIFICATION_COLS} FROM notifications WHERE invoice_id = ? AND kind = ?",
                (invoice_id, kind),
            ).one()
        return _notification(row) if row else None

    # -- processed CloudEvents -----------------------------------------------------------------

    def mark_processed(self, consumer: str, source: str, event_id: str) -> bool:
        with self._transaction(one_statement=True) as tx:
            row = tx.execute(
                "INSERT INTO processed_events (consumer, source, event_id, processed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (consumer, source, event_id) DO NOTHING "
                "RETURNING event_id",
                (consumer, source, event_id, self._now()),
            ).one()
        return row is not None

    def is_processed(self, consumer: str, source: str, event_id: str) -> bool:
        with self._transaction(write=False) as tx:
            row = tx.execute(
                "SELECT 1 AS hit FROM processed_events WHERE consumer = ? "
                "AND source = ? AND event_id = ?",
                (consumer, source, event_id),
            ).one()
        return row is not None

    def prune_processed_events(
        self, processed_before: datetime, *, batch: int = PRUNE_BATCH, dry_run: bool = False
    ) -> int:
        return self._prune(
            "processed_events",
            "consumer, source, event_id",
            "processed_at < ?",
            processed_before,
            batch=batch,
            dry_run=dry_run,
        )

    def step_invoice(
        self,
        consumer: str,
        source: str,
        event_id: str,
        invoice_id: str,
        formats: Sequence[str],
    ) -> StepInvoice:
        # one row per artifact found (at least one row: the invoice's columns are NULL when it
        # does not exist, the artifact's when it has none of the formats)
        marks = ", ".join("?" for _ in formats) or "NULL"
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = ? AND source = ? "
                f"AND event_id = ?) AS processed, {_JOINED_INVOICE_COLS}, {_JOINED_ARTIFACT_COLS} "
                "FROM (SELECT 1 AS one) AS q "
                "LEFT JOIN invoices i ON i.id = ? "
                f"LEFT JOIN artifacts a ON a.invoice_id = i.id AND a.format IN ({marks})",
                (consumer, source, event_id, invoice_id, *formats),
            ).all()
        first = rows[0]
        return StepInvoice(
            processed=bool(first["processed"]),
            invoice=_invoice(first) if first["id"] is not None else None,
            artifacts=_joined_artifacts(rows),
        )

    # -- outbox --------------------------------------------------------------------------------

    def _insert_outbox(self, tx: Tx, events: Sequence[NewOutboxEvent]) -> list[OutboxEvent]:
        """Enqueue inside the caller's transaction. The same (source, event_id) is stored once;
        the stored row is returned for it."""
        stored: list[OutboxEvent] = []
        for event in events:
            row = tx.execute(
                f"INSERT INTO outbox ({_OUTBOX_COLS.removeprefix('id, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, NULL, NULL) "
                f"ON CONFLICT (source, event_id) DO NOTHING RETURNING {_OUTBOX_COLS}",
                (
                    event.event_id,
                    event.type,
                    event.source,
                    event.subject,
                    dump_json(event.data),
                    dump_json(event.extensions),
                    self._now(),
                ),
            ).one()
            if row is None:
                row = tx.execute(
                    f"SELECT {_OUTBOX_COLS} FROM outbox WHERE source = ? AND event_id = ?",
                    (event.source, event.event_id),
                ).one()
            if row is not None:
                stored.append(_outbox(row))
        return stored

    def pending_outbox_events(self, limit: int = 100) -> list[OutboxEvent]:
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE {_OUTBOX_PENDING} ORDER BY id LIMIT ?",
                (max(1, int(limit)),),
            ).all()
        return [_outbox(r) for r in rows]

    #: appended to the claim's inner SELECT (Postgres: skip rows another relay is claiming)
    _SKIP_LOCKED = ""

    def claim_outbox_events(
        self,
        limit: int = 100,
        *,
        lease: float = 60.0,
        keys: Sequence[tuple[str, str]] | None = None,
    ) -> list[OutboxEvent]:
        now = self._now()
        sql = (
            f"SELECT id FROM outbox WHERE {_OUTBOX_PENDING} "
            "AND (claimed_until IS NULL OR claimed_until < ?)"
        )
        params: list[Any] = [now]
        if keys is not None:
            if not keys:
                return []
            sql += " AND (" + " OR ".join("(source = ? AND event_id = ?)" for _ in keys) + ")"
            params += [value for key in keys for value in key]
        sql += f" ORDER BY id LIMIT ?{self._SKIP_LOCKED}"
        params.append(max(1, int(limit)))
        with self._transaction(one_statement=True) as tx:
            rows = tx.execute(
                f"UPDATE outbox SET claimed_until = ? WHERE id IN ({sql}) RETURNING {_OUTBOX_COLS}",
                (now + timedelta(seconds=lease), *params),
            ).all()
        return sorted((_outbox(r) for r in rows), key=lambda e: e.id)

    def release_outbox_claims(self, outbox_ids: Sequence[int] | None) -> int:
        if outbox_ids is None:  # every claim (their relays are known to be gone)
            with self._transaction(one_statement=True) as tx:
                return tx.execute(
                    "UPDATE outbox SET claimed_until = NULL WHERE sent_at IS NULL "
                    "AND claimed_until IS NOT NULL"
                ).rowcount
        if not outbox_ids:
            return 0
        marks = ", ".join("?" for _ in outbox_ids)
        with self._transaction(one_statement=True) as tx:
            return tx.execute(
                f"UPDATE outbox SET claimed_until = NULL WHERE id IN ({marks}) AND sent_at IS NULL",
                tuple(outbox_ids),
            ).rowcount

    def mark_outbox_sent(self, outbox_id: int) -> bool:
        with self._transaction(one_statement=True) as tx:
            return (
                tx.execute(
                    "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, "
                    "claimed_until = NULL WHERE id = ? AND sent_at IS NULL",
                    (self._now(), outbox_id),
                ).rowcount
                == 1
            )

    def record_outbox_failure(self, outbox_id: int, error: str) -> bool:
        with self._transaction(one_statement=True) as tx:
            return (
                tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                    f"claimed_until = NULL WHERE id = ? AND {_OUTBOX_PENDING}",
                    (_clip(error), outbox_id),
                ).rowcount
                == 1
            )

    def set_outbox_event_aside(self, outbox_id: int, error: str) -> bool:
        with self._transaction(one_statement=True) as tx:
            return (
                tx.execute(
                    "UPDATE outbox SET set_aside_at = ?, attempts = attempts + 1, "
                    f"last_error = ?, claimed_until = NULL WHERE id = ? AND {_OUTBOX_PENDING}",
                    (self._now(), _clip(error), outbox_id),
                ).rowcount
                == 1
            )

    def set_aside_outbox_events(self, limit: int = 100) -> list[OutboxEvent]:
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE set_aside_at IS NOT NULL "
                "ORDER BY id LIMIT ?",
                (max(1, int(limit)),),
            ).all()
        return [_outbox(r) for r in rows]

    def retry_outbox_events(self, outbox_ids: Sequence[int] | None) -> int:
        sql = "UPDATE outbox SET set_aside_at = NULL WHERE set_aside_at IS NOT NULL"
        params: tuple[int, ...] = ()
        if outbox_ids is not None:
            if not outbox_ids:
                return 0
            sql += f" AND id IN ({', '.join('?' for _ in outbox_ids)})"
            params = tuple(outbox_ids)
        with self._transaction(one_statement=True) as tx:
            return tx.execute(sql, params).rowcount

    def prune_outbox(
        self, sent_before: datetime, *, batch: int = PRUNE_BATCH, dry_run: bool = False
    ) -> int:
        # a sent row is never set aside (only a pending one is): the second condition says so
        return self._prune(
            "outbox",
            "id",
            "sent_at < ? AND set_aside_at IS NULL",
            sent_before,
            batch=batch,
            dry_run=dry_run,
        )

    def _prune(
        self, table: str, key: str, old: str, before: datetime, *, batch: int, dry_run: bool
    ) -> int:
        """Delete the rows of ``table`` that ``old`` (a condition with one ``?``: ``before``)
        picks, walking the table in the order of its primary key ``key`` (its columns, comma
        separated) in windows of ``batch`` rows, one transaction each: each statement reads
        the primary key's index from where the last window ended and at most ``batch`` rows
        (no index on the time column is needed, nor a scan of the table per batch; EXPLAIN
        in docs/operations.md, Retention). A key written into a window meanwhile pushes one
        of its old rows past the window's end, left to the next prune. ``dry_run``: only
        count them."""
        if dry_run:
            with self._transaction(write=False) as tx:
                row = tx.execute(f"SELECT count(*) AS n FROM {table} WHERE {old}", (before,)).one()
            return int(row["n"]) if row is not None else 0
        columns = key.split(", ")
        after: tuple[Any, ...] = ()
        deleted = 0
        while True:
            since = f"WHERE ({key}) > ({', '.join('?' for _ in columns)}) " if after else ""
            window = f"SELECT {key} FROM {table} {since}ORDER BY {key}"
            with self._transaction() as tx:
                last = tx.execute(f"{window} LIMIT 1 OFFSET ?", (*after, batch - 1)).one()
                deleted += tx.execute(
                    f"DELETE FROM {table} WHERE {old} AND ({key}) IN ({window} LIMIT ?)",
                    (before, *after, batch),
                ).rowcount
            if last is None:  # the window reached the end of the table
                return deleted
            after = tuple(last[column] for column in columns)

    # -- the embedded broker's durable queue ---------------------------------------------------

    def enqueue_deliveries(
        self,
        broker: str,
        triggers: Sequence[str],
        source: str,
        event_id: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> list[QueuedDelivery]:
        now = self._now()
        stored: list[QueuedDelivery] = []
        with self._transaction() as tx:
            for trigger in triggers:
                row = tx.execute(
                    f"INSERT INTO broker_queue ({_QUEUE_COLS.removeprefix('id, ')}) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'pending', 'subscriber', 0, ?, NULL, ?, NULL) "
                    "ON CONFLICT (broker, trigger_name, source, event_id) DO UPDATE SET "
                    "headers = excluded.headers, body = excluded.body, state = 'pending', "
                    "phase = 'subscriber', attempt = 0, due_at = excluded.due_at, "
                    "outgoing = NULL, last_error = NULL WHERE broker_queue.state = 'parked' "
                    f"RETURNING {_QUEUE_COLS}",
                    (
                        broker,
                        trigger,
                        source,
                        event_id,
                        dump_json(dict(headers)),
                        bytes(body),
                        now,
                        now,
                    ),
                ).one()
                if row is not None:
                    stored.append(_queued(row))
        return stored

    def queued_deliveries(self, broker: str, *, state: str = "pending") -> list[QueuedDelivery]:
        with self._transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_QUEUE_COLS} FROM broker_queue WHERE broker = ? "
                "AND state = ? ORDER BY id",
                (broker, state),
            ).all()
        return [_queued(r) for r in rows]

    def reschedule_delivery(
        self,
        delivery_id: int,
        *,
        phase: str,
        attempt: int,
        due_at: datetime,
        outgoing: Mapping[str, Any] | None,
        error: str | None,
    ) -> bool:
        with self._transaction() as tx:
            return (
                tx.execute(
                    "UPDATE broker_queue SET phase = ?, attempt = ?, due_at = ?, outgoing = ?, "
                    "last_error = ? WHERE id = ? AND state = 'pending'",
                    (
                        phase,
                        attempt,
                        due_at,
                        None if outgoing is None else dump_json(outgoing),
                        None if error is None else _clip(error),
                        delivery_id,
                    ),
                ).rowcount
                == 1
            )

    def settle_delivery(self, delivery_id: int) -> bool:
        with self._transaction(one_statement=True) as tx:
            return tx.execute("DELETE FROM broker_queue WHERE id = ?", (delivery_id,)).rowcount == 1

    def park_delivery(self, delivery_id: int, error: str) -> bool:
        with self._transaction(one_statement=True) as tx:
            return (
                tx.execute(
                    "UPDATE broker_queue SET state = 'parked', last_error = ? "
                    "WHERE id = ? AND state = 'pending'",
                    (_clip(error), delivery_id),
                ).rowcount
                == 1
            )


class _Refused(Exception):
    """Rolls an acceptance back: a unique index refused the row (carries the number tried)."""

    def __init__(self, number: str) -> None:
        super().__init__(number)
        self.number = number


def iter_statements(script: str) -> Iterator[str]:
    """Split an SQL script into statements (SQLite runs one statement per call)."""
    import sqlite3

    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement and statement != ";":
                yield statement
    if buffer.strip() and not all(
        not ln.strip() or ln.strip().startswith("--") for ln in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer!r}")
