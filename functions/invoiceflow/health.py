"""Liveness and readiness of every function: ``GET /healthz`` and ``GET /readyz``.

* ``/healthz`` (liveness): the process answers; it checks nothing else, so a database outage
  never makes Kubernetes restart healthy pods.
* ``/readyz`` (readiness): the database answers, and for the functions that use it the document
  store answers (MongoDB within :data:`CHECK_TIMEOUT` seconds, or the files directory is
  writable). 200 ``{"status": "ready", "checks": {...}}`` or 503 ``{"status": "unavailable",
  ...}``: each check is ``"ok"`` or ``"unavailable"``; why goes to the log, never to the body.

Every entry point in ``functions/`` is wrapped with :func:`probed` (which also names the
function in every log line of the request), so both paths answer on every function (the Knative
Services' probes in ``knative/40-services.yaml``); the local runtime adds its broker's
consumers to its own ``/readyz`` (:func:`readiness` ``extra``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from flask import Request, Response
from werkzeug.wsgi import ClosingIterator

from invoiceflow import first_request
from invoiceflow.edge import json_response
from invoiceflow.errors import InvoiceflowError
from invoiceflow.logs import log_context
from invoiceflow.settings import DOCUMENT_STORE_USERS

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
#: seconds a readiness check waits for the document store
CHECK_TIMEOUT = 2.0
OK = "ok"
DOWN = "unavailable"

Handler = Callable[[Request], Response]


def _check(name: str, probe: Callable[[], object]) -> str:
    try:
        result = probe()
    except InvoiceflowError as exc:
        log.warning("readiness: %s is unavailable: %s", name, exc.detail)
        return DOWN
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", logged
        log.warning("readiness: %s check failed: %s: %s", name, exc.__class__.__name__, exc)
        return DOWN
    return DOWN if result is False else OK


def readiness(
    function: str | None, extra: Mapping[str, Callable[[], object]] | None = None
) -> dict[str, str]:
    """Every check of ``function`` (None: the local runtime, which runs them all) by name:
    ``"ok"`` or ``"unavailable"``. A check that returns False also counts as unavailable."""
    from invoiceflow.context import get_context

    try:
        ctx = get_context()
    except InvoiceflowError as exc:
        log.warning("readiness: the settings are invalid: %s", exc)
        return {"settings": DOWN}
    checks = {"database": _check("the database", lambda: ctx.repo.ping())}
    if function is None or function in DOCUMENT_STORE_USERS:
        checks["documents"] = _check("the document store", lambda: ctx.docs.ping(CHECK_TIMEOUT))
    for name, probe in (extra or {}).items():
        checks[name] = _check(name, probe)
    return checks


def liveness_body() -> tuple[int, dict[str, object]]:
    return 200, {"status": "alive"}


def readiness_body(checks: Mapping[str, str]) -> tuple[int, dict[str, object]]:
    ready = all(v == OK for v in checks.values())
    return (200 if ready else 503), {"status": "ready" if ready else DOWN, "checks": dict(checks)}


def _response(status: int, body: dict[str, object]) -> Response:
    return json_response(body, status, headers={"Cache-Control": "no-store"})


def _then(response: Response, callback: Callable[[], None]) -> Response:
    """``response``, with ``callback`` run once the server has sent it and closed its body.
    ``call_on_close`` covers every response but a ``direct_passthrough`` one (a download's
    file), whose body werkzeug hands to the server as it is: that body is wrapped instead."""
    if response.direct_passthrough:
        # a passthrough body goes to the server as it is: bytes, as WSGI wants them
        response.response = ClosingIterator(cast("Iterable[bytes]", response.response), callback)
    else:
        response.call_on_close(callback)
    return response


def probed(function: str) -> Callable[[Handler], Handler]:
    """Wrap a function's entry point so ``GET /healthz`` and ``GET /readyz`` answer first;
    every log line of the request names ``function``; the process's first other request
    runs with the garbage collector paused (:mod:`invoiceflow.first_request`)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(request: Request) -> Response:
            with log_context(function=function):
                if request.method in ("GET", "HEAD"):
                    if request.path == LIVENESS_PATH:
                        return _response(*liveness_body())
                    if request.path == READINESS_PATH:
                        return _response(*readiness_body(readiness(function)))
                resume = first_request.begin()  # the process's first: the collector paused
                if resume is None:
                    return handler(request)
                try:
                    response = handler(request)
                except BaseException:
                    resume()
                    raise
                first_request.answered()
                return _then(response, resume)

        return wrapper

    return decorate
