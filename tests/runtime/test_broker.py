"""The broker, end to end over real HTTP, against both backends (in process and RabbitMQ):
ingress, routing from the manifests, retries with the manifest's backoff, dead letters."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from invoiceflow import events, naming
from invoiceflow.errors import Unavailable
from invoiceflow_local.delivery import DEAD_LETTERED, DELIVERED, DROPPED, Outcome
from support.brokerkit import (
    REPO,
    Running,
    Services,
    closed_port_url,
    eventually,
    trigger_yaml,
    write_manifests,
)

StartBroker = Callable[..., Running]


def post_event(
    running: Running, event: events.Event, *, structured: bool = False
) -> requests.Response:
    if structured:
        attributes = events.attributes_of(event)
        body = json.dumps({**attributes, "data": event.data}).encode()
        headers = {"Content-Type": "application/cloudevents+json"}
    else:
        headers, body = events.to_http(event)
    return requests.post(running.ingress_url, data=body, headers=headers, timeout=10)


def uploaded(invoice: str = "inv-1") -> events.Event:
    return events.make_event(
        events.INVOICE_UPLOADED, "/upload", {"invoice_id": invoice}, subject=invoice
    )


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return write_manifests(
        tmp_path / "knative",
        trigger_yaml("render-pdf", events.INVOICE_UPLOADED, "render-pdf"),
        trigger_yaml(
            "render-xlsx", events.INVOICE_UPLOADED, "render-xlsx", retry=3, policy="linear"
        ),
        trigger_yaml("notify-rendered", events.INVOICE_RENDERED, "notify", dead_letter=False),
    )


def test_delivers_to_every_matching_trigger_in_binary_mode(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    running = start_broker(manifests)
    event = uploaded()
    response = post_event(running, event, structured=True)
    assert response.status_code == 202

    for name in ("render-pdf", "render-xlsx"):
        [request] = services[name].wait_for(1)
        assert request.headers["ce-id"] == event["id"]
        assert request.headers["ce-type"] == events.INVOICE_UPLOADED
        assert request.headers["ce-subject"] == "inv-1"
        assert json.loads(request.body) == {"invoice_id": "inv-1"}
        received = events.from_request(request.headers, request.body)
        assert received["source"] == "/upload"
    assert running.broker.wait_idle(15)
    assert services["notify"].requests == []
    assert services["dead-letter"].requests == []
    assert running.outcome("render-pdf").result == DELIVERED


def test_event_without_matching_trigger_is_accepted_and_delivered_nowhere(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    running = start_broker(manifests)
    event = events.make_event(events.INVOICE_NOTIFIED, "/notify", {"invoice_id": "inv-1"})
    assert post_event(running, event).status_code == 202
    assert running.broker.wait_idle(15)
    assert all(not s.requests for s in services.values())


@pytest.mark.parametrize(
    ("policy", "delays"), [("exponential", [0.1, 0.2]), ("linear", [0.05, 0.1])]
)
def test_503_twice_then_200_is_delivered_on_the_third_try(
    start_broker: StartBroker, services: Services, tmp_path: Path, policy: str, delays: list[float]
) -> None:
    manifests = write_manifests(
        tmp_path,
        trigger_yaml(
            "render-pdf",
            events.INVOICE_UPLOADED,
            "render-pdf",
            retry=4,
            policy=policy,
            delay="PT0.05S",
        ),
    )
    services["render-pdf"].script = [503, 503]
    running = start_broker(manifests)
    event = uploaded()
    assert post_event(running, event).status_code == 202

    requests_seen = services["render-pdf"].wait_for(3)
    assert running.broker.wait_idle(15)
    assert [r.headers["ce-id"] for r in requests_seen] == [event["id"]] * 3
    attempts = running.attempts("render-pdf")
    assert [(a.number, a.status) for a in attempts] == [(1, 503), (2, 503), (3, 200)]
    # waits follow the manifest: PT0.05S, exponential 0.05*2^n or linear 0.05*n
    assert [a.next_delay for a in attempts[:2]] == pytest.approx(delays)
    assert attempts[2].next_delay is None
    assert running.outcome("render-pdf").result == DELIVERED
    assert running.outcome("render-pdf").attempts == 3
    assert services["dead-letter"].requests == []


@pytest.mark.parametrize("status", [400, 422])
def test_permanent_error_is_dead_lettered_at_once_with_knative_error_extensions(
    start_broker: StartBroker, services: Services, manifests: Path, status: int
) -> None:
    services["render-pdf"].script = [status]
    services["render-pdf"].body = b'{"title": "Invalid invoice document"}'
    running = start_broker(manifests)
    event = uploaded()
    assert post_event(running, event).status_code == 202

    [dead] = services["dead-letter"].wait_for(1)
    assert running.broker.wait_idle(15)
    assert len(services["render-pdf"].requests) == 1
    assert dead.headers["ce-id"] == event["id"]
    assert dead.headers["ce-type"] == events.INVOICE_UPLOADED
    assert dead.headers["ce-knativeerrordest"] == services["render-pdf"].url
    assert dead.headers["ce-knativeerrorcode"] == str(status)
    assert base64.b64decode(dead.headers["ce-knativeerrordata"]) == (
        b'{"title": "Invalid invoice document"}'
    )
    assert json.loads(dead.body) == {"invoice_id": "inv-1"}
    letter = events.from_request(dead.headers, dead.body)
    assert letter["knativeerrorcode"] == str(status)
    assert running.outcome("render-pdf").result == DEAD_LETTERED
    # the other trigger of the same event is not affected
    assert len(services["render-xlsx"].wait_for(1)) == 1


def test_retries_exhausted_then_dead_lettered(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    services["render-pdf"].default = 503
    services["render-pdf"].body = b"busy"
    running = start_broker(manifests)
    assert post_event(running, uploaded()).status_code == 202

    [dead] = services["dead-letter"].wait_for(1)
    assert running.broker.wait_idle(15)
    assert len(services["render-pdf"].requests) == 3  # retry: 2 -> 1 try + 2 retries
    assert [a.status for a in running.attempts("render-pdf")] == [503, 503, 503]
    assert dead.headers["ce-knativeerrorcode"] == "503"
    assert base64.b64decode(dead.headers["ce-knativeerrordata"]) == b"busy"
    assert running.outcome("render-pdf").result == DEAD_LETTERED


def test_404_and_429_are_retried(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    services["render-pdf"].script = [404, 429]
    running = start_broker(manifests)
    assert post_event(running, uploaded()).status_code == 202
    services["render-pdf"].wait_for(3)
    assert running.broker.wait_idle(15)
    assert [a.status for a in running.attempts("render-pdf")] == [404, 429, 200]
    assert services["dead-letter"].requests == []


def test_unreachable_subscriber_is_retried_then_dead_lettered_as_500(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    down = closed_port_url()
    running = start_broker(manifests)
    resolve = services.resolve
    running.broker.dispatcher.resolve = lambda name: (
        down if name == "render-pdf" else (resolve(name))
    )
    assert post_event(running, uploaded()).status_code == 202

    [dead] = services["dead-letter"].wait_for(1)
    assert running.broker.wait_idle(15)
    attempts = running.attempts("render-pdf")
    assert len(attempts) == 3
    assert all(a.status is None and a.error for a in attempts)
    assert dead.headers["ce-knativeerrordest"] == down
    assert dead.headers["ce-knativeerrorcode"] == "500"
    assert base64.b64decode(dead.headers["ce-knativeerrordata"]).startswith(b"dispatch error")


def test_no_dead_letter_sink_drops_the_event(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    services["notify"].default = 422
    running = start_broker(manifests)
    event = events.make_event(events.INVOICE_RENDERED, "/render-pdf", {"invoice_id": "inv-1"})
    assert post_event(running, event).status_code == 202
    assert running.outcome("notify-rendered").result == DROPPED
    assert running.broker.wait_idle(15)
    assert len(services["notify"].requests) == 1
    assert services["dead-letter"].requests == []


def test_an_event_published_again_after_it_was_dropped_is_delivered(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    """As a Knative broker delivers every publish, a dropped (durable: parked) event published
    again with the same id, as ``invoiceflow invoices redrive`` does, is delivered; the
    durable queue answered 202 and never delivered it."""
    services["notify"].script = [422]
    running = start_broker(manifests)
    event = events.make_event(events.INVOICE_RENDERED, "/render-pdf", {"invoice_id": "inv-1"})
    assert post_event(running, event).status_code == 202
    assert running.outcome("notify-rendered").result == DROPPED
    assert running.broker.wait_idle(15)

    assert post_event(running, event).status_code == 202
    first, again = services["notify"].wait_for(2)
    assert running.broker.wait_idle(15)
    assert first.headers["ce-id"] == again.headers["ce-id"] == event["id"]
    assert [o.result for o in running.outcomes("notify-rendered")] == [DROPPED, DELIVERED]


def test_malformed_event_is_refused_with_every_problem(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    running = start_broker(manifests)
    response = requests.post(
        running.ingress_url,
        data=b"{not json",
        headers={"Content-Type": "application/json", "ce-specversion": "1.0"},
        timeout=10,
    )
    assert response.status_code == 400
    problem = response.json()
    pointers = {p["pointer"] for p in problem["problems"]}
    assert pointers == {"/id", "/source", "/type", "/data"}
    assert response.headers["Content-Type"] == "application/problem+json"

    response = requests.post(
        running.ingress_url,
        data=b'{"specversion": "0.3", "id": ""}',
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert {p["pointer"] for p in response.json()["problems"]} == {
        "/id",
        "/source",
        "/type",
        "/specversion",
    }

    assert requests.get(running.ingress_url, timeout=10).status_code == 405
    assert running.broker.wait_idle(15)
    assert all(not s.requests for s in services.values())


def test_a_reply_event_is_published_back_to_the_broker(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    reply = events.make_event(events.INVOICE_RENDERED, "/render-pdf", {"invoice_id": "inv-1"})
    services["render-pdf"].reply = events.to_http(reply)
    running = start_broker(manifests)
    assert post_event(running, uploaded()).status_code == 202
    [request] = services["notify"].wait_for(1)
    assert request.headers["ce-id"] == reply["id"]
    assert running.broker.wait_idle(15)


def test_a_reply_the_broker_could_not_take_is_retried_not_lost(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    """The broker refuses the reply once (RabbitMQ restarting: Unavailable): the delivery that
    produced it is not done, as in Knative, where a reply that cannot be forwarded fails the
    dispatch; it is retried, and the reply gets through (before, the event was acked and the
    reply dropped with a log line)."""
    reply = events.make_event(events.INVOICE_RENDERED, "/render-pdf", {"invoice_id": "inv-1"})
    services["render-pdf"].reply = events.to_http(reply)
    running = start_broker(manifests)
    dispatcher = running.broker.dispatcher
    publish = dispatcher.on_reply
    refused: list[str] = []

    def broker_down_once(event: events.Event) -> None:
        if not refused:
            refused.append(event["id"])
            raise Unavailable("RabbitMQ did not confirm the event in time")
        publish(event)

    dispatcher.on_reply = broker_down_once
    assert post_event(running, uploaded()).status_code == 202
    [request] = services["notify"].wait_for(1)
    assert request.headers["ce-id"] == reply["id"]
    assert running.broker.wait_idle(15)
    assert refused == [reply["id"]]
    assert len(services["render-pdf"].requests) == 2
    outcomes = [r for r in running.records if isinstance(r, Outcome) and r.trigger == "render-pdf"]
    assert [o.result for o in outcomes] == [DELIVERED]


def test_routing_comes_only_from_the_manifests(
    start_broker: StartBroker, services: Services, tmp_path: Path
) -> None:
    """Same code, edited copy of the project's manifests: the deliveries change."""
    manifests = tmp_path / "knative"
    shutil.copytree(REPO / "knative", manifests)

    def routed(invoice: str) -> events.Event:  # as the upload sends it: PDF and XLSX asked for
        return events.with_extensions(uploaded(invoice), naming.uploaded_routes(["pdf", "xlsx"]))

    running = start_broker(manifests)
    assert post_event(running, routed("inv-1")).status_code == 202
    assert running.broker.wait_idle(15)
    assert len(services["render-pdf"].requests) == 1
    assert len(services["render-xlsx"].requests) == 1
    assert services["notify"].requests == []
    requested = events.make_event(events.INVOICE_REQUESTED, "/api", {"invoice_id": "inv-1"})
    assert post_event(running, requested).status_code == 202
    [request] = services["intake"].wait_for(1)  # never upload: it is public
    assert request.path == "/"
    assert running.broker.wait_idle(15)
    running.broker.stop(1.0)

    # Edit the copy: render-xlsx now wants rendered events; render-pdf's subscriber is notify.
    path = manifests / "50-triggers.yaml"
    documents = path.read_text().split("\n---\n")
    documents = [
        d.replace(
            "type: io.invoiceflow.invoice.uploaded.v1", "type: io.invoiceflow.invoice.rendered.v1"
        ).replace('      renderxlsx: "true"\n', "")
        if "name: render-xlsx\n" in d
        else d
        for d in documents
    ]
    documents = [
        d.replace("      name: render-pdf\n", "      name: notify\n")
        if "name: render-pdf\n" in d
        else d
        for d in documents
    ]
    path.write_text("\n---\n".join(documents))
    for subscriber in services.values():
        subscriber.requests.clear()

    running = start_broker(manifests)
    event = routed("inv-2")
    assert post_event(running, event).status_code == 202
    [request] = services["notify"].wait_for(1)
    assert request.headers["ce-id"] == event["id"]
    assert running.broker.wait_idle(15)
    assert services["render-pdf"].requests == []
    assert services["render-xlsx"].requests == []  # its old binding is gone, too

    rendered = events.make_event(
        events.INVOICE_RENDERED,
        "/render-pdf",
        {"invoice_id": "inv-2"},
        extensions={"allrendered": "true"},  # notify-rendered takes complete invoices only
    )
    assert post_event(running, rendered).status_code == 202
    [request] = services["render-xlsx"].wait_for(1)
    assert request.headers["ce-id"] == rendered["id"]
    eventually(lambda: len(services["notify"].requests) == 2)  # notify-rendered, still
    assert running.broker.wait_idle(15)


def test_stopped_broker_answers_503(
    start_broker: StartBroker, services: Services, manifests: Path
) -> None:
    running = start_broker(manifests)
    running.broker.stop(1.0)
    response = post_event(running, uploaded())
    assert response.status_code == 503
    assert response.json()["status"] == 503
