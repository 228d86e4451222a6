"""The local runtime's event broker, in process: Knative's Broker and Triggers, without a
cluster.

Its ingress is the K_SINK address: mount :meth:`Ingress.wsgi_app` (a WSGI app; any path)
or call :meth:`Ingress.handle` from your own server. It accepts one CloudEvent per POST, in
binary or structured content mode, and answers

* 202 once the event is queued (here: in memory) for every Trigger whose filter matches,
  also when none does (Knative accepts and drops it);
* 400 with a problem+json body listing every problem of a malformed event;
* 405 for anything but POST, 413 for a body over ``MAX_BODY_BYTES``,
  503 when the broker is stopped (or, for RabbitMQ, unreachable).

Delivery (retries, backoff, dead letters) is :class:`~invoiceflow.runtime.delivery.Dispatcher`'s,
shared with the RabbitMQ backend. Nothing here survives a restart: use
:class:`~invoiceflow.runtime.rabbit.RabbitBroker` for that.

Usage::

    broker = Broker(load_triggers("knative"), resolve=lambda svc: f"http://127.0.0.1:{ports[svc]}")
    broker.start()
    ...mount broker.wsgi_app at /broker and set K_SINK to its URL...
    broker.stop()
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from invoiceflow import events
from invoiceflow.errors import (
    BadRequest,
    InvoiceflowError,
    PayloadTooLarge,
    Unavailable,
    body_for,
)
from invoiceflow.runtime.delivery import (
    DEAD_LETTER_FAILED,
    DEFAULT_TIMEOUT,
    DROPPED,
    Attempt,
    Dispatcher,
    Outcome,
)
from invoiceflow.runtime.triggers import Resolver, Trigger

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
            raise ValueError(f"the triggers belong to several brokers ({', '.join(names)}): "
                             "name one")
        broker = names[0] if names else "default"
    return broker, [t for t in triggers if t.broker == broker]


class Ingress:
    """The HTTP side of a broker: parse a POSTed CloudEvent, ``publish`` it, answer 202."""

    name: str

    def publish(self, event: events.Event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str],
                                                                        bytes]:
        """``(status, headers, body)`` for a POST to the ingress."""
        try:
            if len(body) > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"an event request is at most {MAX_BODY_BYTES} bytes")
            event = events.from_request(headers, body)
            self.publish(event)
        except InvoiceflowError as exc:
            if not isinstance(exc, BadRequest | PayloadTooLarge):
                log.warning("%s ingress: %s", self.name, exc)
            return _problem(exc)
        return 202, {}, b""

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """The ingress as a WSGI application (it answers on any path)."""
        if environ.get("REQUEST_METHOD") != "POST":
            body = json.dumps({"status": 405, "title": "Method not allowed",
                               "detail": "POST one CloudEvent"}).encode()
            start_response("405 Method Not Allowed",
                           [("Allow", "POST"), ("Content-Type", "application/problem+json"),
                            ("Content-Length", str(len(body)))])
            return [body]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ["wsgi.input"]
        if length > MAX_BODY_BYTES:
            status, headers, body = _problem(
                PayloadTooLarge(f"an event request is at most {MAX_BODY_BYTES} bytes"))
        else:
            if length:
                raw = stream.read(length)
            elif environ.get("wsgi.input_terminated"):
                raw = stream.read(MAX_BODY_BYTES + 1)
            else:
                raw = b""
            status, headers, body = self.handle(_headers_from_environ(environ), raw)
        reason = {202: "Accepted", 400: "Bad Request", 413: "Payload Too Large",
                  503: "Service Unavailable"}.get(status, "Error")
        response_headers = [*headers.items(), ("Content-Length", str(len(body)))]
        start_response(f"{status} {reason}", response_headers)
        return [body]

    __call__ = wsgi_app


def _problem(exc: InvoiceflowError) -> tuple[int, dict[str, str], bytes]:
    return (exc.status, {"Content-Type": "application/problem+json"},
            json.dumps(body_for(exc)).encode())


def _headers_from_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


class Broker(Ingress):
    """In-process broker: events are queued in memory and delivered by worker threads."""

    def __init__(self, triggers: Iterable[Trigger], resolve: Resolver, *,
                 broker: str | None = None, workers: int = 8,
                 default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.name, self.triggers = select_triggers(triggers, broker)
        self.dispatcher = Dispatcher(resolve, workers=workers, default_timeout=default_timeout,
                                     on_reply=self.publish, name=self.name)
        self._running = False

    @property
    def listeners(self) -> list[Callable[[Attempt | Outcome], None]]:
        """Called with every delivery Attempt and Outcome."""
        return self.dispatcher.listeners

    def start(self) -> Broker:
        self.dispatcher.start()
        self._running = True
        log.info("broker %s (in process) started with %d triggers", self.name,
                 len(self.triggers))
        return self

    def publish(self, event: events.Event) -> None:
        """Queue ``event`` for every matching trigger; returns once it is queued."""
        if not self._running:
            raise Unavailable(f"broker {self.name} is not running")
        attributes = events.attributes_of(event)
        matched = [t for t in self.triggers if t.matches(attributes)]
        if not matched:
            log.info("broker %s: no trigger for event %s (%s)", self.name, event["id"],
                     event["type"])
        for trigger in matched:
            try:
                self.dispatcher.submit(event, trigger, self._settled)
            except RuntimeError as exc:
                raise Unavailable(f"broker {self.name} is stopping") from exc

    def healthy(self) -> bool:
        """Whether the broker accepts and delivers events (the runtime's /readyz)."""
        return self._running and self.dispatcher.running

    def _settled(self, outcome: Outcome) -> None:
        if outcome.result in (DROPPED, DEAD_LETTER_FAILED):
            log.error("broker %s: event %s for trigger %s dropped (%s)", self.name,
                      outcome.event_id, outcome.trigger, outcome.result)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every accepted event is delivered or dead-lettered (for tests)."""
        return self.dispatcher.wait_idle(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting events, let deliveries finish for up to ``timeout`` seconds, stop."""
        self._running = False
        lost = self.dispatcher.stop(timeout)
        if lost:
            log.warning("broker %s: %d in-memory deliveries lost at stop", self.name, lost)
        log.info("broker %s stopped", self.name)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
