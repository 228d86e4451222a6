"""The HTTP edge, the only place the functions meet Flask: JSON answers, the one place where an
exception becomes its status (:func:`invoiceflow.errors.status_for`) and a problem+json body
(so no path answers a bare 500), and the adapters the entry files in ``functions/`` call:
:func:`serve_http` (the HTTP functions) and :func:`serve_event` (the event steps, which take
a parsed CloudEvent and know no HTTP). Light on purpose: every function imports it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask import Request, Response

from invoiceflow.context import get_context
from invoiceflow.errors import (
    BadRequest,
    Conflict,
    InvoiceflowError,
    TransientError,
    Unavailable,
    body_for,
    status_for,
)
from invoiceflow.events import from_request, type_name
from invoiceflow.logs import bind, log_context
from invoiceflow.outputs import JSON_CONTENT_TYPE, PROBLEM_CONTENT_TYPE

if TYPE_CHECKING:  # the edge runs whatever step it is given; it never imports the steps
    from invoiceflow.steps import EventStep

log = logging.getLogger(__name__)


HttpHandler = Callable[[Request], Response]


class FirstCalls:
    """Runs the calls of a handler one at a time until one of them has succeeded, and every
    handler's first calls one at a time with each other's; after that, calls run concurrently.

    The functions import their heavy libraries when a request first needs them (a cold start
    pays only for what it uses), and a server with threads (gunicorn's, ``THREADS``) hands a
    fresh process several requests at once: concurrent first imports of a package with
    circular imports (Babel's ``babel`` and ``babel.core``) fail in all but one thread
    (``ImportError: partially initialized module``, or the import system's deadlock error),
    which answered 503s and failed renders. The first successful call has imported what the
    handler needs. So that a stream of refused requests (4xx) cannot keep a handler
    serialized, it also counts as warm after :attr:`MAX_COLD_CALLS` calls."""

    #: calls after which a handler runs concurrently even if none of them succeeded
    MAX_COLD_CALLS = 20

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._warm: set[object] = set()
        self._calls: dict[object, int] = {}

    @contextmanager
    def first(self, key: object) -> Iterator[Callable[[], None]]:
        """Enter before calling the handler ``key``; call the yielded function once the call
        succeeded (from then on the handler's calls do not wait)."""
        if key in self._warm:
            yield lambda: None
            return
        with self._lock:
            try:
                yield lambda: self._warm.add(key)
            finally:
                self._calls[key] = calls = self._calls.get(key, 0) + 1
                if calls >= self.MAX_COLD_CALLS:
                    self._warm.add(key)


first_calls = FirstCalls()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status,
        headers=headers,
        mimetype=JSON_CONTENT_TYPE,
    )


def error_response(exc: BaseException) -> Response:
    status = status_for(exc)
    if isinstance(exc, InvoiceflowError):
        level = logging.WARNING if status >= 500 else logging.INFO
        log.log(level, "answered %s: %s", status, exc.detail)
    else:
        log.exception("unexpected error; answered 503 so it is retried")
    headers = {"WWW-Authenticate": 'Bearer realm="invoiceflow"'} if status == 401 else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(exc.retry_after)}
    elif isinstance(exc, Conflict | Unavailable):
        headers = {**(headers or {}), "Retry-After": "1"}
    return Response(
        json.dumps(body_for(exc)), status, headers=headers, mimetype=PROBLEM_CONTENT_TYPE
    )


def serve_http(handler: HttpHandler, request: Request) -> Response:
    """Run an HTTP function's ``handler``; any exception becomes its mapped status and a
    problem+json body."""
    with log_context(path=request.path), first_calls.first(handler) as succeeded:
        try:
            response = handler(request)
        except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
            return error_response(exc)
        if response.status_code < 400:
            succeeded()
        return response


def serve_event(step: EventStep, request: Request) -> Response:
    """Run an event ``step`` on the CloudEvent the broker POSTed (binary or structured mode):
    refuse a type the step does not take (400: permanent, dead-lettered), bind the event to
    the log context, and answer the step's result as JSON: 200, or 202 when the step only
    accepted work that goes on downstream (intake). Any exception becomes its status."""
    try:
        allow(request, "POST")
        ctx = get_context()
        event = from_request(dict(request.headers), request.get_data())
        if step.accepts is not None and event["type"] not in step.accepts:
            raise BadRequest(f"this step takes {' or '.join(step.accepts)}, not {event['type']}")
        bind(event=event["id"], type=type_name(event["type"]))
        with first_calls.first(step) as succeeded:
            result = step(event, ctx)
            succeeded()
    except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
        return error_response(exc)
    return json_response(result.body, 202 if result.accepted else 200)


def allow(request: Request, *methods: str) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(methods)


class MethodNotAllowed(BadRequest):
    status = 405
    title = "Method not allowed"

    def __init__(self, methods: tuple[str, ...]) -> None:
        super().__init__(f"use {' or '.join(methods)}")
