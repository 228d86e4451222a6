"""The local runtime's event broker on RabbitMQ (``RABBITMQ_URL``): events survive a restart.

The only module of the project that imports ``pika``. Same ingress as the in-process broker
(:class:`~invoiceflow_local.broker.Ingress`) and the same delivery rules (retries, backoff,
dead letters: :class:`~invoiceflow_local.delivery.Dispatcher`); RabbitMQ holds the events
in between.

Topology (every name starts with ``prefix``, default ``invoiceflow.``; ``B`` is the broker):

* ``{prefix}B``: a durable **headers** exchange. A message's headers are the event's
  binary-mode HTTP headers (``ce-id``, ``ce-type``, ``ce-source``, ..., ``content-type``), its
  body the HTTP body: the full binary CloudEvent.
* ``{prefix}B.trigger.T``: one durable queue per Trigger ``T``, bound to the exchange with
  ``x-match: all`` and one header per filter attribute (``type`` -> ``ce-type``;
  ``datacontenttype`` -> ``content-type``), so RabbitMQ does the exact-match filtering. An
  empty filter binds with ``x-match: all`` alone, which matches every event.
* ``{prefix}B.dlx`` (durable fanout exchange) and ``{prefix}B.dead-letter`` (durable queue):
  the trigger queues' dead-letter exchange. An event that failed *and* could not be given
  to the trigger's deadLetterSink (or whose trigger has none) is parked there for an
  operator instead of being dropped; so is a message that is not a CloudEvent.
* ``{prefix}B.topology``: one persistent message recording the filters last bound, so a
  start with changed manifests removes the bindings that are no longer in them.

Publishing: the ingress answers 202 only after RabbitMQ confirmed the persistent message
(publisher confirms). Consuming: one channel per trigger, ``basic_qos`` prefetch from the
trigger's ``rabbitmq.eventing.knative.dev/parallelism`` annotation (else ``prefetch``),
manual acks sent only after the subscriber's 2xx or after the dead-letter sink took the
event. A message in flight when the process stops is not acked, so RabbitMQ delivers it
again: at-least-once.

pika connections are not thread-safe: the publisher thread, the consumer thread and any
caller of :meth:`RabbitBroker.wait_idle` or :meth:`RabbitBroker.delete_topology` each open
their own; delivery workers hand their acks to the consumer thread with
``add_callback_threadsafe``. Heartbeats are on (``heartbeat`` seconds).
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlparse

import pika
import pika.exceptions

from invoiceflow import events
from invoiceflow.errors import BadRequest, Unavailable
from invoiceflow.outputs import JSON_CONTENT_TYPE
from invoiceflow_local.broker import Ingress, select_triggers
from invoiceflow_local.delivery import (
    DEAD_LETTERED,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    DELIVERED,
    Attempt,
    Dispatcher,
    Outcome,
)
from invoiceflow_local.triggers import Resolver, Trigger

log = logging.getLogger(__name__)

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_PREFIX = "invoiceflow."

_ERRORS = (pika.exceptions.AMQPError, OSError)
#: the consumer's reconnect backoff: from RECONNECT_MIN seconds, doubling, at most RECONNECT_MAX
RECONNECT_MIN = 0.5
RECONNECT_MAX = 30.0


def binding_arguments(trigger: Trigger) -> dict[str, str]:
    """The headers-exchange binding arguments of ``trigger``'s filter."""
    arguments = {"x-match": "all"}
    for name, value in sorted(trigger.filter.items()):
        arguments["content-type" if name == "datacontenttype" else f"ce-{name}"] = value
    return arguments


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


class RabbitBroker(Ingress):
    """A Knative-like broker whose events wait in RabbitMQ queues."""

    def __init__(
        self,
        triggers: Iterable[Trigger],
        resolve: Resolver,
        *,
        url: str = DEFAULT_URL,
        prefix: str = DEFAULT_PREFIX,
        broker: str | None = None,
        consume: bool = True,
        workers: int = DEFAULT_WORKERS,
        prefetch: int = 10,
        heartbeat: int = 30,
        publish_timeout: float = 10.0,
        default_timeout: float = DEFAULT_TIMEOUT,
        reconnect_min: float = RECONNECT_MIN,
        reconnect_max: float = RECONNECT_MAX,
    ) -> None:
        self.name, self.triggers = select_triggers(triggers, broker)
        self.url = url
        self.prefix = prefix
        self.consume = consume
        self.prefetch = prefetch
        self.heartbeat = heartbeat
        self.publish_timeout = publish_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.exchange = f"{prefix}{self.name}"
        self.dead_letter_exchange = f"{prefix}{self.name}.dlx"
        self.dead_letter_queue = f"{prefix}{self.name}.dead-letter"
        self.topology_queue = f"{prefix}{self.name}.topology"
        self.dispatcher = Dispatcher(
            resolve,
            workers=workers,
            default_timeout=default_timeout,
            on_reply=self.publish,
            name=self.name,
        )
        self._publisher: _Publisher | None = None
        self._consumer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._consuming = threading.Event()
        self._drain_deadline = 0.0
        self._consumed_since_connect = False
        self._connected_once = False
        self._unsettled = 0
        self._lock = threading.Lock()
        self._running = False

    # -- names and connections ----------------------------------------------------------------

    def queue_name(self, trigger: Trigger | str) -> str:
        name = trigger if isinstance(trigger, str) else trigger.name
        return f"{self.prefix}{self.name}.trigger.{name}"

    def _parameters(self) -> pika.URLParameters:
        parameters = pika.URLParameters(self.url)
        if "heartbeat" not in (urlparse(self.url).query or ""):
            parameters.heartbeat = self.heartbeat
        parameters.blocked_connection_timeout = 30
        parameters.socket_timeout = 5
        parameters.connection_attempts = 1
        return parameters

    def connect(self) -> pika.BlockingConnection:
        """A new connection, for the calling thread only."""
        try:
            return pika.BlockingConnection(self._parameters())
        except _ERRORS as exc:
            raise Unavailable(
                f"RabbitMQ at {_redact(self.url)} is unreachable: {exc.__class__.__name__}"
            ) from exc

    @property
    def listeners(self) -> list[Callable[[Attempt | Outcome], None]]:
        """Called with every delivery Attempt and Outcome."""
        return self.dispatcher.listeners

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> RabbitBroker:
        """Declare the topology, start publishing and (if ``consume``) delivering.
        Raises Unavailable when RabbitMQ cannot be reached."""
        self.declare_topology()
        self._stopping.clear()
        self._publisher = _Publisher(self.connect, self.exchange, self.name)
        self._publisher.start()
        if self.consume:
            self.dispatcher.start()
            self._consuming.clear()
            self._consumer = threading.Thread(
                target=self._consume_forever, name=f"{self.name}-consumer", daemon=True
            )
            self._consumer.start()
            if not self._consuming.wait(15):
                log.warning("broker %s: consumers not ready yet", self.name)
        self._running = True
        log.info(
            "broker %s (RabbitMQ %s, prefix %r) started with %d triggers%s",
            self.name,
            _redact(self.url),
            self.prefix,
            len(self.triggers),
            "" if self.consume else " (ingress only)",
        )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting events; let deliveries in flight finish for up to ``timeout``
        seconds; the rest stay in RabbitMQ (unacked messages are delivered again later)."""
        self._running = False
        self._drain_deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._consumer is not None:
            self._consumer.join(timeout + 10)
            self._consumer = None
        if self.consume:
            self.dispatcher.stop(0)
        if self._publisher is not None:
            self._publisher.stop()
            self._publisher = None
        log.info("broker %s stopped", self.name)

    def __enter__(self) -> RabbitBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- topology -------------------------------------------------------------------------------

    def declare_topology(self) -> None:
        """Declare exchanges, queues and bindings (idempotent), and unbind filters that are
        no longer in the manifests."""
        connection = self.connect()
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            self._declare_exchanges(channel)
            channel.queue_declare(self.topology_queue, durable=True)
            previous, tags = self._read_topology(channel)
            current = {t.name: binding_arguments(t) for t in self.triggers}
            for name, arguments in previous.items():
                if current.get(name) != arguments:
                    channel = self._unbind(connection, channel, name, arguments)
            for trigger in self.triggers:
                self._declare_queue(channel, trigger)
            # Removed triggers keep their queue (and what waits in it) but get no more events.
            channel.basic_publish(
                "",
                self.topology_queue,
                json.dumps(current).encode(),
                pika.BasicProperties(delivery_mode=2, content_type=JSON_CONTENT_TYPE),
            )
            if tags:
                channel.basic_ack(tags[-1], multiple=True)
        except _ERRORS as exc:
            raise Unavailable(
                f"cannot declare the RabbitMQ topology of broker {self.name}: {exc}"
            ) from exc
        finally:
            _close(connection)

    def _declare_exchanges(self, channel: Any) -> None:
        """The broker's exchange, and the dead-letter exchange with its queue (idempotent)."""
        channel.exchange_declare(self.exchange, exchange_type="headers", durable=True)
        channel.exchange_declare(self.dead_letter_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(self.dead_letter_queue, durable=True)
        channel.queue_bind(self.dead_letter_queue, self.dead_letter_exchange)

    def _declare_queue(self, channel: Any, trigger: Trigger) -> None:
        """A trigger's queue, dead-lettering to the broker's DLX, bound by its filter."""
        channel.queue_declare(
            self.queue_name(trigger),
            durable=True,
            arguments={"x-dead-letter-exchange": self.dead_letter_exchange},
        )
        channel.queue_bind(
            self.queue_name(trigger), self.exchange, arguments=binding_arguments(trigger)
        )

    def _read_topology(self, channel: Any) -> tuple[dict[str, dict[str, str]], list[int]]:
        previous: dict[str, dict[str, str]] = {}
        tags: list[int] = []
        while True:
            method, _properties, body = channel.basic_get(self.topology_queue, auto_ack=False)
            if method is None:
                return previous, tags
            tags.append(method.delivery_tag)
            try:
                previous.update(json.loads(body))
            except ValueError:
                log.warning("broker %s: unreadable topology record ignored", self.name)

    def _unbind(
        self, connection: Any, channel: Any, name: str, arguments: Mapping[str, str]
    ) -> Any:
        try:
            channel.queue_unbind(self.queue_name(name), self.exchange, arguments=dict(arguments))
            log.info("broker %s: trigger %s no longer bound with %s", self.name, name, arguments)
            return channel
        except pika.exceptions.ChannelClosedByBroker:  # the queue is gone: nothing to unbind
            channel = connection.channel()
            channel.confirm_delivery()
            return channel

    def delete_topology(self) -> None:
        """Delete this broker's queues and exchanges (and what they hold). For tests."""
        connection = self.connect()
        try:
            channel = connection.channel()
            try:
                previous, _ = self._read_topology(channel)
            except pika.exceptions.ChannelClosedByBroker:  # no topology record
                previous, channel = {}, connection.channel()
            names = {self.queue_name(t) for t in self.triggers}
            names |= {self.queue_name(n) for n in previous}
            names |= {self.dead_letter_queue, self.topology_queue}
            for name in sorted(names):
                channel.queue_delete(name)
            channel.exchange_delete(self.exchange)
            channel.exchange_delete(self.dead_letter_exchange)
        finally:
            _close(connection)

    def queue_depths(self) -> dict[str, int]:
        """Messages ready in each trigger queue and in the dead-letter queue."""
        connection = self.connect()
        try:
            channel = connection.channel()
            names = [self.queue_name(t) for t in self.triggers] + [self.dead_letter_queue]
            return {
                name: channel.queue_declare(name, passive=True).method.message_count
                for name in names
            }
        finally:
            _close(connection)

    # -- ingress --------------------------------------------------------------------------------

    def publish(self, event: events.Event) -> None:
        """Publish ``event`` (persistent) and return once RabbitMQ confirmed it."""
        publisher = self._publisher
        if not self._running or publisher is None:
            raise Unavailable(f"broker {self.name} is not running")
        headers, body = events.to_http(event)
        publisher.publish(headers, body, event["id"], self.publish_timeout)

    # -- consuming ------------------------------------------------------------------------------

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once the trigger queues are empty and nothing is being delivered (for tests)."""
        deadline = time.monotonic() + (timeout if timeout is not None else 3600)
        stable = 0
        connection = self.connect()
        try:
            channel = connection.channel()
            while time.monotonic() < deadline:
                ready = sum(
                    channel.queue_declare(self.queue_name(t), passive=True).method.message_count
                    for t in self.triggers
                )
                with self._lock:
                    unsettled = self._unsettled
                if ready == 0 and unsettled == 0 and self.dispatcher.pending == 0:
                    stable += 1
                    if stable >= 3:
                        return True
                else:
                    stable = 0
                connection.sleep(0.05)
            return False
        finally:
            _close(connection)

    def healthy(self) -> bool:
        """True when started and, if consuming, the consumer thread is connected with a
        consumer on every trigger's queue (a /readyz probe reports False as not ready)."""
        if not self._running or self._publisher is None or not self._publisher.alive:
            return False
        if not self.consume:
            return True
        consumer = self._consumer
        return (
            consumer is not None
            and consumer.is_alive()
            and self._consuming.is_set()
            and self.dispatcher.running
        )

    def _consumer_connection(self) -> Any:
        """The consumer thread's connection (a seam for fault-injection tests)."""
        return self.connect()

    def _consume_forever(self) -> None:
        """Consume until stopped. Any failure (pika raises more than AMQP and OS errors, e.g.
        ``ValueError: Timeout closed before call`` after a broker restart) is logged once,
        in one line, and followed by a reconnect after a capped, jittered exponential
        backoff; the thread ends only on stop."""
        failures = 0
        while not self._stopping.is_set():
            try:
                self._consume()
                failures = 0
            except BaseException as exc:
                self._consuming.clear()
                if self._stopping.is_set():
                    break
                if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit...
                    log.error(
                        "broker %s: consumer stopped by %s", self.name, exc.__class__.__name__
                    )
                    raise
                failures = failures + 1 if not self._consumed_since_connect else 1
                delay = reconnect_delay(failures, base=self.reconnect_min, cap=self.reconnect_max)
                log.warning(
                    "broker %s: consumer failed (%s: %s); next try in %.1f s (attempt %d)",
                    self.name,
                    exc.__class__.__name__,
                    str(exc)[:200] or "-",
                    delay,
                    failures,
                )
                log.debug("broker %s: consumer failure detail", self.name, exc_info=True)
                self._stopping.wait(delay)
        self._consuming.clear()

    def _consume(self) -> None:
        self._consumed_since_connect = False
        connection = self._consumer_connection()
        try:
            # re-declare: the broker may have lost them
            self._declare_exchanges(connection.channel())
            consumers = []
            for trigger in self.triggers:
                channel = connection.channel()
                self._declare_queue(channel, trigger)
                channel.basic_qos(prefetch_count=trigger.parallelism or self.prefetch)
                callback = functools.partial(self._on_message, connection, trigger)
                tag = channel.basic_consume(self.queue_name(trigger), callback, auto_ack=False)
                consumers.append((channel, tag))
            self._consuming.set()
            self._consumed_since_connect = True
            if self._connected_once:
                log.info(
                    "broker %s: consumers running again on %d queues", self.name, len(consumers)
                )
            self._connected_once = True
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.1)
            self._consuming.clear()
            for channel, tag in consumers:  # no new messages; unacked ones go back at close
                channel.basic_cancel(tag)
            while self.dispatcher.pending and time.monotonic() < self._drain_deadline:
                connection.process_data_events(time_limit=0.05)
            connection.process_data_events(time_limit=0)
        finally:
            self._consuming.clear()
            _close(connection)

    def _on_message(
        self,
        connection: Any,
        trigger: Trigger,
        channel: Any,
        method: Any,
        properties: Any,
        body: bytes,
    ) -> None:
        tag = method.delivery_tag
        headers = {
            str(k): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in (properties.headers or {}).items()
        }
        if properties.content_type and "content-type" not in headers:
            headers["content-type"] = properties.content_type
        try:
            event = events.from_request(headers, body)
        except BadRequest as exc:
            log.error(
                "broker %s: message in %s is not a CloudEvent, parked in %s: %s",
                self.name,
                self.queue_name(trigger),
                self.dead_letter_queue,
                exc,
            )
            channel.basic_nack(tag, requeue=False)
            return
        with self._lock:
            self._unsettled += 1
        done = functools.partial(self._done, connection, channel, tag)
        try:
            self.dispatcher.submit(event, trigger, done)
        except RuntimeError:  # stopping: let RabbitMQ deliver it again later
            self._settle(channel, tag, None)

    def _done(self, connection: Any, channel: Any, tag: int, outcome: Outcome) -> None:
        """Called by a delivery worker: ack (or park) on the consumer's thread."""
        try:
            connection.add_callback_threadsafe(
                functools.partial(self._settle, channel, tag, outcome)
            )
        except Exception:  # noqa: BLE001 - the connection is gone, whatever pika raises
            with self._lock:
                self._unsettled -= 1
            log.warning(
                "broker %s: event %s finished (%s) after its connection closed; "
                "RabbitMQ will deliver it again",
                self.name,
                outcome.event_id,
                outcome.result,
            )

    def _settle(self, channel: Any, tag: int, outcome: Outcome | None) -> None:
        try:
            if not channel.is_open:
                return
            if outcome is None:
                channel.basic_nack(tag, requeue=True)
            elif outcome.result in (DELIVERED, DEAD_LETTERED):
                channel.basic_ack(tag)
            else:
                log.error(
                    "broker %s: event %s parked in %s (%s)",
                    self.name,
                    outcome.event_id,
                    self.dead_letter_queue,
                    outcome.result,
                )
                channel.basic_nack(tag, requeue=False)
        except Exception as exc:  # noqa: BLE001 - the channel broke; RabbitMQ redelivers
            log.warning(
                "broker %s: could not settle a message (%s); it will come again",
                self.name,
                exc.__class__.__name__,
            )
        finally:
            with self._lock:
                self._unsettled -= 1


class _Publisher:
    """Owns the publishing connection: one thread publishes for every ingress thread."""

    def __init__(self, connect: Callable[[], Any], exchange: str, name: str) -> None:
        self._connect = connect
        self._exchange = exchange
        self._requests: queue.Queue[tuple[Mapping[str, str], bytes, str, Future[None]] | None]
        self._requests = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"{name}-publisher", daemon=True)
        self._connection: Any = None
        self._channel: Any = None
        self._name = name

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._requests.put(None)
        self._thread.join(15)

    def publish(
        self, headers: Mapping[str, str], body: bytes, message_id: str, timeout: float
    ) -> None:
        future: Future[None] = Future()
        self._requests.put((headers, body, message_id, future))
        try:
            future.result(timeout)
        except FutureTimeout as exc:
            raise Unavailable("RabbitMQ did not confirm the event in time") from exc

    def _run(self) -> None:
        while True:
            try:
                request = self._requests.get(timeout=0.5)
            except queue.Empty:
                self._keep_alive()
                continue
            if request is None:
                break
            headers, body, message_id, future = request
            if future.set_running_or_notify_cancel():
                self._publish(headers, body, message_id, future)
        _close(self._connection)

    def _keep_alive(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.process_data_events(time_limit=0)  # heartbeats
        except Exception:  # noqa: BLE001 - any failure: reconnect on the next publish
            _close(self._connection)
            self._connection = None

    def _publish(
        self, headers: Mapping[str, str], body: bytes, message_id: str, future: Future[None]
    ) -> None:
        properties = pika.BasicProperties(
            headers=dict(headers),
            content_type=headers.get("content-type"),
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id,
            timestamp=int(time.time()),
        )
        for attempt in (1, 2):  # a connection gone stale while idle gets one reconnect
            try:
                if self._connection is None or not self._connection.is_open:
                    self._connection = self._connect()
                    self._channel = self._connection.channel()
                    self._channel.confirm_delivery()
                self._channel.basic_publish(self._exchange, "", body, properties)
                future.set_result(None)
                return
            except Exception as exc:  # noqa: BLE001 - pika raises more than AMQPError
                _close(self._connection)
                self._connection = None
                if attempt == 2 or isinstance(exc, Unavailable):  # the sender sees the error
                    log.info("broker %s: event %s not published: %s", self._name, message_id, exc)
                    future.set_exception(
                        exc
                        if isinstance(exc, Unavailable)
                        else Unavailable(f"RabbitMQ refused the event: {exc.__class__.__name__}")
                    )
                    return


def reconnect_delay(
    failures: int, *, base: float = RECONNECT_MIN, cap: float = RECONNECT_MAX
) -> float:
    """Seconds before reconnect attempt ``failures`` (1, 2, ...): exponential from ``base``,
    capped at ``cap``, with jitter (between half and all of it) so replicas spread out."""
    ceiling = min(cap, base * 2.0 ** max(0, min(failures - 1, 16)))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


def _close(connection: Any) -> None:
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # noqa: BLE001, S110 - closing a broken connection: nothing to do
        pass
