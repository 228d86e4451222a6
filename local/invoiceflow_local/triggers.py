"""Knative Triggers, read from the manifests: the one source of truth for event routing.

:func:`load_triggers` reads every ``*.yaml``/``*.yml`` file of a directory (default: the
bundled ``knative/``), or one file, keeps the documents of ``kind: Trigger`` and returns
frozen :class:`Trigger` values. Problems in the manifests are all collected and raised together as
one :class:`~invoiceflow.errors.ConfigError`.

Delivery follows Knative's ``DeliverySpec``:

* ``retry``: how many times a failed delivery is *retried* (so ``retry + 1`` attempts at
  most); default 0.
* ``backoffPolicy``: ``exponential`` (default) or ``linear``; ``backoffDelay``: an ISO 8601
  duration (default 0). The delay before retry *n* (1-based) is, as the Knative docs define
  it, ``backoffDelay * 2^n`` (exponential) or ``backoffDelay * n`` (linear); see
  :meth:`Delivery.backoff`.
* ``timeout``: an ISO 8601 duration, the limit of each attempt.
* ``deadLetterSink``: a Knative Service ``ref`` and/or a ``uri``.

Destinations (subscriber, dead-letter sink) resolve like Knative's: ``ref.name`` names a
Knative Service, turned into a base URL by the caller's ``resolve(service_name)``; a ``uri``
next to a ``ref`` is a path appended to that base URL (``/events``); a ``uri`` alone must be
an absolute URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

import yaml

from invoiceflow.errors import ConfigError, Problem
from invoiceflow.records import record
from invoiceflow_local.package_data import KNATIVE_DIR

EXPONENTIAL = "exponential"
LINEAR = "linear"
BACKOFF_POLICIES = (EXPONENTIAL, LINEAR)
PARALLELISM_ANNOTATION = "rabbitmq.eventing.knative.dev/parallelism"

Resolver = Callable[[str], str]

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)
_SECONDS = {"weeks": 7 * 86400, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration such as ``PT0.5S``, ``PT2S``, ``PT1M``, ``P1DT2H``.

    Weeks, days, hours, minutes and seconds are accepted (any may carry a decimal fraction);
    years and months are refused (they have no fixed length), and so is a sign.
    """
    if not isinstance(text, str):
        raise ValueError(f"an ISO 8601 duration must be a string, got {text!r}")
    value = text.strip().upper()
    match = _DURATION.fullmatch(value)
    if (
        not match
        or value in ("P", "PT")
        or value.endswith("T")
        or not any(match.groupdict().values())
    ):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration like PT0.5S, PT2S or PT1M "
            "(years and months are not supported)"
        )
    return sum(
        float(amount.replace(",", ".")) * _SECONDS[unit]
        for unit, amount in match.groupdict().items()
        if amount
    )


def backoff_delay(policy: str, delay: float, retry_number: int) -> float:
    """Seconds to wait before retry ``retry_number`` (1 = the first retry).

    Knative's documented formula: exponential ``delay * 2^n``, linear ``delay * n``, with n
    counted as the RabbitMQ broker's dispatcher counts it: it retries through the CloudEvents
    Go SDK, which backs off with n = 1 before the first retry (so an exponential policy first
    waits twice the delay). Knative's own HTTP sender (go-retryablehttp) starts at n = 0.
    """
    if retry_number < 1:
        raise ValueError("retry numbers start at 1")
    if policy == EXPONENTIAL:
        return delay * 2.0**retry_number
    if policy == LINEAR:
        return delay * retry_number
    raise ValueError(f"unknown backoff policy {policy!r}")


@record
class Destination:
    """A Knative Destination: a Service (``ref``), a URI, or a Service plus a path."""

    service: str | None = None
    uri: str | None = None

    def url(self, resolve: Resolver) -> str:
        if self.service is None:
            assert self.uri is not None
            return self.uri
        base = resolve(self.service)
        if not self.uri:
            return base
        return base.rstrip("/") + "/" + self.uri.lstrip("/")

    def __str__(self) -> str:
        if self.service is None:
            return str(self.uri)
        return f"service/{self.service}{self.uri or ''}"


@record
class Delivery:
    retry: int = 0
    backoff_policy: str = EXPONENTIAL
    #: seconds
    backoff_delay: float = 0.0
    #: seconds per attempt; None: the broker's default
    timeout: float | None = None
    dead_letter_sink: Destination | None = None

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        return backoff_delay(self.backoff_policy, self.backoff_delay, retry_number)


@record
class Trigger:
    name: str
    broker: str
    #: exact-match filter on event attributes (an empty filter matches every event)
    filter: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    subscriber: Destination = field(default_factory=Destination)
    delivery: Delivery = field(default_factory=Delivery)
    namespace: str | None = None
    #: metadata.annotations (e.g. ``rabbitmq.eventing.knative.dev/parallelism``)
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    #: where it was read: ``file#document-index``
    source: str = ""

    @property
    def parallelism(self) -> int | None:
        """The RabbitMQ broker's per-trigger concurrency annotation, if any."""
        raw = self.annotations.get(PARALLELISM_ANNOTATION)
        try:
            return int(raw) if raw is not None and int(raw) > 0 else None
        except ValueError:
            return None

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether an event with these attributes passes the filter (all exact matches)."""
        return all(
            name in attributes and str(attributes[name]) == value
            for name, value in self.filter.items()
        )


def manifest_files(path: str | Path = KNATIVE_DIR) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    return [p]


def load_triggers(path: str | Path = KNATIVE_DIR, *, broker: str | None = None) -> list[Trigger]:
    """Every Trigger in the manifests at ``path`` (a directory or a file), in file order.

    ``broker``: keep only the Triggers of that Broker. Raises ConfigError listing every
    problem (unreadable YAML, missing subscriber, bad duration, duplicate names...).
    """
    problems: list[Problem] = []
    triggers: list[Trigger] = []
    files = manifest_files(path)
    if not files or not all(f.exists() for f in files):
        raise ConfigError([Problem(str(path), "no Knative manifests there")])
    for file in files:
        try:
            documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as exc:
            problems.append(Problem(str(file), f"cannot be read as YAML: {exc}"))
            continue
        for index, document in enumerate(documents):
            if not isinstance(document, dict) or document.get("kind") != "Trigger":
                continue
            where = f"{file}#{index}"
            trigger = _parse_trigger(document, where, problems)
            if trigger is not None:
                triggers.append(trigger)
    seen: dict[tuple[str | None, str], str] = {}
    for trigger in triggers:
        key = (trigger.namespace, trigger.name)
        if key in seen:
            problems.append(
                Problem(trigger.source, f"Trigger {trigger.name!r} is also defined at {seen[key]}")
            )
        seen[key] = trigger.source
    if problems:
        raise ConfigError(problems)
    if broker is not None:
        triggers = [t for t in triggers if t.broker == broker]
    return triggers


def _parse_trigger(
    document: Mapping[str, Any], where: str, problems: list[Problem]
) -> Trigger | None:
    before = len(problems)

    def bad(pointer: str, message: str) -> None:
        problems.append(Problem(f"{where}{pointer}", message))

    metadata = document.get("metadata") or {}
    spec = document.get("spec") or {}
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        bad("", "metadata and spec must be mappings")
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        bad("/metadata/name", "a Trigger needs a name")
    broker = spec.get("broker")
    if not isinstance(broker, str) or not broker:
        bad("/spec/broker", "a Trigger needs a broker")

    attributes: dict[str, str] = {}
    filter_spec = spec.get("filter") or {}
    raw_attributes = filter_spec.get("attributes") if isinstance(filter_spec, dict) else None
    if raw_attributes is not None and not isinstance(raw_attributes, dict):
        bad("/spec/filter/attributes", "must be a mapping of attribute to value")
    for key, value in (raw_attributes or {}).items():
        if not isinstance(value, str):
            bad(f"/spec/filter/attributes/{key}", f"must be a string, not {value!r}")
        elif value != "":  # Knative treats an empty value as "any"
            attributes[str(key)] = value

    subscriber = _destination(spec.get("subscriber"), f"{where}/spec/subscriber", problems)
    if subscriber is None and "subscriber" not in spec:
        bad("/spec/subscriber", "a Trigger needs a subscriber")
    delivery = _delivery(spec.get("delivery") or {}, f"{where}/spec/delivery", problems)

    if len(problems) != before or subscriber is None:
        return None
    namespace = metadata.get("namespace")
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    return Trigger(
        name=str(name),
        broker=str(broker),
        filter=MappingProxyType(attributes),
        subscriber=subscriber,
        delivery=delivery,
        namespace=str(namespace) if namespace else None,
        annotations=MappingProxyType({str(k): str(v) for k, v in annotations.items()}),
        source=where,
    )


def _destination(spec: Any, where: str, problems: list[Problem]) -> Destination | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        problems.append(Problem(where, "must be a mapping with ref and/or uri"))
        return None
    ref = spec.get("ref")
    uri = spec.get("uri")
    service = None
    if ref is not None:
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not ref["name"]:
            problems.append(Problem(f"{where}/ref", "a ref needs a name"))
            return None
        if ref.get("kind", "Service") != "Service":
            problems.append(
                Problem(
                    f"{where}/ref/kind", f"only Knative Services can be resolved, not {ref['kind']}"
                )
            )
            return None
        service = ref["name"]
    if uri is not None and (not isinstance(uri, str) or not uri):
        problems.append(Problem(f"{where}/uri", "must be a non-empty string"))
        return None
    if service is None:
        if uri is None:
            problems.append(Problem(where, "needs a ref or a uri"))
            return None
        parsed = urlparse(uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(
                Problem(f"{where}/uri", f"without a ref, the uri must be an absolute URL: {uri!r}")
            )
            return None
    elif uri is not None and urlparse(uri).netloc:
        problems.append(Problem(f"{where}/uri", "next to a ref, the uri must be a path"))
        return None
    return Destination(service=service, uri=uri)


def _delivery(spec: Any, where: str, problems: list[Problem]) -> Delivery:
    if not isinstance(spec, dict):
        problems.append(Problem(where, "must be a mapping"))
        return Delivery()
    retry = spec.get("retry", 0)
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        problems.append(Problem(f"{where}/retry", "must be a whole number >= 0"))
        retry = 0
    policy = spec.get("backoffPolicy", EXPONENTIAL)
    if policy not in BACKOFF_POLICIES:
        problems.append(
            Problem(f"{where}/backoffPolicy", f"must be linear or exponential, not {policy!r}")
        )
        policy = EXPONENTIAL

    def duration(key: str) -> float | None:
        if spec.get(key) is None:
            return None
        try:
            return parse_duration(spec[key])
        except ValueError as exc:
            problems.append(Problem(f"{where}/{key}", str(exc)))
            return None

    delay = duration("backoffDelay")
    timeout = duration("timeout")
    if timeout is not None and timeout <= 0:
        problems.append(Problem(f"{where}/timeout", "must be longer than zero"))
    dead_letter = _destination(spec.get("deadLetterSink"), f"{where}/deadLetterSink", problems)
    return Delivery(
        retry=retry,
        backoff_policy=str(policy),
        backoff_delay=delay or 0.0,
        timeout=timeout,
        dead_letter_sink=dead_letter,
    )


def matching(triggers: Iterable[Trigger], attributes: Mapping[str, Any]) -> list[Trigger]:
    """The triggers whose filter ``attributes`` pass."""
    return [t for t in triggers if t.matches(attributes)]
