"""Issue 9, finding 6: after a RabbitMQ restart the consumer thread died on
``ValueError: Timeout closed before call`` and never consumed again. A consumer now never
dies: any failure is logged in one line, followed by a backed-off reconnect, and
``healthy()`` says whether every trigger has a running consumer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest

from invoiceflow import events
from invoiceflow.errors import Unavailable
from invoiceflow_local.broker import Broker
from invoiceflow_local.rabbit import RabbitBroker, reconnect_delay
from invoiceflow_local.triggers import load_triggers
from support.brokerkit import (
    Services,
    eventually,
    require_rabbitmq,
    trigger_yaml,
    write_manifests,
)

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return write_manifests(
        tmp_path,
        trigger_yaml("render-pdf", events.INVOICE_UPLOADED, "render-pdf"),
        trigger_yaml("notify-rendered", events.INVOICE_RENDERED, "notify"),
    )


def uploaded(invoice: str) -> events.Event:
    return events.make_event(events.INVOICE_UPLOADED, "/upload", {"invoice_id": invoice})


def delivered(services: Services) -> set[str]:
    import json

    return {json.loads(r.body)["invoice_id"] for r in list(services["render-pdf"].requests)}


def test_reconnect_delay_is_exponential_capped_and_jittered() -> None:
    for failures in range(1, 30):
        ceiling = min(30.0, 0.5 * 2 ** (failures - 1))
        delays = {reconnect_delay(failures) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter: replicas do not reconnect in step
    assert max(reconnect_delay(50) for _ in range(50)) <= 30.0


def test_consumer_survives_value_error_inside_process_data_events(
    make_rabbit: Callable[..., RabbitBroker],
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The exact failure of the issue, provoked in the consumer thread only: three
    ``process_data_events`` calls in a row raise pika's ValueError."""
    require_rabbitmq()
    original = pika.BlockingConnection.process_data_events
    faults = {"left": 0}
    lock = threading.Lock()

    def faulty(self: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.endswith("-consumer"):
            with lock:
                if faults["left"] > 0:
                    faults["left"] -= 1
                    raise ValueError("Timeout closed before call")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pika.BlockingConnection, "process_data_events", faulty)
    broker = make_rabbit().start()
    broker.publish(uploaded("before"))
    eventually(lambda: delivered(services) == {"before"})
    assert broker.healthy()
    caplog.set_level(logging.WARNING, logger="invoiceflow_local.rabbit")
    with lock:
        faults["left"] = 3
    eventually(lambda: faults["left"] == 0)
    for n in range(5):
        broker.publish(uploaded(f"after-{n}"))
    eventually(lambda: delivered(services) >= {f"after-{n}" for n in range(5)}, timeout=30)
    eventually(broker.healthy)
    assert broker.wait_idle(30)
    failures = [r for r in caplog.records if "consumer failed" in r.getMessage()]
    assert len(failures) == 3  # one line per failure
    assert all("ValueError" in r.getMessage() and r.exc_info is None for r in failures)


@pytest.mark.slow
def test_consumer_comes_back_after_a_real_rabbitmq_restart(
    make_rabbit: Callable[..., RabbitBroker], services: Services, rabbit_node: Any
) -> None:
    """A RabbitMQ node of the test's own is stopped and started again: the broker reports
    unhealthy while it is down, then consumes again, including what waited in the queue."""
    broker = make_rabbit(url=rabbit_node.url).start()
    broker.publish(uploaded("before"))
    eventually(lambda: delivered(services) == {"before"})
    assert broker.healthy()
    rabbit_node.stop()
    eventually(lambda: not broker.healthy(), timeout=30)
    with pytest.raises(Unavailable):
        broker.publish(uploaded("while-down"))
    rabbit_node.start()
    eventually(broker.healthy, timeout=60)
    for n in range(5):
        broker.publish(uploaded(f"after-{n}"))
    eventually(lambda: delivered(services) >= {f"after-{n}" for n in range(5)}, timeout=30)
    assert broker.consume and broker.healthy()


def test_in_process_broker_reports_health(services: Services, manifests: Path) -> None:
    broker = Broker(load_triggers(manifests), services.resolve)
    assert not broker.healthy()
    broker.start()
    try:
        assert broker.healthy()
    finally:
        broker.stop(timeout=0.5)
    assert not broker.healthy()
