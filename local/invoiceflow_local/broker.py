"""The local runtime's event broker, in process: Knative's Broker and Triggers, without a
cluster.

Its ingress is the K_SINK address: mount :meth:`Ingress.wsgi_app` (a WSGI app; any path)
or call :meth:`Ingress.handle` from your own server. It accepts one CloudEvent per POST, in
binary or structured content mode, and answers

* 202 once the event is queued for every Trigger whose filter matches (stored in the
  runtime's database when the broker has a ``store``, else in memory), also when none does
  (Knative accepts and drops it);
* 400 with a problem+json body listing every problem of a malformed event;
* 405 for anything but POST, 413 for a body over ``MAX_BODY_BYTES``,
  503 when the broker is stopped (or, for RabbitMQ, unreachable).

Delivery (retries, backoff, dead letters) is :class:`~invoiceflow_local.delivery.Dispatcher`'s,
shared with the RabbitMQ backend. With a ``store`` (what ``invoiceflow dev`` passes: its SQL
repository, table ``broker_queue``), accepted events survive a crash or a restart of the
process; without one nothing does.

Usage::

    broker = Broker(load_triggers("knative"), resolve=lambda svc: f"http://127.0.0.1:{ports[svc]}")
    broker.start()
    ...mount broker.wsgi_app at /broker and set K_SINK to its URL...
    broker.stop()
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from invoiceflow import events
from invoiceflow.errors import (
    BadRequest,
    InvoiceflowError,
    PayloadTooLarge,
    Unavailable,
    body_for,
)
from invoiceflow.outputs import PROBLEM_CONTENT_TYPE
from invoiceflow.stores.protocols import QueuedDelivery, Repository
from invoiceflow_local.delivery import (
    DEAD_LETTER_FAILED,
    DEAD_LETTERED,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    DELIVERED,
    DROPPED,
    Attempt,
    Dispatcher,
    Outcome,
    Schedule,
)
from invoiceflow_local.triggers import Resolver, Trigger

log = logging.getLogger(__name__)

#: The ingress refuses bigger requests: events carry ids, not documents.
MAX_BODY_BYTES = 256 * 1024

StartResponse = Callable[..., Any]


def select_triggers(triggers: Iterable[Trigger], broker: str | None) -> tuple[str, list[Trigger]]:
    """The broker's name and its triggers. Without a name, the triggers must all belong to
    one broker (its name is returned; "default" when there are no triggers)."""
    triggers = list(triggers)
    if broker is None:
        names = sorted({t.broker for t in triggers})
        if len(names) > 1:
            raise ValueError(
                f"the triggers belong to several brokers ({', '.join(names)}): name one"
            )
        broker = names[0] if names else "default"
    return broker, [t for t in triggers if t.broker == broker]


class Ingress:
    """The HTTP side of a broker: parse a POSTed CloudEvent, ``publish`` it, answer 202."""

    name: str

    def publish(self, event: events.Event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers, body)`` for a POST to the ingress."""
        try:
            if len(body) > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"an event request is at most {MAX_BODY_BYTES} bytes")
            event = events.from_request(headers, body)
            self.publish(event)
        except InvoiceflowError as exc:
            if not isinstance(exc, BadRequest | PayloadTooLarge):  # the sender sees the 503
                log.info("%s ingress: %s", self.name, exc)
            return _problem(exc)
        return 202, {}, b""

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """The ingress as a WSGI application (it answers on any path)."""
        if environ.get("REQUEST_METHOD") != "POST":
            body = json.dumps(
                {"status": 405, "title": "Method not allowed", "detail": "POST one CloudEvent"}
            ).encode()
            start_response(
                "405 Method Not Allowed",
                [
                    ("Allow", "POST"),
                    ("Content-Type", PROBLEM_CONTENT_TYPE),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ["wsgi.input"]
        if length > MAX_BODY_BYTES:
            status, headers, body = _problem(
                PayloadTooLarge(f"an event request is at most {MAX_BODY_BYTES} bytes")
            )
        else:
            if length:
                raw = stream.read(length)
            elif environ.get("wsgi.input_terminated"):
                raw = stream.read(MAX_BODY_BYTES + 1)
            else:
                raw = b""
            status, headers, body = self.handle(headers_from_environ(environ), raw)
        reason = {
            202: "Accepted",
            400: "Bad Request",
            413: "Payload Too Large",
            503: "Service Unavailable",
        }.get(status, "Error")
        response_headers = [*headers.items(), ("Content-Length", str(len(body)))]
        start_response(f"{status} {reason}", response_headers)
        return [body]

    __call__ = wsgi_app


def _problem(exc: InvoiceflowError) -> tuple[int, dict[str, str], bytes]:
    return (
        exc.status,
        {"Content-Type": PROBLEM_CONTENT_TYPE},
        json.dumps(body_for(exc)).encode(),
    )


def headers_from_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    """A WSGI request's headers, names in lower case (``HTTP_*`` and the content type)."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


class Broker(Ingress):
    """In-process broker: delivered by worker threads. With a ``store`` (the runtime's SQL
    repository) its queue is durable: :meth:`publish` stores one row per matching trigger
    before it answers, a row is deleted only after the subscriber's 2xx (or the dead-letter
    sink's), retry schedules are stored, and :meth:`start` delivers every row left pending by
    an earlier process (also one killed with SIGKILL). Without a store, the queue is in
    memory only (lost at a crash)."""

    def __init__(
        self,
        triggers: Iterable[Trigger],
        resolve: Resolver,
        *,
        broker: str | None = None,
        workers: int = DEFAULT_WORKERS,
        default_timeout: float = DEFAULT_TIMEOUT,
        store: Repository | None = None,
    ) -> None:
        self.name, self.triggers = select_triggers(triggers, broker)
        self.store = store
        self.dispatcher = Dispatcher(
            resolve,
            workers=workers,
            default_timeout=default_timeout,
            on_reply=self.publish,
            name=self.name,
        )
        self._by_name = {t.name: t for t in self.triggers}
        self._running = False

    @property
    def listeners(self) -> list[Callable[[Attempt | Outcome], None]]:
        """Called with every delivery Attempt and Outcome."""
        return self.dispatcher.listeners

    def start(self) -> Broker:
        self.dispatcher.start()
        self._running = True
        resumed = self._resume() if self.store is not None else 0
        log.info(
            "broker %s (in process%s) started with %d triggers%s",
            self.name,
            ", durable" if self.store is not None else "",
            len(self.triggers),
            f"; {resumed} deliveries resumed" if resumed else "",
        )
        return self

    def publish(self, event: events.Event) -> None:
        """Queue ``event`` for every matching trigger; returns once it is queued (stored, when
        the broker is durable)."""
        if not self._running:
            raise Unavailable(f"broker {self.name} is not running")
        attributes = events.attributes_of(event)
        matched = [t for t in self.triggers if t.matches(attributes)]
        if not matched:
            log.info(
                "broker %s: no trigger for event %s (%s)", self.name, event["id"], event["type"]
            )
            return
        if self.store is None:
            for trigger in matched:
                self._submit(event, trigger, self._settled)
            return
        headers, body = events.to_http(event)
        rows = self.store.enqueue_deliveries(
            self.name, [t.name for t in matched], event["source"], event["id"], headers, body
        )
        for row in rows:  # rows already pending (a repeated event) are being delivered
            self._submit_row(row, event, None)

    def _submit(
        self, event: events.Event, trigger: Trigger, done: Callable[[Outcome], None], **options: Any
    ) -> None:
        try:
            self.dispatcher.submit(event, trigger, done, **options)
        except RuntimeError as exc:
            raise Unavailable(f"broker {self.name} is stopping") from exc

    # -- the durable queue ------------------------------------------------------------------------

    def _resume(self) -> int:
        assert self.store is not None
        now = datetime.now(UTC)
        resumed = 0
        for row in self.store.queued_deliveries(self.name):
            try:
                event = events.from_request(row.headers, row.body)
                outgoing = None
                if row.outgoing:
                    outgoing = events.from_request(
                        row.outgoing["headers"], base64.b64decode(row.outgoing["body"])
                    )
            except (BadRequest, KeyError, TypeError, ValueError) as exc:
                self.store.park_delivery(row.id, f"unreadable stored event: {exc}")
                continue
            schedule = Schedule(
                phase=row.phase,
                attempt=row.attempt,
                delay=(row.due_at - now).total_seconds(),
                outgoing=outgoing,
            )
            if row.trigger not in self._by_name:
                log.warning(
                    "broker %s: event %s waits for trigger %s, which is no longer in the manifests",
                    self.name,
                    row.event_id,
                    row.trigger,
                )
                continue
            self._submit_row(row, event, schedule)
            resumed += 1
        return resumed

    def _submit_row(
        self, row: QueuedDelivery, event: events.Event, schedule: Schedule | None
    ) -> None:
        self._submit(
            event,
            self._by_name[row.trigger],
            functools.partial(self._settle_row, row.id),
            resume=schedule,
            on_retry=functools.partial(self._store_schedule, row.id),
        )

    def _store_schedule(self, row_id: int, schedule: Schedule) -> None:
        assert self.store is not None
        outgoing = None
        if schedule.outgoing is not None:
            headers, body = events.to_http(schedule.outgoing)
            outgoing = {"headers": headers, "body": base64.b64encode(body).decode("ascii")}
        self.store.reschedule_delivery(
            row_id,
            phase=schedule.phase,
            attempt=schedule.attempt,
            due_at=datetime.now(UTC) + timedelta(seconds=schedule.delay),
            outgoing=outgoing,
            error=schedule.error,
        )

    def _settle_row(self, row_id: int, outcome: Outcome) -> None:
        assert self.store is not None
        self._settled(outcome)
        try:
            if outcome.result in (DELIVERED, DEAD_LETTERED):
                self.store.settle_delivery(row_id)
            else:
                self.store.park_delivery(row_id, outcome.result)
        except Exception as exc:  # noqa: BLE001 - the row stays pending: delivered again
            log.warning(
                "broker %s: could not record the outcome of event %s (%s); it will "
                "be delivered again at the next start",
                self.name,
                outcome.event_id,
                exc.__class__.__name__,
            )

    def healthy(self) -> bool:
        """True when started and its delivery workers are running."""
        return self._running and self.dispatcher.running

    def _settled(self, outcome: Outcome) -> None:
        if outcome.result in (DROPPED, DEAD_LETTER_FAILED):
            log.error(
                "broker %s: event %s for trigger %s dropped (%s)",
                self.name,
                outcome.event_id,
                outcome.trigger,
                outcome.result,
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every accepted event is delivered or dead-lettered (for tests)."""
        return self.dispatcher.wait_idle(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting events, let deliveries finish for up to ``timeout`` seconds, stop."""
        self._running = False
        left = self.dispatcher.stop(timeout)
        if left and self.store is not None:
            log.info("broker %s: %d deliveries left for the next start", self.name, left)
        elif left:
            log.warning("broker %s: %d in-memory deliveries lost at stop", self.name, left)
        log.info("broker %s stopped", self.name)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
