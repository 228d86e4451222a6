"""Fixtures for the broker tests: subscribers as real HTTP servers, and a broker factory
that builds either backend (in process, RabbitMQ) behind a real HTTP ingress."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from invoiceflow_local.broker import Broker
from invoiceflow_local.delivery import Attempt, Outcome
from invoiceflow_local.triggers import load_triggers
from support.brokerkit import (
    Running,
    Services,
    Subscriber,
    require_rabbitmq,
)
from support.services import RABBITMQ_URL


@pytest.fixture
def services() -> Iterator[Services]:
    found = Services()
    for name in (
        "render-pdf",
        "render-xlsx",
        "render-xml",
        "upload",
        "intake",
        "notify",
        "dead-letter",
        "audit",
    ):
        found[name] = Subscriber(name).start()
    yield found
    for subscriber in found.values():
        subscriber.stop()


@pytest.fixture
def rabbit_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}."


@pytest.fixture(params=["memory", "durable", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbitmq":
        require_rabbitmq()
    return str(request.param)


@pytest.fixture
def start_broker(
    backend: str, services: Services, rabbit_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., Running]]:
    """start_broker(manifest_dir, **options) -> Running; everything stopped and deleted after."""
    started: list[tuple[Any, Any]] = []
    rabbits: list[Any] = []

    def start(manifests: Path, **options: Any) -> Running:
        triggers = load_triggers(manifests)
        broker: Any
        if backend == "rabbitmq":
            from invoiceflow_local.rabbit import RabbitBroker

            options.setdefault("prefix", rabbit_prefix)
            broker = RabbitBroker(triggers, services.resolve, url=RABBITMQ_URL, **options)
            rabbits.append(broker)
        elif backend == "durable":  # the in-process broker with its queue in SQLite
            from invoiceflow.stores import open_repository

            store = open_repository(f"sqlite:///{tmp_path / 'broker.db'}")
            store.migrate()
            broker = Broker(triggers, services.resolve, store=store, **options)
        else:
            broker = Broker(triggers, services.resolve, **options)
        records: list[Attempt | Outcome] = []
        broker.listeners.append(records.append)
        broker.start()
        server = make_server("127.0.0.1", 0, broker.wsgi_app, threaded=True)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        started.append((broker, server))
        return Running(broker, f"http://127.0.0.1:{server.server_port}/", records)

    yield start
    for broker, server in reversed(started):
        server.shutdown()
        broker.stop(timeout=1.0)
    for broker in rabbits:
        broker.delete_topology()


@pytest.fixture
def make_rabbit(
    services: Services, rabbit_prefix: str, manifests: Path
) -> Iterator[Callable[..., Any]]:
    """make_rabbit(url=RABBITMQ_URL, **options): RabbitBrokers on the test module's
    ``manifests`` with this test's queue prefix (reconnecting within 0.2 to 2 s); stopped, and
    their topology deleted, afterwards."""
    from invoiceflow.errors import Unavailable
    from invoiceflow_local.rabbit import RabbitBroker

    made: list[RabbitBroker] = []

    def make(url: str = RABBITMQ_URL, **options: Any) -> RabbitBroker:
        if url == RABBITMQ_URL:
            require_rabbitmq()
        options.setdefault("reconnect_min", 0.2)
        options.setdefault("reconnect_max", 2.0)
        broker = RabbitBroker(
            load_triggers(manifests), services.resolve, url=url, prefix=rabbit_prefix, **options
        )
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop(timeout=0.5)
    if not made:
        return
    try:
        made[-1].delete_topology()
    except Unavailable:  # a RabbitMQ node of the test's own that is gone already
        pass
