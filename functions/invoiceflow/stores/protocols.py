"""The storage interfaces: one SQL repository, one document store, each with two adapters.

Rows are small frozen dataclasses; the interfaces are :class:`typing.Protocol` classes, so the
rest of the code depends on these names only, never on psycopg2, sqlite3 or pymongo.

Contract (all adapters, checked by ``tests/stores``):

* every uniqueness decision (idempotency key, artifact, notification claim, processed event,
  outbox event id) is made by the database in one statement (``ON CONFLICT``), never by a
  read followed by a write;
* a database/document store that cannot be reached raises :class:`~invoiceflow.errors.Unavailable`
  (transient, retried); a write race the database refused raises
  :class:`~invoiceflow.errors.Conflict`;
* malformed document ids (empty, too long, ``../x``...) are simply *not found*.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

from invoiceflow.errors import Conflict
from invoiceflow.records import record

InvoiceStatus = Literal["received", "ready", "failed"]
InvoiceSource = Literal["http", "event"]
NotificationKind = Literal["ready", "failed"]
NotificationState = Literal["claimed", "sent", "released"]

INVOICE_STATUSES: tuple[str, ...] = ("received", "ready", "failed")
INVOICE_SOURCES: tuple[str, ...] = ("http", "event")
NOTIFICATION_KINDS: tuple[str, ...] = ("ready", "failed")

#: largest page :meth:`Repository.list_invoices` returns
MAX_PAGE_SIZE = 100


# --------------------------------------------------------------------------------------------
# SQL rows
# --------------------------------------------------------------------------------------------


@record
class User:
    id: str
    email: str
    password_hash: str = field(repr=False)
    disabled: bool
    created_at: datetime


@record
class NumberAssignment:
    """How :meth:`Repository.accept_invoice` numbers an invoice sent without a number: the
    next sequence number of the owner's counter ``period`` (``""``: one series; a year: that
    year's series), made a number by ``format`` (:func:`invoiceflow.numbering.format_number`).
    Built by :func:`invoiceflow.numbering.assignment`.

    Where a number of the series is taken already (uploaded with the invoice, or given before
    the owner changed the series), the repository reads the owner's numbers that begin with
    ``prefix`` once and takes the lowest sequence number above the counter that none of them
    holds (``seq_of``: the sequence number a number of this series stands for, else None)."""

    period: str
    format: Callable[[int], str]
    prefix: str
    seq_of: Callable[[str], int | None]


@record
class NewInvoiceRecord:
    """What :meth:`Repository.accept_invoice` stores. The caller picks ``id`` (a uuid4 string)
    so it can name the raw document (``raw_file_id``) before the row exists. ``number`` is
    the uploaded number, or ``""`` with ``assign_number`` for the server to assign one."""

    id: str
    owner_id: str
    number: str
    source: InvoiceSource
    raw_file_id: str
    formats: tuple[str, ...]
    idempotency_key: str | None = None
    request_sha256: str | None = None
    #: the completed document the renderers read (None: they read ``raw_file_id``)
    document_file_id: str | None = None
    assign_number: NumberAssignment | None = None


@record
class InvoiceRecord:
    id: str
    owner_id: str
    number: str
    status: InvoiceStatus
    source: InvoiceSource
    raw_file_id: str
    formats: tuple[str, ...]
    error: str | None
    idempotency_key: str | None
    request_sha256: str | None
    created_at: datetime
    updated_at: datetime
    #: the completed document (its number, the account's defaults) the renderers read; None
    #: for an invoice accepted before it existed (it renders from ``raw_file_id``)
    document_file_id: str | None = None

    @property
    def rendered_from(self) -> str:
        """The document-store id of the document its files are rendered from."""
        return self.document_file_id or self.raw_file_id


#: called inside the accepting transaction with the invoice's number once it is fixed: stores
#: what needs the number (the completed document) and returns the events to enqueue
CompleteAccepted = Callable[[str], Sequence["NewOutboxEvent"]]


@record
class NumberCounter:
    """The last sequence number an owner's series gave in a period (``""``: one series)."""

    period: str
    last_seq: int


@record
class Accepted:
    """Result of :meth:`Repository.accept_invoice`. ``created`` is False when the
    ``(owner, idempotency_key)`` pair already existed: ``invoice`` is then the earlier one and no
    event was enqueued."""

    invoice: InvoiceRecord
    created: bool


@record
class InvoicePage:
    items: tuple[InvoiceRecord, ...]
    #: pass back as ``cursor`` for the next (older) page; None on the last page
    next_cursor: str | None


@record
class Artifact:
    invoice_id: str
    format: str
    file_id: str
    size: int
    sha256: str
    created_at: datetime


@record
class Notification:
    invoice_id: str
    kind: NotificationKind
    recipient: str
    state: NotificationState
    claimed_at: datetime | None
    sent_at: datetime | None
    provider_message_id: str | None
    #: the claimer given to :meth:`Repository.claim_notification_for` (None: unknown)
    claimed_by: str | None = None


@record
class NotificationClaim:
    """What :meth:`Repository.claim_notification_for` decided: ``claimed`` (this caller holds
    the claim now) and the row as it was when that was decided (``None``: there was none): the
    one taken over or re-claimed when claimed, else the one that stands (sent, or claimed by
    someone else, or by the same claimer less than ``reclaim_after`` ago)."""

    claimed: bool
    found: Notification | None


@record
class RenderedInvoice:
    """The invoice after :meth:`Repository.mark_ready_and_get` (its status ``ready`` when it
    was complete) and the artifacts it has, by format."""

    invoice: InvoiceRecord
    artifacts: Mapping[str, Artifact]
    #: True for the one call that made it ready
    became_ready: bool

    @property
    def missing(self) -> list[str]:
        """The formats the invoice asked for that have no artifact yet, in its order."""
        return [f for f in self.invoice.formats if f not in self.artifacts]


@record
class StalledInvoice:
    """An invoice :meth:`Repository.stalled_invoices` found: still ``received``, or ``ready``
    or ``failed`` without the email of its status sent; its artifacts by format, the
    notification row of that email (None: there is none, or the invoice is received), and
    when it last changed (its row, its newest artifact or that email's last claim)."""

    invoice: InvoiceRecord
    artifacts: Mapping[str, Artifact]
    last_change: datetime
    email: Notification | None = None

    @property
    def missing(self) -> list[str]:
        """The formats the invoice asked for that have no artifact, in its order."""
        return [f for f in self.invoice.formats if f not in self.artifacts]

    @property
    def unsent_email(self) -> NotificationKind | None:
        """The email the invoice waits for: its status's (``ready``, ``failed``); None while
        it is ``received``."""
        status = self.invoice.status
        if status == "ready" or status == "failed":
            return status
        return None


@record
class StepInvoice:
    """What :meth:`Repository.step_invoice` read in one statement for an event step: whether
    the step processed the event already, the invoice (None: there is no such invoice) and its
    artifacts of the formats asked for, by format."""

    processed: bool
    invoice: InvoiceRecord | None
    artifacts: Mapping[str, Artifact]


@record
class NewOutboxEvent:
    """A CloudEvent to publish once the transaction that enqueued it commits.
    ``(source, event_id)`` is unique: enqueueing the same event twice stores it once."""

    event_id: str
    type: str
    source: str
    data: Mapping[str, Any]
    subject: str | None = None
    #: CloudEvents extension attributes (lowercase letters/digits names)
    extensions: Mapping[str, str] = field(default_factory=dict)


@record
class OutboxEvent:
    id: int
    event_id: str
    type: str
    source: str
    subject: str | None
    data: dict[str, Any]
    extensions: dict[str, str]
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    #: when a relay set it aside (the broker refused it for good); None: pending or sent
    set_aside_at: datetime | None


@record
class QueuedDelivery:
    """One event waiting in the embedded broker's durable queue for one trigger.
    ``phase``/``attempt``/``due_at`` are the retry schedule (``outgoing``: the dead letter
    being delivered, ``{"headers": {...}, "body": "<base64>"}``, in the dead-letter phase)."""

    id: int
    broker: str
    trigger: str
    source: str
    event_id: str
    headers: dict[str, str]
    body: bytes
    state: str
    phase: str
    attempt: int
    due_at: datetime
    outgoing: dict[str, Any] | None
    created_at: datetime
    last_error: str | None


LoginOutcome = Literal["succeeded", "failed", "abandoned"]


@record
class LoginPolicy:
    """Login throttling (:meth:`Repository.reserve_login_attempt`).

    * per account: after ``free_failures`` consecutive failures each further attempt must wait
      ``base_delay`` seconds, doubled per further failure, at most ``max_delay``; a success
      resets it, and failures older than ``failure_memory`` are forgotten;
    * per client address: a token bucket of ``client_burst`` attempts, refilled at
      ``client_per_minute``.
    """

    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 900.0
    client_burst: float = 20.0
    client_per_minute: float = 10.0
    failure_memory: timedelta = timedelta(hours=24)

    def delay(self, failures: int) -> float:
        """Seconds the next attempt must wait after ``failures`` consecutive failures."""
        if failures < self.free_failures:
            return 0.0
        doublings = failures - self.free_failures
        if doublings >= 64:
            return float(self.max_delay)
        return float(min(self.max_delay, self.base_delay * 2**doublings))


# --------------------------------------------------------------------------------------------
# SQL repository
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Repository(Protocol):
    """The SQL repository. Every method is one transaction and thread-safe."""

    dialect: str

    # lifecycle
    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the versions applied now (empty: up to date)."""
        ...

    def ping(self) -> None:
        """Raise :class:`~invoiceflow.errors.Unavailable` unless the database answers."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Repository: ...

    def __exit__(self, *exc: object) -> None: ...

    # users
    def add_user(
        self, email: str, password_hash: str, *, user_id: str | None = None, disabled: bool = False
    ) -> User | None:
        """Create a user; None when the email (case-insensitively) is taken."""
        ...

    def get_user(self, user_id: str) -> User | None: ...

    def get_user_by_email(self, email: str) -> User | None: ...

    def set_user_disabled(self, user_id: str, disabled: bool) -> bool: ...

    def list_users(self) -> list[User]: ...

    # branding settings (one JSON document per owner, see invoiceflow.branding)
    def get_branding(self, owner_id: str) -> str | None:
        """The owner's branding settings as the JSON text stored, or None when there are none."""
        ...

    def put_branding(self, owner_id: str, settings_json: str) -> None:
        """Store the owner's branding settings (JSON text, already validated), replacing any."""
        ...

    # login throttling
    def reserve_login_attempt(self, account: str, client: str | None, policy: LoginPolicy) -> float:
        """One transaction: 0.0 when an attempt for ``account`` from ``client`` may go ahead
        (it is then counted, as a failure until :meth:`finish_login_attempt` says otherwise,
        and takes a token from the client's bucket); otherwise the seconds to wait, and
        nothing is counted. ``account`` and ``client`` are opaque keys (hashes)."""
        ...

    def finish_login_attempt(self, account: str, outcome: LoginOutcome) -> None:
        """``succeeded`` resets the account's failures; ``abandoned`` (no password was
        checked) takes the reserved attempt back; ``failed`` keeps it."""
        ...

    def reset_login_throttle(self, account: str) -> bool:
        """Forget the account's failures (an operator unlocking an account)."""
        ...

    def prune_login_throttle(self, older_than: datetime) -> int:
        """Delete throttle rows untouched since ``older_than``; returns how many."""
        ...

    # invoices
    def accept_invoice(
        self,
        invoice: NewInvoiceRecord,
        events: Sequence[NewOutboxEvent] = (),
        *,
        complete: CompleteAccepted | None = None,
    ) -> Accepted:
        """Store the invoice *and* its outbox events in one transaction.

        With ``invoice.assign_number`` the number is the next of the owner's counter, taken in
        this transaction (the counter row stays locked until it ends): a rolled-back call
        gives its number back, so numbers have no gaps and no repeats; a number that an
        uploaded invoice already took is passed over. ``complete(number)`` runs inside the
        transaction once the number is fixed (an exception rolls everything back); the events
        it returns are enqueued with ``events``.

        Replaying the same ``(owner_id, idempotency_key)`` returns the stored invoice
        (``created=False``, nothing enqueued, no number taken); replaying it with a different
        ``request_sha256`` raises :class:`~invoiceflow.errors.IdempotencyConflict`. A number
        the owner already used raises :class:`~invoiceflow.errors.NumberAlreadyUsed`."""
        ...

    def get_invoice_by_number(self, owner_id: str, number: str) -> InvoiceRecord | None:
        """The owner's (first accepted) invoice with this number."""
        ...

    # numbering
    def get_number_series(self, owner_id: str) -> tuple[str, bool] | None:
        """The owner's ``(pattern, yearly_reset)``; None when they configured none."""
        ...

    def set_number_series(self, owner_id: str, pattern: str, yearly_reset: bool) -> None:
        """Configure the owner's series (the counters run on: a new pattern does not restart
        the sequence)."""
        ...

    def number_counters(self, owner_id: str) -> list[NumberCounter]:
        """The owner's counters, by period."""
        ...

    def find_invoice_by_idempotency_key(self, owner_id: str, key: str) -> InvoiceRecord | None: ...

    def get_invoice(self, invoice_id: str, *, owner_id: str | None = None) -> InvoiceRecord | None:
        """With ``owner_id``, somebody else's invoice is None too (404 either way)."""
        ...

    def list_invoices(
        self, owner_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> InvoicePage:
        """Newest first; keyset pagination. A malformed cursor raises BadRequest."""
        ...

    def stalled_invoices(
        self,
        changed_before: datetime,
        *,
        limit: int = MAX_PAGE_SIZE,
        after: StalledInvoice | None = None,
    ) -> list[StalledInvoice]:
        """The invoices still ``received`` whose row and artifacts all last changed before
        ``changed_before``, and the ``ready`` and ``failed`` ones whose row last changed
        before it and whose email of that kind is not ``sent``: no notification row, or one
        released or claimed before ``changed_before``. Oldest change of the row first, with
        their artifacts and that email's row; ``after``: the last one of the previous page
        (keyset pagination)."""
        ...

    def mark_invoice_failed(
        self,
        invoice_id: str,
        error: str,
        events: Sequence[NewOutboxEvent] = (),
        *,
        unless_complete: Sequence[str] = (),
    ) -> bool:
        """received -> failed (True once); ``events`` are enqueued only when it changed.
        ``unless_complete``: not when the invoice has an artifact of each of these formats
        by the time the UPDATE runs (one statement: a file committed meanwhile counts)."""
        ...

    def mark_ready_if_complete(
        self,
        invoice_id: str,
        required_formats: Sequence[str],
        events: Sequence[NewOutboxEvent] = (),
    ) -> bool:
        """One conditional UPDATE: -> ready when every required format has an artifact.
        True for exactly one caller, even concurrently; ``events`` enqueued only then."""
        ...

    def mark_ready_and_get(self, invoice_id: str) -> RenderedInvoice | None:
        """The invoice and its artifacts (one read), and the invoice -> ready (as
        :meth:`mark_ready_if_complete` does, for the formats it asked for) when every one of
        them has an artifact (one conditional write: artifacts are never removed, so complete
        stays complete, and only one caller makes it ready); None if there is no such
        invoice."""
        ...

    # artifacts
    def record_artifact(
        self, invoice_id: str, format: str, file_id: str, size: int, sha256: str
    ) -> Artifact:
        """Idempotent: a second record for the same invoice+format returns the first row."""
        ...

    def get_artifact(self, invoice_id: str, format: str) -> Artifact | None: ...

    def list_artifacts(self, invoice_id: str) -> list[Artifact]: ...

    # notifications
    def claim_notification(
        self,
        invoice_id: str,
        kind: NotificationKind,
        recipient: str,
        *,
        reclaim_after: timedelta | None = None,
    ) -> bool:
        """True for exactly one claimer. A released claim can be claimed again; with
        ``reclaim_after`` a claim older than that (a crashed sender) can be taken over."""
        ...

    def claim_notification_for(
        self,
        invoice_id: str,
        kind: NotificationKind,
        recipient: str,
        claimer: str,
        *,
        reclaim_after: timedelta,
    ) -> NotificationClaim:
        """:meth:`claim_notification` in one transaction that also records ``claimer`` as
        the row's ``claimed_by`` and answers the row it found (see NotificationClaim)."""
        ...

    def mark_notification_sent(
        self, invoice_id: str, kind: NotificationKind, provider_message_id: str | None = None
    ) -> bool: ...

    def release_notification(self, invoice_id: str, kind: NotificationKind) -> bool:
        """Give a claim back after a failed send so a retry can claim it."""
        ...

    def get_notification(self, invoice_id: str, kind: NotificationKind) -> Notification | None: ...

    # processed CloudEvents
    def mark_processed(self, consumer: str, source: str, event_id: str) -> bool:
        """True the first time only."""
        ...

    def is_processed(self, consumer: str, source: str, event_id: str) -> bool: ...

    def prune_processed_events(
        self, processed_before: datetime, *, batch: int = ..., dry_run: bool = False
    ) -> int:
        """Delete the records processed before ``processed_before``, ``batch`` at a time (one
        transaction each); returns how many (``dry_run``: how many would go, none do). Only
        for records far older than any redelivery (``invoiceflow outbox prune``)."""
        ...

    def step_invoice(
        self,
        consumer: str,
        source: str,
        event_id: str,
        invoice_id: str,
        formats: Sequence[str],
    ) -> StepInvoice:
        """:meth:`is_processed`, :meth:`get_invoice` and :meth:`get_artifact` of each of
        ``formats`` in one statement (one round trip): what a render step reads first."""
        ...

    # outbox
    def pending_outbox_events(self, limit: int = 100) -> list[OutboxEvent]:
        """Unsent events waiting for a relay (not set aside), oldest first."""
        ...

    def claim_outbox_events(
        self,
        limit: int = 100,
        *,
        lease: float = 60.0,
        keys: Sequence[tuple[str, str]] | None = None,
    ) -> list[OutboxEvent]:
        """Claim pending events (unsent, not set aside), oldest first, for ``lease`` seconds: a
        row another relay holds (an unexpired claim) is skipped, so one relay owns a row at a
        time. ``keys``: only these ``(source, event_id)`` events (a request relays only its
        own)."""
        ...

    def release_outbox_claims(self, outbox_ids: Sequence[int] | None) -> int:
        """Give claimed, unsent rows back to the next relay at once (``None``: every claim,
        for a process that knows no other relay is alive)."""
        ...

    def mark_outbox_sent(self, outbox_id: int) -> bool: ...

    def record_outbox_failure(self, outbox_id: int, error: str) -> bool:
        """Count a failed send and release the claim (the row stays pending)."""
        ...

    def set_outbox_event_aside(self, outbox_id: int, error: str) -> bool:
        """Count a send the broker refused for good and set the pending row aside: no relay
        claims it until :meth:`retry_outbox_events` (the operator's). False: the row is not
        pending (sent, or set aside already)."""
        ...

    def set_aside_outbox_events(self, limit: int = 100) -> list[OutboxEvent]:
        """The rows set aside, oldest first (what the operator looks at)."""
        ...

    def retry_outbox_events(self, outbox_ids: Sequence[int] | None) -> int:
        """Make these set-aside rows (``None``: every one) pending again, keeping their
        attempts and last error; answers how many."""
        ...

    def prune_outbox(
        self, sent_before: datetime, *, batch: int = ..., dry_run: bool = False
    ) -> int:
        """Delete the rows sent before ``sent_before``, ``batch`` at a time (one transaction
        each), never a pending or set-aside row; returns how many (``dry_run``: how many
        would go, none do)."""
        ...

    # the embedded broker's durable queue
    def enqueue_deliveries(
        self,
        broker: str,
        triggers: Sequence[str],
        source: str,
        event_id: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> list[QueuedDelivery]:
        """One pending row per trigger, in one transaction; only the rows to deliver now are
        returned. An event already pending for a trigger is not queued twice (its delivery
        is under way); one parked for it is queued again with these headers and body, from
        the subscriber's first attempt, as a Knative broker delivers every publish
        (``invoiceflow invoices redrive`` publishes the same event id again)."""
        ...

    def queued_deliveries(self, broker: str, *, state: str = "pending") -> list[QueuedDelivery]: ...

    def reschedule_delivery(
        self,
        delivery_id: int,
        *,
        phase: str,
        attempt: int,
        due_at: datetime,
        outgoing: Mapping[str, Any] | None,
        error: str | None,
    ) -> bool: ...

    def settle_delivery(self, delivery_id: int) -> bool:
        """Delete the row: the subscriber (or the dead-letter sink) took the event."""
        ...

    def park_delivery(self, delivery_id: int, error: str) -> bool:
        """Keep the row for an operator (state ``parked``): it failed and so did its
        dead-letter sink, or it has none."""
        ...


# --------------------------------------------------------------------------------------------
# Document store
# --------------------------------------------------------------------------------------------

#: ids the callers choose, e.g. "<invoice-uuid>-pdf": letters, digits, '.', '_', '-'
_FILE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

#: default size of the chunks :class:`OpenedFile` yields
CHUNK_SIZE = 256 * 1024


def valid_file_id(file_id: object) -> bool:
    """Whether ``file_id`` is a well-formed document id (no path separators, no leading dot,
    1..128 characters). Both adapters treat anything else as "not found"."""
    return isinstance(file_id, str) and _FILE_ID.fullmatch(file_id) is not None


@record
class StoredFile:
    file_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    owner: str
    invoice_id: str
    #: "raw", "pdf", "xlsx"...
    kind: str
    created_at: datetime


def same_or_conflict(existing: StoredFile, sha256: str, size: int) -> StoredFile:
    """The idempotent-put rule: the same bytes again is the stored file; other bytes conflict."""
    if existing.sha256 == sha256 and existing.size == size:
        return existing
    raise Conflict(f"document {existing.file_id!r} already exists with other content")


class RawReader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class OpenedFile:
    """A stored file opened for reading: iterate it for chunks (streaming download) or
    ``read()`` it whole. Close it (or use ``with``)."""

    def __init__(self, info: StoredFile, raw: RawReader, chunk_size: int = CHUNK_SIZE) -> None:
        self.info = info
        self._raw = raw
        self._chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._raw.read(self._chunk_size):
                yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        try:
            return self._raw.read()
        finally:
            self.close()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class DocumentStore(Protocol):
    """Raw invoice JSON, PDFs and XLSX files with their metadata."""

    def put(
        self,
        data: bytes,
        *,
        file_id: str,
        filename: str,
        content_type: str,
        owner: str,
        invoice_id: str,
        kind: str,
    ) -> StoredFile:
        """Store ``data`` under ``file_id``. The same id with the same bytes again returns the
        stored file and writes nothing; with different bytes raises Conflict. A malformed id
        raises BadRequest."""
        ...

    def get(self, file_id: str) -> StoredFile | None:
        """The metadata, or None (unknown or malformed id)."""
        ...

    def open(self, file_id: str, chunk_size: int = CHUNK_SIZE) -> OpenedFile | None:
        """The file opened for a streaming read, or None."""
        ...

    def read(self, file_id: str) -> bytes | None: ...

    def delete(self, file_id: str) -> bool: ...

    def ping(self, timeout: float = 2.0) -> None:
        """Raise Unavailable unless the store answers within ``timeout`` seconds (readiness)."""
        ...

    def close(self) -> None: ...
