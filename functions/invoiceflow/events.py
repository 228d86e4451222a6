"""CloudEvents for invoiceflow: build, serialize, parse and emit them.

This is the only module of the project that imports ``cloudevents`` (the 1.x SDK). Everything
else handles events through the functions below, and ``Event`` (an alias of
``cloudevents.http.CloudEvent``) is the type to annotate with: ``event["type"]``,
``event["id"]``, ``event.get("subject")`` and ``event.data`` are the ways to read one.

Events carry identifiers only, never documents: ``make_event`` refuses data over
``MAX_DATA_BYTES`` once JSON-encoded.

Emitting::

    emitter = Emitter(settings.k_sink)          # K_SINK, set by the SinkBinding
    emitter.send(make_event(INVOICE_RENDERED, "/render-pdf", {"invoiceId": "..."},
                            subject=invoice_id))

Every event handed to :func:`send` is first shown to each callable in ``observers`` (tests
append a validator there); then it is POSTed to the sink in binary content mode. A 2xx answer
means the broker accepted it. An answer that refuses the event itself (:data:`REFUSED_FOR_GOOD`:
400, 413, 415, 422, 431) raises :class:`~invoiceflow.errors.EventRefused`, a permanent error:
the same event would be refused again (the outbox relay sets its row aside). Anything else (an
outage, a throttle, a refusal of the sender or its address: 5xx, 429, 401, 404...), a
connection error or a timeout raises :class:`~invoiceflow.errors.Unavailable`, a transient
error, so the caller's own trigger retries it.

Connections are reused: :func:`send` and the local runtime's deliveries POST through
:class:`Sessions`, a pool of sessions per destination (kept-alive connections instead of a TCP
connect per event), closed by :meth:`Sessions.close` on shutdown. A destination no proxy can
apply to (plain ``http://`` to this machine or a cluster-local Service: the broker ingress,
the functions) gets a :class:`PlainSession`, one ``http.client`` connection (a third of the
CPU of a ``requests`` POST, and no ``requests`` import: ~40-55 ms of the cold start of every
function that emits); any other gets a ``requests`` session (:class:`RequestsSession`).
Either way the answer is an :class:`Answer`, and a POST that got none raises
:class:`SendError` (:class:`ConnectError`, :class:`ConnectTimeout`, :class:`ReadTimeout`).

Receiving: :func:`from_request` parses binary or structured content mode and raises
:class:`~invoiceflow.errors.BadRequest` that lists every problem it found.

Header values in binary mode follow the HTTP binding (section 3.1.3.2): :func:`to_http`
percent-encodes every ``ce-*`` value (space, ``"``, ``%`` and everything outside printable
ASCII, as UTF-8 bytes) and :func:`from_request` decodes them, so an event whose id or source
holds spaces or non-ASCII characters is the same event in binary and in structured mode (the
idempotency key of ``invoice.requested`` is built from the decoded ``source`` and ``id``).
The 1.x SDK does neither; the Python SDK 2.x encodes and the JavaScript SDK sends raw
ISO-8859-1 bytes, and both are read correctly (tests/test_cloudevents_sdks.py).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

from cloudevents.conversion import to_structured as _to_structured
from cloudevents.exceptions import GenericException as _CloudEventsError
from cloudevents.http import CloudEvent, from_http

from invoiceflow.errors import BadRequest, ConfigError, EventRefused, Problem, Unavailable
from invoiceflow.outputs import JSON_CONTENT_TYPE

log = logging.getLogger(__name__)

#: The type every function receives and emits (``cloudevents.http.CloudEvent``).
Event = CloudEvent

_PREFIX = "io.invoiceflow.invoice."
INVOICE_UPLOADED = _PREFIX + "uploaded.v1"
INVOICE_REQUESTED = _PREFIX + "requested.v1"
INVOICE_RENDERED = _PREFIX + "rendered.v1"
INVOICE_FAILED = _PREFIX + "failed.v1"
INVOICE_NOTIFIED = _PREFIX + "notified.v1"


#: Every event type of the product.
EVENT_TYPES: tuple[str, ...] = (
    INVOICE_UPLOADED,
    INVOICE_REQUESTED,
    INVOICE_RENDERED,
    INVOICE_FAILED,
    INVOICE_NOTIFIED,
)


def uploaded_data(
    *,
    invoice_id: str,
    owner_id: str,
    number: str,
    raw_file_id: str,
    document_file_id: str | None,
    formats: Sequence[str],
    source_format: str | None = None,
) -> dict[str, Any]:
    """The data of an ``invoice.uploaded`` event (its schema in events/schemas/); the optional
    fields that are None are left out."""
    data: dict[str, Any] = {
        "invoice_id": invoice_id,
        "owner_id": owner_id,
        "number": number,
        "raw_file_id": raw_file_id,
    }
    if document_file_id is not None:
        data["document_file_id"] = document_file_id
    data["formats"] = list(formats)
    if source_format is not None:
        data["source_format"] = source_format
    return data


def rendered_data(
    *, invoice_id: str, owner_id: str, fmt: str, file_id: str, size: int, sha256: str
) -> dict[str, Any]:
    """The data of an ``invoice.rendered`` event (its schema in events/schemas/)."""
    return {
        "invoice_id": invoice_id,
        "owner_id": owner_id,
        "format": fmt,
        "file_id": file_id,
        "size": size,
        "sha256": sha256,
    }


def type_name(event_type: str) -> str:
    """The short name of one of our types (``uploaded``); any other type as it is."""
    if event_type in EVENT_TYPES:
        return event_type.removeprefix(_PREFIX).rsplit(".", 1)[0]
    return event_type


SPECVERSION = "1.0"
#: Events carry ids and small facts, never documents.
MAX_DATA_BYTES = 4096
#: Seconds an emitter waits for the broker's answer.
DEFAULT_TIMEOUT = 10.0
#: The broker's answers that refuse the event itself (malformed, too large, of a media type
#: or with headers it does not take): the same event is refused again, whenever it is sent.
#: Every other refusal (an outage: 5xx; a throttle: 408, 409, 429; the sender's credentials
#: or address: 401, 403, 404, 405, 407, 410, a redirect) may end, and is transient.
REFUSED_FOR_GOOD = frozenset({400, 413, 415, 422, 431})

#: Attributes defined by the CloudEvents 1.0 spec (everything else is an extension).
CONTEXT_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")

_EXTENSION_NAME = re.compile(r"[a-z0-9]+")
_STRUCTURED = "application/cloudevents+json"
_BATCH = "application/cloudevents-batch+json"
#: Printable ASCII except space, double quote and percent: kept as is in ce-* header values.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')

#: Called with every event :func:`send` emits, before it is POSTed. Tests append here.
observers: list[Callable[[Event], None]] = []


def is_extension_name(name: str) -> bool:
    """CloudEvents extension names: lowercase ASCII letters and digits only."""
    return bool(_EXTENSION_NAME.fullmatch(name))


def make_event(
    type: str,
    source: str,
    data: Mapping[str, Any] | None,
    *,
    subject: str | None = None,
    id: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
) -> Event:
    """A CloudEvent 1.0 with JSON ``data``. ``id`` defaults to a new UUID and ``time`` to now.

    Raises ``ValueError`` (a programming error) for an empty type or source, an extension
    name that is not lowercase letters/digits or that shadows a context attribute, or data
    larger than ``MAX_DATA_BYTES``.
    """
    problems: list[str] = []
    if not isinstance(type, str) or not type:
        problems.append("type must be a non-empty string")
    if not isinstance(source, str) or not source:
        problems.append("source must be a non-empty string")
    if data is not None:
        try:
            size = len(json.dumps(data, separators=(",", ":")).encode())
        except (TypeError, ValueError) as exc:
            problems.append(f"data must be JSON-serializable: {exc}")
        else:
            if size > MAX_DATA_BYTES:
                problems.append(
                    f"data is {size} bytes; events carry ids, not documents "
                    f"(at most {MAX_DATA_BYTES} bytes)"
                )
    attributes: dict[str, Any] = {
        "specversion": SPECVERSION,
        "type": type,
        "source": source,
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    if id is not None:
        if not isinstance(id, str) or not id:
            problems.append("id must be a non-empty string")
        attributes["id"] = id
    if subject is not None:
        attributes["subject"] = subject
    for name, value in (extensions or {}).items():
        if not is_extension_name(name):
            problems.append(f"extension name {name!r} must be lowercase letters and digits")
        elif name in CONTEXT_ATTRIBUTES or name == "data":
            problems.append(f"extension name {name!r} is a CloudEvents context attribute")
        elif not isinstance(value, str | int | bool):
            problems.append(f"extension {name!r} must be a string, integer or boolean")
        else:
            attributes[name] = _attribute_string(value)
    if problems:
        raise ValueError("invalid event: " + "; ".join(problems))
    return CloudEvent(attributes, dict(data) if data is not None else None)


def _attribute_string(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attributes_of(event: Event) -> dict[str, Any]:
    """Every context attribute and extension of ``event`` (not its data)."""
    return dict(event.get_attributes())


def with_extensions(event: Event, extensions: Mapping[str, str]) -> Event:
    """A copy of ``event`` with ``extensions`` added (or replaced)."""
    for name in extensions:
        if not is_extension_name(name) or name in CONTEXT_ATTRIBUTES:
            raise ValueError(f"invalid extension name {name!r}")
    attributes = attributes_of(event)
    attributes.update({k: _attribute_string(v) for k, v in extensions.items()})
    return CloudEvent(attributes, event.data)


def encode_header_value(value: str) -> str:
    """A ``ce-*`` header value as the HTTP binding writes it (section 3.1.3.2): the UTF-8
    bytes of everything but printable ASCII, and of space, ``"`` and ``%``, percent-encoded."""
    return quote(value, safe=_HEADER_SAFE, encoding="utf-8")


def decode_header_value(value: str) -> str:
    """The attribute value a ``ce-*`` header carries (the inverse of
    :func:`encode_header_value`).

    A WSGI server hands header bytes over as ISO-8859-1 text. Raw bytes that form UTF-8 are
    read as UTF-8 (a sender that did not encode); other raw bytes stay ISO-8859-1 characters
    (what the JavaScript SDK on Node sends for ``é``). Percent-escapes are then decoded and
    must form UTF-8: ``ValueError`` otherwise.
    """
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # already text beyond ISO-8859-1 (not from the wire)
        text = value
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = value
    if "%" not in text:
        return text
    try:
        return unquote_to_bytes(text.encode("utf-8")).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("its percent-encoded bytes are not UTF-8") from None


def _binary(event: Event) -> tuple[dict[str, Any], Any]:
    """What the SDK's ``to_binary`` answers for ``event`` (before :func:`to_http` encodes the
    values), without its round trip through the legacy event classes (a quarter of the local
    broker's CPU): ``content-type`` from ``datacontenttype`` when it is not empty, a ``ce-*``
    header for every other context attribute that is not None and for every extension, and
    the data JSON-encoded when it can be (else as it is; None stays None).
    tests/test_events.py holds the two to the same answer for a corpus of events."""
    headers: dict[str, Any] = {}
    attributes = event.get_attributes()
    content_type = attributes.get("datacontenttype")
    if content_type:
        headers["content-type"] = content_type
    for name, value in attributes.items():
        if name in CONTEXT_ATTRIBUTES:
            if name != "datacontenttype" and value is not None:
                headers[f"ce-{name}"] = value
        else:
            headers[f"ce-{name}"] = value
    data = event.get_data()
    if data is not None:
        try:
            data = json.dumps(data)
        except TypeError:
            pass
        if isinstance(data, str):
            data = data.encode("utf-8")
    return headers, data


def _from_binary(lowered: Mapping[str, str], raw: bytes) -> Event:
    """What the SDK's ``from_http`` answers for a binary-mode request that :func:`from_request`
    checked (every required ``ce-*`` header there, a supported specversion), without its
    legacy event classes: the attributes from the ``ce-*`` headers and ``content-type``
    (``datacontenttype``), the data the body's JSON (the body itself when it is not JSON,
    None when it is empty). Tested against the SDK with :func:`_binary`."""
    attributes: dict[str, Any] = {}
    for name, value in lowered.items():
        if name == "content-type":
            attributes["datacontenttype"] = value
        elif name.startswith("ce-"):
            attributes[name[3:]] = value
    data: Any = None
    if raw:
        try:
            data = json.loads(raw)
        except (ValueError, TypeError):  # JSONDecodeError, UnicodeDecodeError
            data = raw
        except RecursionError:  # the SDK refuses it too (its unmarshaller fails)
            raise BadRequest("malformed CloudEvent", [Problem("", _TOO_DEEP)]) from None
    return CloudEvent(attributes, data)


def to_http(event: Event) -> tuple[dict[str, str], bytes]:
    """``(headers, body)`` of ``event`` in binary content mode: ``ce-*`` headers, their
    values percent-encoded as the HTTP binding requires (plain ASCII on the wire)."""
    headers, body = _binary(event)
    if isinstance(body, str):
        body = body.encode()
    encoded = {
        name: encode_header_value(str(value)) if name.lower().startswith("ce-") else str(value)
        for name, value in headers.items()
    }
    return encoded, body if body is not None else b""


def to_structured_json(event: Event) -> bytes:
    """``event`` as one structured-mode JSON document (``application/cloudevents+json``)."""
    _headers, body = _to_structured(event)
    return body.encode() if isinstance(body, str) else bytes(body)


def from_request(headers: Mapping[str, str], body: bytes | str | None) -> Event:
    """Parse an HTTP request carrying a CloudEvent, in binary or structured content mode.

    Raises :class:`BadRequest` listing *every* problem: missing or empty id/source/type/
    specversion, an unsupported specversion, a body that is not the JSON it claims to be,
    a batch, bad extension names.
    """
    lowered, header_problems = _decoded_headers(headers)
    raw = body if body is not None else b""
    if isinstance(raw, str):
        raw = raw.encode()
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if content_type == _BATCH:
        raise BadRequest(
            "batched CloudEvents are not supported", [Problem("", "send one event per request")]
        )
    if content_type == _STRUCTURED:
        problems = _structured_problems(raw)
    else:
        problems = header_problems + _binary_problems(lowered, content_type, raw)
    if problems:
        n = len(problems)
        raise BadRequest(f"malformed CloudEvent: {n} problem{'s' if n != 1 else ''}", problems)
    try:
        event = (
            from_http(lowered, raw) if content_type == _STRUCTURED else _from_binary(lowered, raw)
        )
    except _CloudEventsError as exc:  # anything the checks above did not foresee
        raise BadRequest("malformed CloudEvent", [Problem("", str(exc))]) from exc
    if not _has_time(lowered, raw, content_type):
        del event["time"]  # the SDK invents one; a broker must not change the event
    return event


def _decoded_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], list[Problem]]:
    """Lower-cased headers with every ``ce-*`` value decoded, and a problem per value that
    cannot be."""
    decoded: dict[str, str] = {}
    problems: list[Problem] = []
    for key, value in headers.items():
        name, text = str(key).lower(), str(value)
        if name.startswith("ce-"):
            try:
                text = decode_header_value(text)
            except ValueError as exc:
                problems.append(Problem(f"/{name[3:]}", f"the {name} header is malformed: {exc}"))
        decoded[name] = text
    return decoded, problems


def _has_time(headers: Mapping[str, str], body: bytes, content_type: str) -> bool:
    if content_type != _STRUCTURED:
        return "ce-time" in headers
    return "time" in json.loads(body)


#: thousands of nested brackets make json.loads raise RecursionError: a 400, never a 5xx
#: (a 5xx is retried by the broker, a 4xx goes to the dead-letter sink)
_TOO_DEEP = "the body is nested too deeply to parse"


#: the code points a CloudEvents String may not hold (spec, "Type System"): control
#: characters U+0000-U+001F and U+007F-U+009F, surrogates (in Python text always lone: a JSON
#: ``\\ud800`` escape), noncharacters (U+FDD0-U+FDEF and the last two of every plane)
FORBIDDEN_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xD800, 0xDFFF),
    (0xFDD0, 0xFDEF),
    *((plane << 16 | 0xFFFE, plane << 16 | 0xFFFF) for plane in range(17)),
)
_FORBIDDEN = re.compile(
    "[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in FORBIDDEN_RANGES) + "]"
)


def forbidden_character(value: str) -> str | None:
    """The first character of :data:`FORBIDDEN_RANGES` in ``value`` (as ``U+XXXX``), None when
    there is none. Such a value cannot be stored (PostgreSQL text holds no NUL), encoded or
    logged safely."""
    found = _FORBIDDEN.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def _forbidden_problem(name: str, value: Any) -> Problem | None:
    found = forbidden_character(value) if isinstance(value, str) else None
    if found is None:
        return None
    return Problem(
        f"/{name}",
        f"the {name} attribute holds {found}, which a CloudEvents "
        "string may not (control characters, surrogates, "
        "noncharacters)",
    )


def _required_problems(attributes: Mapping[str, Any], where: str) -> list[Problem]:
    problems = []
    for name in REQUIRED_ATTRIBUTES:
        value = attributes.get(name)
        if value is None:
            problems.append(Problem(f"/{name}", f"the {name} attribute is missing ({where})"))
        elif not isinstance(value, str) or not value.strip():
            problems.append(
                Problem(f"/{name}", f"the {name} attribute must be a non-empty string ({where})")
            )
        elif (problem := _forbidden_problem(name, value)) is not None:
            problems.append(problem)
        elif name == "specversion" and value != SPECVERSION:
            problems.append(
                Problem("/specversion", f"specversion {value!r} is not supported (only 1.0)")
            )
    return problems


def _is_json(content_type: str) -> bool:
    return content_type in (JSON_CONTENT_TYPE, "text/json") or content_type.endswith("+json")


def _binary_problems(headers: Mapping[str, str], content_type: str, body: bytes) -> list[Problem]:
    attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    problems = _required_problems(attributes, "binary mode: ce-* headers")
    for name in attributes:
        if (
            name not in REQUIRED_ATTRIBUTES
            and (problem := _forbidden_problem(name, attributes[name])) is not None
        ):
            problems.append(problem)
        if name not in CONTEXT_ATTRIBUTES and not is_extension_name(name):
            problems.append(
                Problem(f"/{name}", f"extension name {name!r} must be lowercase letters and digits")
            )
    if body and _is_json(content_type):
        try:
            json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(Problem("/data", f"the body is not valid JSON: {exc}"))
        except RecursionError:
            problems.append(Problem("/data", _TOO_DEEP))
    return problems


def _structured_problems(body: bytes) -> list[Problem]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return [Problem("", f"the body is not valid JSON: {exc}")]
    except RecursionError:
        return [Problem("", _TOO_DEEP)]
    if not isinstance(document, dict):
        return [Problem("", "a structured CloudEvent must be a JSON object")]
    problems = _required_problems(document, "structured mode")
    for name in document:
        if name in ("data", "data_base64") or name in REQUIRED_ATTRIBUTES:
            continue
        if (problem := _forbidden_problem(name, document[name])) is not None:
            problems.append(problem)
        if name in CONTEXT_ATTRIBUTES:
            continue
        if not is_extension_name(name):
            problems.append(
                Problem(f"/{name}", f"extension name {name!r} must be lowercase letters and digits")
            )
    if "data" in document and "data_base64" in document:
        problems.append(Problem("/data_base64", "data and data_base64 are mutually exclusive"))
    return problems


#: hosts where no proxy can apply: the cluster's own Service names (Knative's broker ingress,
#: ``K_SINK``, is ``http://broker-ingress.knative-eventing.svc.cluster.local/...``)
CLUSTER_LOCAL_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")
#: idle sessions kept per destination (more are closed when given back)
MAX_IDLE_SESSIONS = 16


def proxies_apply(url: str) -> bool:
    """False when ``url``'s host is this machine (``localhost``, a loopback address) or a
    cluster-local Service name: no proxy can reach those, so their sessions ignore the
    environment (``trust_env=False``: no ``HTTP_PROXY``/``NO_PROXY``/``.netrc`` lookup per
    request). True for any other host, which keeps the environment's proxy settings."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(CLUSTER_LOCAL_SUFFIXES):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class SendError(OSError):
    """A POST that got no answer: the connection could not be made or broke, or the answer was
    late. :meth:`Sessions.post` raises it (or a subclass) for both kinds of session, so callers
    catch one type and never need ``requests`` for it."""


class ConnectError(SendError):
    """No connection to the destination (refused, unreachable, reset, closed mid-answer)."""


class ConnectTimeout(ConnectError):
    """No connection within the timeout."""


class ReadTimeout(SendError):
    """Connected, but no (complete) answer within the timeout."""


class Headers(Mapping[str, str]):
    """An answer's headers, case-insensitive (``headers["Content-Type"]`` is
    ``headers["content-type"]``); names are kept lowercase. A repeated header is joined with
    ``", "``, as urllib3 does."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"


class Answer:
    """What :meth:`Sessions.post` answers, whichever session sent it: ``status_code``,
    ``reason``, ``url``, ``headers`` (:class:`Headers`), ``content`` (bytes), ``text`` (decoded
    with the ``charset`` of its Content-Type, else UTF-8, undecodable bytes replaced) and
    ``ok`` (2xx or 3xx, as ``requests``)."""

    __slots__ = ("content", "headers", "reason", "status_code", "url")

    def __init__(
        self, status_code: int, reason: str, url: str, headers: Headers, content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.url = url
        self.headers = headers
        self.content = content

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "charset" and value.strip(' "'):
                charset = value.strip(' "')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset
            return self.content.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<Answer [{self.status_code}]>"


def _readable(sock: socket.socket) -> bool:
    """True when ``sock`` has something to read (or is closed) right now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # pragma: no cover - no poll (Windows)


class PlainSession:
    """POSTs over one kept-alive ``http.client`` connection to one ``http://`` destination, for
    hosts no proxy can apply to (:func:`proxies_apply`): what ``requests.Session.post`` does
    there, without its per-request machinery (settings merged from the environment, hooks,
    cookies, adapters) and without importing ``requests`` at all (~40-55 ms of a cold start:
    urllib3, charset_normalizer, idna). It answers an :class:`Answer` and raises
    :class:`ConnectTimeout`/:class:`ConnectError` when it cannot connect, :class:`ReadTimeout`
    when the answer is late, :class:`ConnectError` when the connection breaks. It never
    follows a redirect. A connection the server closed while idle is reopened (as urllib3
    does); one the server marks ``Connection: close`` is closed after its answer. One thread
    at a time (as :class:`Sessions` hands it out)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"a plain session needs an http:// URL, not {url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._connection: http.client.HTTPConnection | None = None

    def post(
        self,
        url: str,
        *,
        data: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Answer:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connect(timeout)
        try:
            conn.request("POST", target, body=data, headers=dict(headers or {}))
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            conn.close()
            raise ReadTimeout(f"{url}: no answer within {timeout} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ConnectError(f"{url}: {exc!r}") from exc
        return Answer(answer.status, answer.reason, url, Headers(answer.getheaders()), content)

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        conn = self._connection
        if conn is not None and conn.sock is not None and _readable(conn.sock):
            conn.close()  # readable while idle: the server closed it (or broke the protocol)
        if conn is None:
            conn = self._connection = http.client.HTTPConnection(self._host, self._port)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
            return conn
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise ConnectTimeout(
                f"{self._host}:{self._port}: no connection within {timeout} s"
            ) from exc
        except OSError as exc:
            conn.close()
            raise ConnectError(f"{self._host}:{self._port}: {exc!r}") from exc
        return conn

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


class RequestsSession:
    """A ``requests`` session behind the interface of :class:`PlainSession`, for destinations
    a proxy may apply to (or ``https://``): it answers an :class:`Answer` and raises
    :class:`SendError` and its subclasses instead of ``requests``' exceptions (the original
    is the ``__cause__``). ``session`` is the ``requests.Session``; ``trust_env`` follows
    :func:`proxies_apply`. Imports ``requests`` when made, never before."""

    def __init__(self, url: str) -> None:
        import requests

        self.session = requests.Session()
        self.session.trust_env = proxies_apply(url)

    def post(self, url: str, **kwargs: Any) -> Answer:
        import requests

        try:
            r = self.session.post(url, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectTimeout(str(exc)) from exc
        except requests.exceptions.Timeout as exc:
            raise ReadTimeout(str(exc)) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectError(str(exc)) from exc
        except requests.RequestException as exc:  # too many redirects, an invalid URL...
            raise SendError(f"{exc.__class__.__name__}: {exc}") from exc
        return Answer(r.status_code, r.reason, r.url, Headers(r.headers.items()), r.content)

    def close(self) -> None:
        self.session.close()


class Sessions:
    """Sessions pooled per destination (scheme, host and port), so that successive POSTs to
    one place reuse a kept-alive connection: a :class:`PlainSession` where no proxy can apply
    (``http://`` to this machine or a cluster-local Service), else a :class:`RequestsSession`.
    Either way :meth:`post` answers an :class:`Answer` and raises :class:`SendError` (or a
    subclass) when there is no answer, so ``requests`` is imported only by a process that
    posts somewhere a proxy may apply.

    A session is not meant to be shared between threads: :meth:`post` takes an idle session of
    the destination (or opens one), sends, and gives it back, so each session serves one thread
    at a time and there are at most as many per destination as requests in flight (at most
    :data:`MAX_IDLE_SESSIONS` are kept idle). :meth:`close` closes every session (their
    connections); the pool stays usable and opens new ones when asked again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, list[RequestsSession | PlainSession]] = {}
        self._open: set[RequestsSession | PlainSession] = set()

    def post(self, url: str, **kwargs: Any) -> Answer:
        """POST to ``url`` over a pooled session of its destination (``data``, ``headers``,
        ``timeout``, ``allow_redirects``, as ``requests.post``; a plain session never follows
        a redirect). Raises :class:`SendError` when no answer came."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        with self._lock:
            idle = self._idle.get(key)
            session = idle.pop() if idle else None
        if session is None:
            session = self._open_session(url)
        try:
            return session.post(url, **kwargs)
        finally:
            with self._lock:
                idle = self._idle.setdefault(key, [])
                keep = session in self._open and len(idle) < MAX_IDLE_SESSIONS
                if keep:
                    idle.append(session)
                else:
                    self._open.discard(session)
            if not keep:
                session.close()

    def _open_session(self, url: str) -> RequestsSession | PlainSession:
        session: RequestsSession | PlainSession
        if urlsplit(url).scheme == "http" and not proxies_apply(url):
            session = PlainSession(url)
        else:
            session = RequestsSession(url)
        with self._lock:
            self._open.add(session)
        return session

    def close(self) -> None:
        """Close every session and its connections (a session in use is closed now and
        dropped when given back)."""
        with self._lock:
            sessions, self._open, self._idle = self._open, set(), {}
        for session in sessions:
            session.close()


#: the sessions :func:`send` posts through (closed by :func:`close_sessions`)
sessions = Sessions()


def close_sessions() -> None:
    """Close the connections :func:`send` keeps open (a process that stops)."""
    sessions.close()


class Emitter:
    """Sends events to the broker at ``sink_url`` (K_SINK)."""

    def __init__(self, sink_url: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sink_url = sink_url
        self.timeout = timeout

    def send(self, event: Event) -> None:
        send(event, self.sink_url, timeout=self.timeout)


def send(event: Event, sink_url: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """POST ``event`` in binary mode to ``sink_url``; return once the broker accepted it (2xx).

    Raises :class:`EventRefused` (permanent) for an answer of :data:`REFUSED_FOR_GOOD`,
    :class:`Unavailable` (transient) for any other answer, a connection error or a timeout,
    and :class:`ConfigError` when there is no sink (K_SINK unset).
    """
    for observe in list(observers):
        observe(event)
    if not sink_url:
        raise ConfigError([Problem("/K_SINK", "is not set: this function cannot emit events")])
    headers, body = to_http(event)
    try:
        response = sessions.post(sink_url, data=body, headers=headers, timeout=timeout)
    except SendError as exc:
        log.warning("event %s (%s) not sent to %s: %s", event["id"], event["type"], sink_url, exc)
        raise Unavailable(f"the event broker is unreachable: {exc.__class__.__name__}") from exc
    if not 200 <= response.status_code < 300:
        log.warning(
            "event %s (%s) refused by %s: HTTP %s %s",
            event["id"],
            event["type"],
            sink_url,
            response.status_code,
            response.text[:200],
        )
        if response.status_code in REFUSED_FOR_GOOD:
            raise EventRefused(
                f"the event broker refused the event for good: HTTP {response.status_code}",
                response.status_code,
            )
        raise Unavailable(f"the event broker answered HTTP {response.status_code}")
    log.debug("event %s (%s) sent to %s", event["id"], event["type"], sink_url)
