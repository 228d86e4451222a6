"""What only the RabbitMQ backend promises: durable, persistent, confirmed, and events that
survive a restart of the broker process. (The delivery rules are in test_broker.py, run
against both backends.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from invoiceflow import events, naming
from invoiceflow.errors import Unavailable
from invoiceflow_local.delivery import DROPPED, Outcome
from invoiceflow_local.triggers import load_triggers
from support.brokerkit import REPO, Services, trigger_yaml, write_manifests

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return write_manifests(
        tmp_path,
        trigger_yaml("render-pdf", events.INVOICE_UPLOADED, "render-pdf", retry=3, delay="PT0.05S"),
        trigger_yaml("notify-rendered", events.INVOICE_RENDERED, "notify", dead_letter=False),
    )


def uploaded(invoice: str) -> events.Event:
    return events.make_event(events.INVOICE_UPLOADED, "/upload", {"invoice_id": invoice})


def test_published_events_survive_a_restart_of_the_broker(
    make_rabbit: Callable[..., Any], services: Services
) -> None:
    first = make_rabbit(consume=False).start()  # ingress only: nobody consumes yet
    sent = [uploaded(f"inv-{i}") for i in range(3)]
    for event in sent:
        status, _, _ = first.handle(*events.to_http(event))
        assert status == 202
    first.stop()
    assert services["render-pdf"].requests == []
    assert first.queue_depths()[first.queue_name("render-pdf")] == 3

    second = make_rabbit().start()  # a new broker process, same RabbitMQ
    received = services["render-pdf"].wait_for(3)
    assert second.wait_idle(15)
    assert sorted(r.headers["ce-id"] for r in received) == sorted(e["id"] for e in sent)
    assert second.queue_depths()[second.queue_name("render-pdf")] == 0


def test_an_event_waiting_for_a_retry_survives_a_stop(
    make_rabbit: Callable[..., Any], services: Services, tmp_path: Path
) -> None:
    write_manifests(
        tmp_path,
        trigger_yaml("render-pdf", events.INVOICE_UPLOADED, "render-pdf", retry=3, delay="PT30S"),
    )
    services["render-pdf"].script = [503]
    first = make_rabbit().start()
    event = uploaded("inv-1")
    assert first.handle(*events.to_http(event))[0] == 202
    services["render-pdf"].wait_for(1)
    first.stop(timeout=0.2)  # mid-backoff: the message was never acked

    second = make_rabbit().start()
    received = services["render-pdf"].wait_for(2)
    assert second.wait_idle(15)
    assert [r.headers["ce-id"] for r in received] == [event["id"], event["id"]]
    assert services["dead-letter"].requests == []


def test_messages_are_persistent_binary_cloudevents_in_durable_queues(
    make_rabbit: Callable[..., Any],
) -> None:
    from invoiceflow_local.rabbit import binding_arguments

    broker = make_rabbit(consume=False).start()
    event = uploaded("inv-1")
    broker.publish(event)
    trigger = broker.triggers[0]
    assert binding_arguments(trigger) == {"x-match": "all", "ce-type": events.INVOICE_UPLOADED}
    connection = broker.connect()
    try:
        channel = connection.channel()
        for name in (broker.queue_name(trigger), broker.dead_letter_queue):
            assert channel.queue_declare(name, durable=True, passive=True)
        method, properties, body = channel.basic_get(broker.queue_name(trigger), auto_ack=True)
        assert method is not None
    finally:
        connection.close()
    assert properties.delivery_mode == 2
    assert properties.headers["ce-id"] == event["id"]
    assert properties.headers["ce-type"] == events.INVOICE_UPLOADED
    assert properties.content_type == "application/json"
    assert json.loads(body) == {"invoice_id": "inv-1"}
    # an event no trigger wants is confirmed and routed nowhere
    broker.publish(events.make_event(events.INVOICE_NOTIFIED, "/notify", {"invoice_id": "x"}))
    assert sum(broker.queue_depths().values()) == 0


def test_undeliverable_without_dead_letter_sink_is_parked_in_the_dead_letter_queue(
    make_rabbit: Callable[..., Any], services: Services
) -> None:
    services["notify"].default = 422
    broker = make_rabbit().start()
    outcomes: list[Outcome] = []
    broker.listeners.append(lambda r: outcomes.append(r) if isinstance(r, Outcome) else None)
    event = events.make_event(events.INVOICE_RENDERED, "/render-pdf", {"invoice_id": "inv-1"})
    broker.publish(event)
    services["notify"].wait_for(1)
    assert broker.wait_idle(15)
    assert [o.result for o in outcomes] == [DROPPED]
    assert broker.queue_depths()[broker.dead_letter_queue] == 1


def test_a_message_that_is_not_a_cloudevent_is_parked(
    make_rabbit: Callable[..., Any], services: Services
) -> None:
    import pika

    broker = make_rabbit().start()
    connection = broker.connect()
    try:
        connection.channel().basic_publish(
            broker.exchange,
            "",
            b"{}",
            pika.BasicProperties(headers={"ce-type": events.INVOICE_UPLOADED}, delivery_mode=2),
        )
    finally:
        connection.close()
    assert broker.wait_idle(15)
    assert broker.queue_depths()[broker.dead_letter_queue] == 1
    assert services["render-pdf"].requests == []


def test_unreachable_rabbitmq_is_unavailable(services: Services, manifests: Path) -> None:
    from invoiceflow_local.rabbit import RabbitBroker

    broker = RabbitBroker(
        load_triggers(manifests),
        services.resolve,
        url="amqp://guest:secret@127.0.0.1:1/",
        prefix="never.",
    )
    with pytest.raises(Unavailable) as raised:
        broker.start()
    assert "secret" not in str(raised.value)
    assert broker.handle(*events.to_http(uploaded("x")))[0] == 503


@pytest.mark.parametrize("manifests", [REPO / "knative"])
def test_the_render_triggers_bind_their_routing_attribute(
    make_rabbit: Callable[..., Any], manifests: Path
) -> None:
    """The project's Triggers on RabbitMQ: an uploaded event lands in the queue of each render
    step its formats need (a headers-exchange binding on ``ce-render*``), no other."""
    from invoiceflow_local.rabbit import binding_arguments

    broker = make_rabbit(consume=False).start()
    triggers = {t.name: t for t in broker.triggers}
    assert binding_arguments(triggers["render-xml"]) == {
        "x-match": "all",
        "ce-type": events.INVOICE_UPLOADED,
        "ce-renderxml": "true",
    }
    for invoice, formats in [("a", ["pdf", "xlsx"]), ("b", ["cii"]), ("c", ["facturx", "ubl"])]:
        broker.publish(
            events.make_event(
                events.INVOICE_UPLOADED,
                naming.UPLOAD_SOURCE,
                {"invoice_id": invoice, "formats": formats},
                extensions=naming.uploaded_routes(formats),
            )
        )
    depths = broker.queue_depths()
    assert {name: depths[broker.queue_name(t)] for name, t in triggers.items()} == {
        "render-pdf": 2,
        "render-xlsx": 1,
        "render-xml": 2,
        "intake-requested": 0,
        "notify-rendered": 0,
        "notify-failed": 0,
    }
