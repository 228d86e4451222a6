"""Trigger manifests -> Trigger values; ISO 8601 durations; Knative's backoff formula;
filter matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoiceflow import events, naming
from invoiceflow.errors import ConfigError
from invoiceflow_local.triggers import (
    Delivery,
    Destination,
    Trigger,
    backoff_delay,
    load_triggers,
    matching,
    parse_duration,
)
from support.brokerkit import REPO, trigger_yaml, write_manifests


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.5S", 0.5),
        ("PT2S", 2.0),
        ("PT1M", 60.0),
        ("PT0.05S", 0.05),
        ("PT60S", 60.0),
        ("PT1H30M", 5400.0),
        ("PT1M30.5S", 90.5),
        ("P1D", 86400.0),
        ("P1DT1S", 86401.0),
        ("P2W", 14 * 86400.0),
        ("PT0,25S", 0.25),
        ("pt3s", 3.0),
        ("PT0S", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "1S",
        "PT1",
        "PTS",
        "-PT1S",
        "P1Y",
        "P1M",
        "PT1S2M",
        "PT1.S",
        "T1S",
        "PT 1S",
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def test_parse_duration_refuses_non_strings() -> None:
    with pytest.raises(ValueError):
        parse_duration(2)  # type: ignore[arg-type]


def test_exponential_backoff_is_delay_times_two_to_the_retry_number() -> None:
    # Knative: "the back off delay is equal to backoffDelay*2^<numberOfRetries>"
    assert [backoff_delay("exponential", 0.5, n) for n in (1, 2, 3, 4, 5)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
    ]


def test_linear_backoff_is_delay_times_the_retry_number() -> None:
    assert [backoff_delay("linear", 0.5, n) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]


def test_backoff_refuses_retry_zero_and_unknown_policies() -> None:
    with pytest.raises(ValueError):
        backoff_delay("exponential", 1.0, 0)
    with pytest.raises(ValueError):
        backoff_delay("constant", 1.0, 1)


def test_delivery_backoff_uses_its_policy() -> None:
    assert Delivery(retry=3, backoff_policy="linear", backoff_delay=2.0).backoff(3) == 6.0
    assert Delivery(retry=3, backoff_delay=2.0).backoff(3) == 16.0  # exponential by default


def test_loads_the_project_triggers() -> None:
    triggers = {t.name: t for t in load_triggers(REPO / "knative")}
    assert {
        "render-pdf",
        "render-xlsx",
        "render-xml",
        "intake-requested",
        "notify-rendered",
        "notify-failed",
    } <= set(triggers)
    pdf = triggers["render-pdf"]
    assert pdf.broker == "invoiceflow"
    assert pdf.namespace == "invoiceflow"
    assert dict(pdf.filter) == {"type": events.INVOICE_UPLOADED, "renderpdf": "true"}
    assert pdf.subscriber == Destination(service="render-pdf")
    assert pdf.delivery == Delivery(
        retry=5,
        backoff_policy="exponential",
        backoff_delay=0.5,
        timeout=60.0,
        dead_letter_sink=Destination(service="dead-letter"),
    )
    assert pdf.parallelism == 10
    intake = triggers["intake-requested"]
    assert intake.subscriber == Destination(service="intake")  # not upload: never public
    assert dict(intake.filter) == {"type": events.INVOICE_REQUESTED}
    # every product event type that is consumed has a trigger
    consumed = {t.filter.get("type") for t in triggers.values()}
    assert {
        events.INVOICE_UPLOADED,
        events.INVOICE_REQUESTED,
        events.INVOICE_RENDERED,
        events.INVOICE_FAILED,
    } <= consumed


def test_ignores_other_kinds_reads_every_file_and_keeps_order(tmp_path: Path) -> None:
    broker = "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: x\n"
    service = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: notify\n"
    write_manifests(
        tmp_path,
        broker,
        trigger_yaml("b", "t.b", "notify"),
        service,
        trigger_yaml("a", "t.a", "notify"),
    )
    (tmp_path / "60-more.yml").write_text(trigger_yaml("c", "t.c", "audit"))
    (tmp_path / "README.md").write_text("kind: Trigger\n")
    assert [t.name for t in load_triggers(tmp_path)] == ["b", "a", "c"]
    assert [t.name for t in load_triggers(tmp_path / "60-more.yml")] == ["c"]
    assert load_triggers(tmp_path, broker="other") == []


def test_subscriber_and_dead_letter_destinations(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("""\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: everything}
spec:
  broker: invoiceflow
  subscriber: {uri: "http://audit.example:8080/in"}
  delivery:
    backoffPolicy: linear
    backoffDelay: PT2S
    deadLetterSink: {ref: {kind: Service, name: dead-letter}, uri: /dlq}
""")
    [trigger] = load_triggers(tmp_path)
    assert dict(trigger.filter) == {}
    assert trigger.matches({"type": "anything", "source": "/x"})
    assert trigger.subscriber.url(lambda name: "unused") == "http://audit.example:8080/in"
    dls = trigger.delivery.dead_letter_sink
    assert dls is not None
    assert dls.url({"dead-letter": "http://127.0.0.1:9000/"}.__getitem__) == (
        "http://127.0.0.1:9000/dlq"
    )
    assert trigger.delivery.retry == 0
    assert trigger.delivery.timeout is None
    assert trigger.delivery.backoff(2) == 4.0


def test_subscriber_uri_is_appended_to_the_resolved_service() -> None:
    destination = Destination(service="upload", uri="/events")
    assert destination.url(lambda s: f"http://127.0.0.1:8080/svc/{s}") == (
        "http://127.0.0.1:8080/svc/upload/events"
    )
    assert Destination(service="upload").url(lambda s: "http://h:1") == "http://h:1"


def test_lists_every_problem_in_the_manifests(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("""\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: one}
spec:
  broker: invoiceflow
  filter: {attributes: {type: 3}}
  delivery: {retry: -1, backoffPolicy: fibonacci, backoffDelay: 2s, timeout: P1M}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: two}
spec:
  subscriber: {uri: /relative}
  delivery: {deadLetterSink: {ref: {kind: Broker, name: x}}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: three}
spec:
  broker: invoiceflow
  subscriber: {ref: {name: notify}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: three}
spec:
  broker: invoiceflow
  subscriber: {ref: {name: notify}}
""")
    with pytest.raises(ConfigError) as raised:
        load_triggers(tmp_path)
    pointers = [p.pointer for p in raised.value.problems]
    text = str(raised.value)
    for fragment in (
        "filter/attributes/type",
        "/spec/subscriber",
        "delivery/retry",
        "delivery/backoffPolicy",
        "delivery/backoffDelay",
        "delivery/timeout",
        "#1/spec/broker",
        "#1/spec/subscriber/uri",
        "#1/spec/delivery/deadLetterSink/ref/kind",
    ):
        assert any(fragment in p for p in pointers), (fragment, pointers)
    assert "also defined" in text
    assert len(pointers) >= 10


def test_missing_directory_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_triggers(tmp_path / "nowhere")
    (tmp_path / "x.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_triggers(tmp_path)


def _trigger(**filters: str) -> Trigger:
    from types import MappingProxyType

    return Trigger(
        name="t", broker="b", filter=MappingProxyType(filters), subscriber=Destination(service="s")
    )


def test_filter_matching_is_exact_on_every_attribute() -> None:
    trigger = _trigger(type=events.INVOICE_UPLOADED, source="/upload")
    assert trigger.matches({"type": events.INVOICE_UPLOADED, "source": "/upload", "id": "1"})
    assert not trigger.matches({"type": events.INVOICE_UPLOADED, "source": "/upload/x"})
    assert not trigger.matches({"type": events.INVOICE_UPLOADED})
    assert not trigger.matches({"type": events.INVOICE_UPLOADED.upper(), "source": "/upload"})
    assert not trigger.matches({"type": "io.invoiceflow.invoice.uploaded", "source": "/upload"})


def test_filter_on_an_extension_and_the_empty_filter() -> None:
    assert _trigger(tenant="acme").matches({"type": "x", "tenant": "acme"})
    assert not _trigger(tenant="acme").matches({"type": "x", "tenant": "other"})
    assert _trigger().matches({"type": "x"})


def test_empty_filter_value_means_any(tmp_path: Path) -> None:
    write_manifests(tmp_path, trigger_yaml("t", '""', "notify"))
    [trigger] = load_triggers(tmp_path)
    assert dict(trigger.filter) == {}


def _uploaded(formats: list[str], routes: dict[str, str] | None = None) -> events.Event:
    """An uploaded event as the outbox sends it, after a trip through binary HTTP mode."""
    event = events.make_event(
        events.INVOICE_UPLOADED,
        naming.UPLOAD_SOURCE,
        {"invoice_id": "inv-1", "formats": formats},
        extensions=naming.uploaded_routes(formats) if routes is None else routes or None,
    )
    return events.from_request(*events.to_http(event))


@pytest.mark.parametrize(
    ("formats", "steps"),
    [
        (["pdf", "xlsx"], {"render-pdf", "render-xlsx"}),
        (["pdf"], {"render-pdf"}),
        (["xlsx"], {"render-xlsx"}),
        (["facturx"], {"render-pdf"}),
        (["cii"], {"render-xml"}),
        (["pdf", "xlsx", "cii", "ubl"], {"render-pdf", "render-xlsx", "render-xml"}),
        (["facturx", "ubl"], {"render-pdf", "render-xml"}),
    ],
)
def test_an_uploaded_event_reaches_only_the_render_steps_of_its_formats(
    formats: list[str], steps: set[str]
) -> None:
    triggers = load_triggers(REPO / "knative")
    reached = {
        t.subscriber.service for t in matching(triggers, events.attributes_of(_uploaded(formats)))
    }
    assert reached == steps


def test_routing_attributes_are_cloudevents_extension_names() -> None:
    routes = naming.uploaded_routes([f for fs in naming.RENDER_STEP_FORMATS.values() for f in fs])
    assert routes == {"renderpdf": "true", "renderxlsx": "true", "renderxml": "true"}
    for name in routes:
        assert events.is_extension_name(name) and name not in events.CONTEXT_ATTRIBUTES
        assert len(name) <= 20  # the spec's advice for extension names


def test_malformed_formats_route_to_every_render_step() -> None:
    """Never written by this version; the steps' own check decides, as before the routing."""
    everything = {"renderpdf": "true", "renderxlsx": "true", "renderxml": "true"}
    assert naming.uploaded_routes(None) == everything
    assert naming.uploaded_routes("pdf") == everything
    assert naming.uploaded_routes([1]) == everything
    assert naming.uploaded_routes([]) == {}


def test_an_uploaded_event_without_routing_attributes_reaches_no_render_step() -> None:
    """Why the relay adds them to rows written before the upgrade (test_outbox.py) and why the
    producers roll out before the Triggers change (docs/operations.md, "Upgrades")."""
    triggers = load_triggers(REPO / "knative")
    attributes = events.attributes_of(_uploaded(["pdf", "xlsx"], routes={}))
    assert matching(triggers, attributes) == []


@pytest.mark.parametrize(("complete", "reached"), [("true", {"notify"}), ("false", set())])
def test_a_rendered_event_reaches_notify_only_when_the_invoice_is_complete(
    complete: str, reached: set[str]
) -> None:
    """One notify call per invoice (the renderer that finishes last says "true"), not one
    per format; a rendered event without the attribute (from before it existed) reaches no
    Trigger, hence the bridges of docs/operations.md, "Upgrades"."""
    from invoiceflow.steps import ALL_RENDERED

    triggers = load_triggers(REPO / "knative")
    event = events.make_event(
        events.INVOICE_RENDERED,
        "/invoiceflow/render-pdf",
        {"invoice_id": "inv-1", "format": "pdf"},
        extensions={ALL_RENDERED: complete},
    )
    attributes = events.attributes_of(events.from_request(*events.to_http(event)))
    assert {t.subscriber.service for t in matching(triggers, attributes)} == reached
    bare = events.make_event(events.INVOICE_RENDERED, "/x", {"invoice_id": "inv-1"})
    assert matching(triggers, events.attributes_of(bare)) == []
    assert events.is_extension_name(ALL_RENDERED) and len(ALL_RENDERED) <= 20
