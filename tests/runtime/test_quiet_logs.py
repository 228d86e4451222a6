"""Logs of a normal run hold no warnings: an expected redelivery or wait is DEBUG or INFO, and
a broker that refuses events is retried with a backoff whose warnings say when the next try is."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from invoiceflow import accounts, events
from invoiceflow.context import get_context
from invoiceflow.errors import Unavailable
from invoiceflow.outbox import relay
from invoiceflow_local import dev
from invoiceflow_local.dev import RELAY_BACKOFF_MAX, LocalRuntime
from support.api import EXAMPLES, Person, Sink, example
from support.brokerkit import Running, Services, trigger_yaml, write_manifests
from support.devprocess import wait_until_ready

PASSWORD = "correct horse battery staple"


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING
    ]


#: a log line of a function process (invoiceflow.logs' format, or gunicorn's) at WARNING or above
_PROCESS_WARNING = re.compile(
    r"^\S+ \S+ (WARNING|ERROR|CRITICAL) |\[(WARNING|ERROR|CRITICAL)\]", re.MULTILINE
)


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "function-processes"])
def test_one_upload_to_ready_logs_no_warning(
    clean_env: None,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    workers: int,
) -> None:
    """The local runtime as ``invoiceflow dev`` starts it (no JWT_SECRET, embedded
    defaults), its functions in this process or in their own: start, log in, upload, render,
    notify, stop: not one WARNING (the function processes' logs are their standard error)."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")  # every record reaches the check
    with LocalRuntime("127.0.0.1", 0, workers=workers) as runtime:
        accounts.add_user(get_context().repo, "ann@example.com", PASSWORD)
        r = requests.post(f"{runtime.url}/login", auth=("ann@example.com", PASSWORD), timeout=30)
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        r = requests.post(
            f"{runtime.url}/upload",
            headers=auth,
            files={"file": ("invoice_data.json", (EXAMPLES / "minimal.json").read_bytes())},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        stuck = wait_until_ready(runtime.url, auth, [r.json()["invoice_id"]], timeout=60)
        assert stuck == {}, f"the invoice did not become ready: {stuck}"
        outbox = get_context().settings.mail_outbox_dir
        deadline = time.monotonic() + 30
        while not list(outbox.glob("*.eml")):
            assert time.monotonic() < deadline, "no email"
            time.sleep(0.1)
        assert runtime.broker.wait_idle(30)
    if workers:
        processes = capfd.readouterr().err
        assert "accepted invoice" in processes  # it listens
        assert _PROCESS_WARNING.findall(processes) == [], processes[-3000:]
    else:
        assert any("accepted invoice" in r.getMessage() for r in logs.records)  # it listens
    assert warnings_in(logs) == []


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return write_manifests(
        tmp_path / "knative",
        trigger_yaml("render-pdf", events.INVOICE_UPLOADED, "render-pdf", retry=3),
    )


def test_an_expected_409_redelivery_is_debug_another_retry_info(
    start_broker: Callable[..., Running],
    services: Services,
    manifests: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="invoiceflow_local")
    services["render-pdf"].script = [409, 503]
    running = start_broker(manifests)
    event = events.make_event(events.INVOICE_UPLOADED, "/upload", {"invoice_id": "inv-1"})
    headers, body = events.to_http(event)
    r = requests.post(running.ingress_url, data=body, headers=headers, timeout=10)
    assert r.status_code == 202
    services["render-pdf"].wait_for(3)
    assert running.broker.wait_idle(15)
    retries = {
        r.getMessage().split("failed (")[1][:3]: r.levelname
        for r in caplog.records
        if "retry " in r.getMessage()
    }
    assert retries == {"409": "DEBUG", "503": "INFO"}
    assert warnings_in(caplog) == []


class _Stops:
    """A stand-in for the runtime's stop event that records each wait and stops after some."""

    def __init__(self, waits: int) -> None:
        self.waits: list[float] = []
        self.left = waits

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.left -= 1
        return self.left < 0

    def set(self) -> None:
        self.left = -1

    def is_set(self) -> bool:
        return self.left < 0


def test_the_relay_loop_backs_off_while_the_broker_refuses_and_says_when_it_tries_next(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes: list[Any] = [Unavailable("the broker is down")] * 8 + [3, 0]

    def fake_relay(ctx: Any, *, raise_failure: bool = False) -> int:
        assert raise_failure
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return int(outcome)

    monkeypatch.setattr(dev, "relay", fake_relay)
    monkeypatch.setattr(dev, "get_context", lambda: None)
    runtime = LocalRuntime(relay_interval=1.0)
    stops = _Stops(10)
    monkeypatch.setattr(runtime, "_stopping", stops)
    caplog.set_level(logging.DEBUG, logger="invoiceflow_local")
    runtime._relay_loop()
    assert stops.waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 1, 1]
    assert RELAY_BACKOFF_MAX == 60
    warned = warnings_in(caplog)
    assert len(warned) == 8
    assert warned[0].endswith("the broker is down; next try in 2 s")
    assert warned[-1].endswith("next try in 60 s")


def test_a_refused_relay_is_no_warning_of_the_outbox_and_is_raised_when_asked(
    upload_client: Any, alice: Person, sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    """The event waits in the outbox for the next relay: an expected wait (the sender's own
    line, invoiceflow.events, says the broker refused it)."""
    sink.status = 503
    r = upload_client.post(
        "/upload",
        headers=alice.auth,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(example("minimal.json")), "invoice_data.json")},
    )
    assert r.status_code == 202  # the event waits in the outbox
    outbox = [r for r in logs.records if r.name == "invoiceflow.outbox"]
    assert [r.levelname for r in outbox] == ["INFO"]
    assert outbox[0].getMessage().startswith("outbox relay stopped at event")
    ctx = get_context()
    assert relay(ctx) == 0
    with pytest.raises(Unavailable):
        relay(ctx, raise_failure=True)
    assert ctx.repo.pending_outbox_events(limit=10)  # still there for the next relay
    sink.status = 202
    assert relay(ctx, raise_failure=True) == 1


def test_the_rabbitmq_consumer_backs_off_with_a_cap_and_says_when_it_tries_next(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from invoiceflow_local.package_data import KNATIVE_DIR
    from invoiceflow_local.rabbit import RabbitBroker
    from invoiceflow_local.triggers import load_triggers

    broker = RabbitBroker(load_triggers(KNATIVE_DIR), lambda name: "", reconnect_max=4.0)

    def refused() -> Any:
        raise ConnectionRefusedError("RabbitMQ is down")

    monkeypatch.setattr(broker, "_consumer_connection", refused)
    stops = _Stops(6)
    monkeypatch.setattr(broker, "_stopping", stops)
    caplog.set_level(logging.DEBUG, logger="invoiceflow_local")
    broker._consume_forever()
    ceilings = [0.5, 1, 2, 4, 4, 4, 4]  # doubling from 0.5 s, at most reconnect_max
    assert len(stops.waits) == len(ceilings)
    for wait, ceiling in zip(stops.waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling  # jittered
    warned = warnings_in(caplog)
    assert len(warned) == len(ceilings)
    for line, wait in zip(warned, stops.waits, strict=True):
        assert "RabbitMQ is down" in line and f"next try in {wait:.1f} s" in line
