"""Knative's delivery rules, in one place, for every broker backend.

A :class:`Dispatcher` takes ``(event, trigger)`` jobs and delivers each one over HTTP (binary
content mode POST) to the trigger's subscriber, following Knative Eventing's data-plane
contract and the trigger's ``delivery`` spec:

* a 2xx answer: delivered;
* 5xx, 404, 408, 409, 429, a connection error or a timeout (``timeout`` per attempt): retried
  after ``Delivery.backoff(n)`` seconds, up to ``retry`` retries;
* any other answer (400, 401, 413, 422, 3xx, ...): not retried;
* not retried, or retries exhausted: the original event goes to the trigger's
  ``deadLetterSink`` with the extensions ``knativeerrordest`` (the subscriber URL),
  ``knativeerrorcode`` (the last HTTP status; 500 after a connection error or timeout, as
  Knative reports it) and ``knativeerrordata`` (the last response body, base64-encoded and
  cut to 1024 characters, as Knative's dispatcher does). The dead-letter sink gets the same
  retry policy. Without a dead-letter sink the event is dropped with a log line.

A subscriber that answers with a CloudEvent (a reply) has it handed to ``on_reply``, which a
broker wires to its own ingress, as Knative brokers do; when the broker does not take it
(``on_reply`` raises: RabbitMQ unreachable), the attempt failed, as in Knative, and is retried
like one that got no answer, so the reply is not lost.

Connections are reused: the dispatcher POSTs through its own :class:`invoiceflow.events.Sessions`
(a pool of sessions per destination, ``trust_env=False`` for the runtime's 127.0.0.1
functions), closed when the dispatcher stops.

Waiting between retries never blocks a worker: each attempt is a job in a time-ordered queue
and a bounded set of worker threads takes the jobs that are due. When a job is finished, its
``done`` callback gets the :class:`Outcome` (the RabbitMQ backend acks there).
"""

from __future__ import annotations

import base64
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from invoiceflow import events
from invoiceflow.errors import BadRequest, is_retried
from invoiceflow.records import record
from invoiceflow_local.triggers import Resolver, Trigger

log = logging.getLogger(__name__)

#: Seconds per attempt when the trigger's delivery spec has no ``timeout``.
DEFAULT_TIMEOUT = 60.0
#: Knative's limit on ``knativeerrordata``.
ERROR_DATA_MAX = 1024

# What one answer means.
OK = "ok"
RETRY = "retry"
PERMANENT = "permanent"

# How a job ends.
DELIVERED = "delivered"
DEAD_LETTERED = "dead-lettered"
DROPPED = "dropped"  # failed, and the trigger has no dead-letter sink
DEAD_LETTER_FAILED = "dead-letter-failed"  # failed, and so did the dead-letter sink
ABANDONED = "abandoned"  # the dispatcher stopped first (never passed to done)

SUBSCRIBER = "subscriber"
DEAD_LETTER = "dead-letter"


def classify(status: int | None) -> str:
    """OK, RETRY or PERMANENT for a subscriber's HTTP status (None: no answer at all)."""
    if status is None:
        return RETRY
    if 200 <= status < 300:
        return OK
    if is_retried(status):
        return RETRY
    return PERMANENT


def error_extensions(
    destination: str, status: int | None, body: bytes, error: str | None = None
) -> dict[str, str]:
    """The ``knativeerror*`` extensions Knative adds to a dead-lettered event."""
    if status is None:  # Knative reports a failed request as 500 "dispatch error: ..."
        status, body = 500, f"dispatch error: {error or 'no response'}".encode()
    data = base64.b64encode(body).decode("ascii")[:ERROR_DATA_MAX]
    return {
        "knativeerrordest": destination,
        "knativeerrorcode": str(status),
        "knativeerrordata": data,
    }


@record
class Attempt:
    """One HTTP attempt, as the dispatcher's listeners see it."""

    trigger: str
    event_id: str
    phase: str  # SUBSCRIBER or DEAD_LETTER
    number: int  # 1: first try, 2: first retry, ...
    url: str
    status: int | None  # None: connection error, timeout, unresolvable service
    error: str | None
    verdict: str  # what the answer means: OK, RETRY or PERMANENT
    next_delay: float | None  # seconds before the retry; None: no retry (done or given up)


@record
class Outcome:
    trigger: str
    event_id: str
    result: str  # DELIVERED, DEAD_LETTERED, DROPPED, DEAD_LETTER_FAILED
    attempts: int  # attempts at the subscriber
    status: int | None  # the subscriber's last status


@record
class Schedule:
    """Where a job's retries stand: given to a job's ``on_retry`` before every wait, and to
    :meth:`Dispatcher.submit` to resume a job (a durable broker after a restart)."""

    phase: str = "subscriber"  # SUBSCRIBER or DEAD_LETTER
    attempt: int = 0  # attempts made in this phase
    delay: float = 0.0  # seconds until the next attempt
    outgoing: events.Event | None = None  # the dead letter, in the DEAD_LETTER phase
    error: str | None = None  # why the last attempt failed


@dataclass
class _Job:
    event: events.Event
    trigger: Trigger
    done: Callable[[Outcome], None] | None
    on_retry: Callable[[Schedule], None] | None = None
    phase: str = SUBSCRIBER
    attempt: int = 0
    subscriber_attempts: int = 0
    subscriber_status: int | None = None
    outgoing: events.Event | None = None  # what is POSTed (the event, or its dead letter)
    extra: dict[str, object] = field(default_factory=dict)


#: deliveries a broker makes at once, unless told otherwise
DEFAULT_WORKERS = 8


class Dispatcher:
    """Delivers jobs with Knative's retry, backoff and dead-letter rules."""

    def __init__(
        self,
        resolve: Resolver,
        *,
        workers: int = DEFAULT_WORKERS,
        default_timeout: float = DEFAULT_TIMEOUT,
        on_reply: Callable[[events.Event], None] | None = None,
        name: str = "broker",
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.resolve = resolve
        self.default_timeout = default_timeout
        self.on_reply = on_reply
        self.name = name
        #: Called with every :class:`Attempt` and every :class:`Outcome` (tests record them).
        self.listeners: list[Callable[[Attempt | Outcome], None]] = []
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._heap: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._pending = 0
        self._closed = False
        self._aborted = False
        self._http = events.Sessions()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._threads:
                return
            self._closed = self._aborted = False
            for i in range(self._workers):
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-delivery-{i}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def submit(
        self,
        event: events.Event,
        trigger: Trigger,
        done: Callable[[Outcome], None] | None = None,
        *,
        resume: Schedule | None = None,
        on_retry: Callable[[Schedule], None] | None = None,
    ) -> None:
        """Queue the delivery of ``event`` to ``trigger``'s subscriber (returns at once).
        ``resume`` continues a job where an earlier process left it; ``on_retry`` is called
        with the job's :class:`Schedule` before each wait (to store it)."""
        job = _Job(event=event, trigger=trigger, done=done, outgoing=event, on_retry=on_retry)
        delay = 0.0
        if resume is not None:
            job.phase, job.attempt, delay = resume.phase, resume.attempt, max(0.0, resume.delay)
            if resume.phase == DEAD_LETTER:
                if resume.outgoing is None or trigger.delivery.dead_letter_sink is None:
                    job.phase, job.attempt = SUBSCRIBER, 0  # cannot resume: start over
                else:
                    job.outgoing = resume.outgoing
        with self._cond:
            if self._closed:
                raise RuntimeError("the dispatcher is stopped")
            self._pending += 1
            self._push(job, delay)

    @property
    def running(self) -> bool:
        """True while every worker thread is alive (started and not stopped)."""
        with self._cond:
            return (
                bool(self._threads)
                and not self._aborted
                and all(t.is_alive() for t in self._threads)
            )

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        with self._cond:
            return self._pending

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job is finished; False if ``timeout`` came first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self, timeout: float = 5.0) -> int:
        """Refuse new jobs, let queued ones finish for up to ``timeout`` seconds, then stop the
        workers. Returns how many jobs were abandoned (their ``done`` is never called)."""
        with self._cond:
            self._closed = True
        self.wait_idle(timeout)
        with self._cond:
            self._aborted = True
            abandoned = self._pending
            self._cond.notify_all()
        deadline = time.monotonic() + max(1.0, timeout)
        for thread in self._threads:  # a worker inside an HTTP attempt is left to finish it
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._threads = []
            self._heap.clear()
            self._pending = 0
            self._cond.notify_all()
        self._http.close()
        if abandoned:
            log.warning("%s: stopped with %d deliveries unfinished", self.name, abandoned)
        return abandoned

    # -- the work --------------------------------------------------------------------------

    def _push(self, job: _Job, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
        self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._aborted:
                        return
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, job = heapq.heappop(self._heap)
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            try:
                self._step(job)
            except Exception:  # a bug here must not kill the worker nor lose the job silently
                log.exception(
                    "%s: delivery of event %s to trigger %s failed unexpectedly",
                    self.name,
                    job.event["id"],
                    job.trigger.name,
                )
                self._finish(job, DEAD_LETTER_FAILED)

    def _destination(self, job: _Job) -> tuple[str | None, str | None]:
        target = (
            job.trigger.subscriber
            if job.phase == SUBSCRIBER
            else job.trigger.delivery.dead_letter_sink
        )
        assert target is not None
        try:
            return target.url(self.resolve), None
        except Exception as exc:  # noqa: BLE001 - the caller's resolver; failure = not ready
            return None, f"cannot resolve {target}: {exc!r}"

    def _step(self, job: _Job) -> None:
        trigger, delivery = job.trigger, job.trigger.delivery
        job.attempt += 1
        url, error = self._destination(job)
        status: int | None = None
        body = b""
        response = None
        if url is not None:
            assert job.outgoing is not None
            headers, payload = events.to_http(job.outgoing)
            try:
                response = self._http.post(
                    url,
                    data=payload,
                    headers=headers,
                    timeout=delivery.timeout or self.default_timeout,
                    allow_redirects=False,
                )
                status, body = response.status_code, response.content
            except events.SendError as exc:
                error = f"{exc.__class__.__name__}: {exc}"
        if response is not None and job.phase == SUBSCRIBER and classify(status) == OK:
            refused = self._reply(job, response)
            if refused is not None:  # as Knative: the dispatch failed, retried like no answer
                status, body, error = None, b"", refused
        verdict = classify(status)
        if job.phase == SUBSCRIBER:
            job.subscriber_attempts, job.subscriber_status = job.attempt, status
        retry = verdict == RETRY and job.attempt <= delivery.retry
        delay = delivery.backoff(job.attempt) if retry else None
        self._notify(
            Attempt(
                trigger=trigger.name,
                event_id=job.event["id"],
                phase=job.phase,
                number=job.attempt,
                url=url or str(trigger.subscriber),
                status=status,
                error=error,
                verdict=verdict,
                next_delay=delay,
            )
        )
        if verdict == OK:
            if job.phase == SUBSCRIBER:
                self._finish(job, DELIVERED)
            else:
                self._finish(job, DEAD_LETTERED)
            return
        if retry:
            # 409: the work is in progress elsewhere or not ready yet, an expected redelivery
            log.log(
                logging.DEBUG if status == 409 else logging.INFO,
                "%s: %s of event %s to %s failed (%s), retry %d/%d in %.2fs",
                self.name,
                job.phase,
                job.event["id"],
                url,
                status or error,
                job.attempt,
                delivery.retry,
                delay,
            )
            self._schedule(job, delay or 0.0, f"{status or error}")
            with self._cond:
                self._push(job, delay or 0.0)
            return
        if job.phase == SUBSCRIBER:
            log.warning(
                "%s: event %s (%s) not delivered to trigger %s at %s after %d attempt(s): %s",
                self.name,
                job.event["id"],
                job.event["type"],
                trigger.name,
                url,
                job.attempt,
                status or error,
            )
            if delivery.dead_letter_sink is None:
                log.warning(
                    "%s: trigger %s has no deadLetterSink for event %s",
                    self.name,
                    trigger.name,
                    job.event["id"],
                )
                self._finish(job, DROPPED)
                return
            job.outgoing = events.with_extensions(
                job.event, error_extensions(url or str(trigger.subscriber), status, body, error)
            )
            job.phase, job.attempt = DEAD_LETTER, 0
            self._schedule(job, 0.0, f"{status or error}")
            with self._cond:
                self._push(job, 0.0)
            return
        log.warning(
            "%s: the deadLetterSink of trigger %s did not take event %s (%s)",
            self.name,
            trigger.name,
            job.event["id"],
            status or error,
        )
        self._finish(job, DEAD_LETTER_FAILED)

    def _schedule(self, job: _Job, delay: float, error: str) -> None:
        if job.on_retry is None:
            return
        try:
            job.on_retry(
                Schedule(
                    phase=job.phase,
                    attempt=job.attempt,
                    delay=delay,
                    outgoing=job.outgoing if job.phase == DEAD_LETTER else None,
                    error=error[:500],
                )
            )
        except Exception:  # the schedule is a record; the retry happens anyway
            log.exception(
                "%s: could not record the retry schedule of event %s", self.name, job.event["id"]
            )

    def _reply(self, job: _Job, response: events.Answer) -> str | None:
        """Publish the reply event of a 2xx answer, if any. Returns why it could not be
        published (the delivery is then retried, so the reply is not lost), else None."""
        headers = {k.lower(): v for k, v in response.headers.items()}
        is_event = "ce-id" in headers or headers.get("content-type", "").startswith(
            "application/cloudevents+json"
        )
        if self.on_reply is None or not is_event:
            return None
        try:
            reply = events.from_request(headers, response.content)
        except BadRequest as exc:  # permanent: another try gets the same reply
            log.warning(
                "%s: trigger %s: subscriber replied with a malformed event: %s",
                self.name,
                job.trigger.name,
                exc,
            )
            return None
        try:
            self.on_reply(reply)
        except Exception as exc:  # noqa: BLE001 - whatever the broker raised: not taken
            log.warning(
                "%s: reply %s from trigger %s could not be published (%s): the delivery of "
                "event %s is retried",
                self.name,
                reply["id"],
                job.trigger.name,
                exc,
                job.event["id"],
            )
            return f"reply {reply['id']} not published: {exc.__class__.__name__}"
        return None

    def _finish(self, job: _Job, result: str) -> None:
        outcome = Outcome(
            trigger=job.trigger.name,
            event_id=job.event["id"],
            result=result,
            attempts=job.subscriber_attempts,
            status=job.subscriber_status,
        )
        try:
            self._notify(outcome)
            if job.done is not None:
                job.done(outcome)
        finally:
            with self._cond:
                self._pending = max(0, self._pending - 1)
                self._cond.notify_all()

    def _notify(self, record: Attempt | Outcome) -> None:
        for listener in list(self.listeners):
            try:
                listener(record)
            except Exception:
                log.exception("%s: delivery listener failed", self.name)
