"""Issue 9, finding 7: the embedded broker's queue lives in the runtime's database. What it
accepted is delivered by the next process, retries keep their schedule, a row goes only
after the subscriber's 2xx (or the dead-letter sink's), and what nobody took is parked
until the event is published again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from invoiceflow import events
from invoiceflow.stores import Repository, open_repository
from invoiceflow_local.broker import Broker
from invoiceflow_local.triggers import load_triggers
from support.brokerkit import Services, eventually, trigger_yaml, write_manifests


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    url = (
        f"sqlite:///{tmp_path / 'runtime.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    repo = open_repository(url)
    repo.migrate()
    yield repo
    repo.close()


@pytest.fixture
def make_broker(
    services: Services, store: Repository, tmp_path: Path
) -> Iterator[Callable[..., Broker]]:
    manifests = write_manifests(
        tmp_path / "knative",
        trigger_yaml(
            "render-pdf",
            events.INVOICE_UPLOADED,
            "render-pdf",
            retry=5,
            policy="linear",
            delay="PT30S",
        ),
        trigger_yaml("audit", events.INVOICE_UPLOADED, "audit", retry=0, dead_letter=False),
        trigger_yaml("notify-rendered", events.INVOICE_RENDERED, "notify", retry=0),
    )
    made: list[Broker] = []

    def make() -> Broker:
        broker = Broker(load_triggers(manifests), services.resolve, store=store).start()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop(timeout=0.2)


def uploaded(invoice: str) -> events.Event:
    return events.make_event(events.INVOICE_UPLOADED, "/upload", {"invoice_id": invoice})


def ids(services: Services, name: str) -> list[str]:
    return [json.loads(r.body)["invoice_id"] for r in list(services[name].requests)]


def test_accepted_events_wait_in_the_database_and_the_next_process_delivers_them(
    make_broker: Callable[..., Broker], services: Services, store: Repository
) -> None:
    services["render-pdf"].default = 503  # down: the first try fails, the retry is 30 s away
    first = make_broker()
    published = [uploaded(f"inv-{n}") for n in range(3)]
    for event in published:
        first.publish(event)
    first.publish(published[0])  # an event published twice is queued once per trigger
    eventually(lambda: len(services["render-pdf"].requests) == 3)
    eventually(
        lambda: all(
            r.trigger == "render-pdf" and r.attempt == 1
            for r in store.queued_deliveries(first.name)
        )
    )
    rows = store.queued_deliveries(first.name)
    assert sorted((r.trigger, json.loads(r.body)["invoice_id"]) for r in rows) == [
        ("render-pdf", "inv-0"),
        ("render-pdf", "inv-1"),
        ("render-pdf", "inv-2"),
    ]
    # the audit trigger got its 2xx: its rows are gone; the retry schedule is stored
    assert all(r.phase == "subscriber" and r.last_error == "503" for r in rows)
    assert sorted(set(ids(services, "audit"))) == ["inv-0", "inv-1", "inv-2"]
    audited = len(services["audit"].requests)  # (inv-0 twice if it was delivered already)
    first.stop(timeout=0.1)  # the process goes away (a crash leaves the same rows)
    services["render-pdf"].default = 200
    second = make_broker()
    # resumed on the stored schedule: not before the 30 s backoff...
    assert second.dispatcher.pending == 3 and len(services["render-pdf"].requests) == 3
    # ...which a test cannot wait for: pull the due time in, as time passing would
    second.stop(timeout=0.1)
    for row in store.queued_deliveries(second.name):
        store.reschedule_delivery(
            row.id,
            phase=row.phase,
            attempt=row.attempt,
            due_at=row.created_at,
            outgoing=None,
            error=row.last_error,
        )
    third = make_broker()
    assert third.wait_idle(15)
    assert sorted(ids(services, "render-pdf")[3:]) == ["inv-0", "inv-1", "inv-2"]
    assert store.queued_deliveries(third.name) == []
    assert len(services["audit"].requests) == audited  # delivered rows are not sent again


def test_an_event_nobody_took_is_parked_for_an_operator(
    make_broker: Callable[..., Broker], services: Services, store: Repository
) -> None:
    services["audit"].default = 400  # permanent, and the audit trigger has no dead-letter sink
    broker = make_broker()
    broker.publish(uploaded("inv-x"))
    assert broker.wait_idle(15)
    (parked,) = store.queued_deliveries(broker.name, state="parked")
    assert parked.trigger == "audit" and parked.last_error == "dropped"
    assert store.queued_deliveries(broker.name) == []
    broker.stop(timeout=0.1)
    again: Any = make_broker()
    assert again.dispatcher.pending == 0  # parked rows are not delivered again


def test_an_event_published_again_after_it_was_parked_is_delivered(
    make_broker: Callable[..., Broker], services: Services, store: Repository
) -> None:
    """A parked row no longer blocks its event: published again with the same id (what
    ``invoiceflow invoices redrive`` does), the event is queued afresh, with the new
    publish's headers and body, from the first attempt at the subscriber. Before, the
    broker answered 202 and the event was never delivered."""
    services["notify"].default = 503
    services["dead-letter"].default = 503  # and so does the dead-letter sink: parked
    broker = make_broker()
    event_id = "evt-parked"

    def rendered(attempt: int) -> events.Event:
        return events.make_event(
            events.INVOICE_RENDERED,
            "/render-pdf",
            {"invoice_id": "inv-p", "try": attempt},
            id=event_id,
        )

    broker.publish(rendered(1))
    assert broker.wait_idle(15)
    (parked,) = store.queued_deliveries(broker.name, state="parked")
    assert (parked.phase, parked.last_error) == ("dead-letter", "dead-letter-failed")
    assert parked.outgoing is not None

    services["notify"].default = 200
    broker.publish(rendered(2))
    assert broker.wait_idle(15)
    first, again = services["notify"].requests
    assert first.headers["ce-id"] == again.headers["ce-id"] == event_id
    assert json.loads(again.body) == {"invoice_id": "inv-p", "try": 2}
    assert len(services["dead-letter"].requests) == 1  # the new delivery started over
    assert store.queued_deliveries(broker.name, state="parked") == []
    assert store.queued_deliveries(broker.name) == []


def test_a_parked_row_published_again_is_pending_from_the_start(
    store: Repository,
) -> None:
    """The store's side: the parked row becomes pending again with the new headers and body,
    subscriber phase, attempt 0, due now, no dead letter and no error; a row still pending
    is not queued twice, so an event being delivered is not delivered twice at once."""
    (row,) = store.enqueue_deliveries("b", ["t"], "/s", "e-1", {"ce-id": "e-1"}, b"one")
    assert store.reschedule_delivery(
        row.id,
        phase="dead-letter",
        attempt=3,
        due_at=row.created_at,
        outgoing={"headers": {}, "body": ""},
        error="503",
    )
    assert store.enqueue_deliveries("b", ["t"], "/s", "e-1", {"ce-id": "e-1"}, b"two") == []
    assert store.park_delivery(row.id, "dead-letter-failed")

    (again,) = store.enqueue_deliveries("b", ["t"], "/s", "e-1", {"ce-id": "e-1", "x": "y"}, b"3")
    assert again.id == row.id and again.created_at == row.created_at
    assert (again.state, again.phase, again.attempt) == ("pending", "subscriber", 0)
    assert (again.headers, again.body) == ({"ce-id": "e-1", "x": "y"}, b"3")
    assert again.outgoing is None and again.last_error is None
    assert again.due_at >= row.due_at
    assert store.queued_deliveries("b") == [again]
    assert store.queued_deliveries("b", state="parked") == []
    assert store.enqueue_deliveries("b", ["t"], "/s", "e-1", {"ce-id": "e-1"}, b"4") == []
