"""Every error the product raises, and the one place that maps errors to HTTP statuses.

The statuses follow Knative Eventing's delivery rules: a subscriber's 400/422 (and any other
4xx but 404/408/409/429) is *permanent*: the broker does not retry and sends the event to the
trigger's dead-letter sink. 409/429/5xx are *transient*: the broker retries with backoff.
HTTP callers see the same statuses.

The exception tree::

    InvoiceflowError
    ├── PermanentError                 not retried; dead-lettered when it answers an event
    │   ├── BadRequest           400   malformed JSON, malformed CloudEvent, bad multipart
    │   │   └── MalformedJSON    400
    │   ├── Unauthorized         401   missing/invalid/expired token, wrong login
    │   ├── NotFound             404   does not exist *or* is not yours (same body)
    │   ├── PayloadTooLarge      413   body over MAX_DOCUMENT_BYTES
    │   ├── ValidationError      422   the invoice document has problems (all listed)
    │   │   ├── TotalsMismatch   422   client-sent totals differ from the computed ones
    │   │   └── BusinessRuleViolation 422  an e-invoice was asked for and the document
    │   │                                  breaks EN 16931 (or XRechnung) business rules
    │   ├── IdempotencyConflict  422   same Idempotency-Key, different body
    │   ├── NumberAlreadyUsed    409   an uploaded invoice number the owner already used
    │   │                              (permanent: sending it again cannot succeed)
    │   ├── UnknownOwner         422   invoice.requested names no active user
    │   ├── RenderError          422   a valid document the renderer cannot render
    │   └── EventRefused         422   the event broker refused an event we sent for good
    │                                  (an answer about the event: 400, 413, 415, 422, 431)
    └── TransientError                 retried with backoff
        ├── Conflict             409   the same work is in progress elsewhere
        ├── RateLimited          429   an upstream (SendGrid) asked us to slow down
        │   └── TooManyRequests  429   a caller is throttled (login); carries Retry-After
        └── Unavailable          503   database, document store, broker or mail is down
    ConfigError (also an InvoiceflowError, 503)  settings missing or invalid; all listed

What a caller sees (:meth:`InvoiceflowError.to_dict`, the problem body) never carries internal
text: a 503 (Unavailable, ConfigError) answers with its class's generic ``public_detail``;
the detail, which may quote a driver's message, a path or a setting, goes to the log only
(:func:`invoiceflow.edge.error_response`).

NotFound is a permanent problem for HTTP callers; Knative would *retry* a 404 from an event
subscriber, so event steps never raise it (they raise ValidationError/UnknownOwner instead).
Likewise NumberAlreadyUsed (409 for HTTP callers) becomes a 422 in the intake step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from invoiceflow.records import record


@record
class Problem:
    """One problem: a JSON pointer into the offending document and a sentence for a human;
    for a broken business rule also the rule's official id (``BR-S-08``, ``BR-DE-15``)."""

    pointer: str
    message: str
    rule: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"pointer": self.pointer, "message": self.message}
        if self.rule is not None:
            out["rule"] = self.rule
        return out


class InvoiceflowError(Exception):
    status = 500
    title = "Internal error"
    retryable = False
    #: set on classes whose detail is for the log only: the body says this instead
    public_detail: str | None = None

    def __init__(self, detail: str = "", problems: Iterable[Problem] = ()) -> None:
        self.problems: list[Problem] = list(problems)
        self.detail = detail or self.title
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        if self.public_detail is not None:
            return {"status": self.status, "title": self.title, "detail": self.public_detail}
        body: dict[str, Any] = {"status": self.status, "title": self.title, "detail": self.detail}
        if self.problems:
            body["problems"] = [p.to_dict() for p in self.problems]
        return body

    def __str__(self) -> str:
        if not self.problems:
            return self.detail
        lines = "\n".join(f"  {p.pointer or '/'}: {p.message}" for p in self.problems)
        return f"{self.detail}\n{lines}"


class PermanentError(InvoiceflowError):
    status = 422
    title = "Unprocessable"


class BadRequest(PermanentError):
    status = 400
    title = "Bad request"


class MalformedJSON(BadRequest):
    title = "Malformed JSON"


class Unauthorized(PermanentError):
    status = 401
    title = "Unauthorized"


class NotFound(PermanentError):
    status = 404
    title = "Not found"


class PayloadTooLarge(PermanentError):
    status = 413
    title = "Payload too large"


class ValidationError(PermanentError):
    status = 422
    title = "Invalid invoice document"

    def __init__(self, problems: Sequence[Problem], detail: str = "") -> None:
        n = len(problems)
        super().__init__(
            detail or f"{n} problem{'s' if n != 1 else ''} in the invoice document", problems
        )


class TotalsMismatch(ValidationError):
    title = "Totals do not match"


class BusinessRuleViolation(ValidationError):
    title = "The document breaks e-invoicing business rules"


class IdempotencyConflict(PermanentError):
    status = 422
    title = "Idempotency-Key reused with a different body"


class NumberAlreadyUsed(PermanentError):
    """The owner already has an invoice with this number (numbers are unique per owner). A
    409, yet permanent: the intake step answers a 422 instead, since Knative retries a 409."""

    status = 409
    title = "Invoice number already used"

    def __init__(self, number: str, detail: str) -> None:
        super().__init__(detail, [Problem("/number", detail)])
        self.number = number


class UnknownOwner(PermanentError):
    status = 422
    title = "Unknown owner"


class RenderError(PermanentError):
    status = 422
    title = "Invoice cannot be rendered"


class EventRefused(PermanentError):
    """The event broker answered an event we sent with a refusal of that event itself
    (:data:`invoiceflow.events.REFUSED_FOR_GOOD`): sending it again cannot succeed, unlike an
    outage (:class:`Unavailable`). ``broker_status`` is the broker's answer. The outbox relay
    sets the event's row aside and goes on, and the redrive goes on with the next invoice; a
    step whose own event is refused answers 503 all the same (``steps._emit``: its work is
    stored, and dead-lettering would fail an invoice whose other file is not stored yet)."""

    status = 422
    title = "Event refused by the broker"

    def __init__(self, detail: str, broker_status: int) -> None:
        super().__init__(detail)
        self.broker_status = broker_status


class TransientError(InvoiceflowError):
    status = 503
    title = "Temporarily unavailable"
    retryable = True
    #: seconds for the Retry-After header (None: the edge's default)
    retry_after: int | None = None


class Conflict(TransientError):
    status = 409
    title = "Conflict"


class RateLimited(TransientError):
    status = 429
    title = "Too many requests"


class TooManyRequests(RateLimited):
    """The caller must wait ``retry_after`` seconds (login throttling)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class Unavailable(TransientError):
    status = 503
    title = "Service unavailable"
    public_detail = "a service this request needs is unavailable; retry shortly"


class ConfigError(InvoiceflowError):
    status = 503
    title = "Configuration error"
    retryable = True
    public_detail = "the service is not configured correctly; the operator can see why in its log"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("invalid or missing settings", problems)


#: Knative's retry rule for a subscriber's answer (eventing delivery spec).
RETRIED_STATUSES = frozenset({404, 408, 409, 429})


def is_retried(status: int) -> bool:
    """Whether Knative's broker retries an event its subscriber answered with ``status``."""
    return status >= 500 or status in RETRIED_STATUSES


def status_for(exc: BaseException) -> int:
    """The HTTP status for any exception: ours map by class; anything else is transient (503)
    so an unexpected failure is retried rather than lost, and never shows up as a bare 500."""
    if isinstance(exc, InvoiceflowError):
        return exc.status
    return 503


def body_for(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, InvoiceflowError):
        return exc.to_dict()
    return {
        "status": 503,
        "title": "Service unavailable",
        "detail": "an unexpected error occurred; the request can be retried",
    }
