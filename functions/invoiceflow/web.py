"""HTTP plumbing shared by every function: JSON answers, and the one place where an
exception becomes its status (:func:`invoiceflow.errors.status_for`) and a problem+json body,
so no path answers a bare 500. Light on purpose: the event steps import it too."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Request, Response

from invoiceflow.errors import (
    BadRequest,
    Conflict,
    InvoiceflowError,
    TransientError,
    Unavailable,
    body_for,
    status_for,
)

log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status,
        headers=headers,
        mimetype="application/json",
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
        json.dumps(body_for(exc)), status, headers=headers, mimetype="application/problem+json"
    )


def endpoint(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Run ``handler``; any exception becomes its mapped status and a problem+json body."""

    @functools.wraps(handler)
    def wrapper(request: Request) -> Response:
        try:
            return handler(request)
        except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
            return error_response(exc)

    return wrapper


def allow(request: Request, *methods: str) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(methods)


class MethodNotAllowed(BadRequest):
    status = 405
    title = "Method not allowed"

    def __init__(self, methods: tuple[str, ...]) -> None:
        super().__init__(f"use {' or '.join(methods)}")
