"""Fault injection (issue 9): 300 uploads while the runtime is killed with SIGKILL, RabbitMQ is
restarted and PostgreSQL is restarted, each in turn, on servers this test starts itself on
their own ports (never the machine's shared ones). Afterwards every upload that was answered
202 is ``ready`` with exactly one PDF, one XLSX and one email (one Message-ID; SendGrid may
have been handed it a second time only after a SIGKILL between its 202 and the email being
marked sent, at most once per SIGKILL, see ``_settle``), and nothing is left in the outbox or
the broker's queues.

Run by CI apart from the main suite (it takes minutes): ``.venv/bin/pytest -m faults -rP``;
``-rP`` prints the counts of each run.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from invoiceflow_local.delivery import DEFAULT_WORKERS
from support.api import EXAMPLES
from support.devprocess import BIN, Dev, add_user, embedded_env, query, wait_until_ready
from support.sendgrid import FakeSendGrid, fake_sendgrid

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PASSWORD = "fault-passw0rd-long-enough"
UPLOADS, CLIENTS = 300, 8


@dataclass
class Batch:
    """The uploads of one run: each client retries its upload (same Idempotency-Key) until it
    is answered, as an integration would across a crash; a 202 is an accepted invoice."""

    dev: Dev
    auth: dict[str, str]
    accepted: dict[str, str] = field(default_factory=dict)  # number -> invoice id
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: run once when this many uploads were accepted (the faults, in turn)
    faults: dict[int, Callable[[], None]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    queues: dict[str, str] = field(default_factory=dict)  # the last look at the queues

    def upload(self, n: int) -> None:
        template = json.loads((EXAMPLES / "minimal.json").read_text())
        number = f"FAULT-{n:03d}"
        body = json.dumps({**template, "number": number})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                r = requests.post(
                    f"{self.dev.url}/upload",
                    data=body,
                    timeout=30,
                    headers={
                        **self.auth,
                        "Content-Type": "application/json",
                        "Idempotency-Key": number,
                    },
                )
            except requests.RequestException:
                time.sleep(0.2)  # the runtime is down: try again, as a client would
                continue
            if r.status_code in (429, 503):
                time.sleep(0.2)
                continue
            if r.status_code != 202:
                with self.lock:
                    self.refused[str(r.status_code)] += 1
                return
            with self.lock:
                self.accepted[number] = r.json()["invoice_id"]
                fault = self.faults.pop(len(self.accepted), None)
            if fault is not None:
                fault()
            return
        with self.lock:
            self.refused["gave up"] += 1

    def fault(self, name: str, action: Callable[[], None]) -> Callable[[], None]:
        """``action``, logged with the number of uploads accepted when it happened."""

        def inject() -> None:
            self.log.append(f"{name} at {len(self.accepted)} accepted")
            action()

        return inject

    def kill_and_restart(self) -> None:
        """SIGKILL the runtime mid-batch and start it again on the same data."""
        self.dev.kill()
        self.dev.start()

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            list(pool.map(self.upload, range(UPLOADS)))


def _login(dev: Dev) -> dict[str, str]:
    r = requests.post(f"{dev.url}/login", auth=("faults@example.com", PASSWORD), timeout=60)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _env(tmp_path: Path, sendgrid: FakeSendGrid, **extra: str) -> dict[str, str]:
    env = embedded_env(
        tmp_path / "data",
        SENDGRID_API_KEY="SG.fault-test",
        SENDGRID_HOST=sendgrid.url,
        **extra,
    )
    add_user(env, "faults@example.com", PASSWORD)
    return env


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with fake_sendgrid() as fake:
        yield fake


def _settle(
    env: dict[str, str],
    dev: Dev,
    batch: Batch,
    sendgrid: FakeSendGrid,
    queues_empty: Callable[[], bool],
) -> dict[str, Any]:
    """Wait for every accepted invoice, its email, an empty outbox and empty queues; then
    check each invoice and return the counts."""
    ids = list(batch.accepted.values())
    stuck = wait_until_ready(dev.url, batch.auth, ids, timeout=600)
    assert stuck == {}, (
        f"{len(stuck)} of {len(ids)} accepted uploads not ready: {dict(list(stuck.items())[:5])}"
    )
    numbers = set(batch.accepted)

    def ready_emails() -> list[tuple[str, str]]:
        """(invoice number, Message-ID) of every "ready" email SendGrid accepted."""
        return [
            (m["json"]["subject"].split()[1], m["json"]["headers"]["Message-ID"])
            for m in sendgrid.delivered
            if m["json"]["subject"].endswith(" is ready")
        ]

    def emails() -> Counter[str]:
        """Distinct messages per invoice: a resend carries the same Message-ID, and a mail
        system shows one message per Message-ID."""
        return Counter(number for number, _ in set(ready_emails()))

    pending_sql = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
    deadline = time.monotonic() + 240  # claims of a killed process expire (30 s leases)
    while time.monotonic() < deadline:
        if set(emails()) >= numbers and query(env, pending_sql) == [(0,)] and queues_empty():
            break
        time.sleep(0.5)
    # nothing left to deliver: a duplicate email now would already be here
    artifacts = query(env, "SELECT invoice_id, format FROM artifacts")
    per_invoice = Counter((i, f) for i, f in artifacts)
    sent = emails()
    for number, invoice_id in batch.accepted.items():
        assert per_invoice[(invoice_id, "pdf")] == 1, (number, "pdf")
        assert per_invoice[(invoice_id, "xlsx")] == 1, (number, "xlsx")
        assert sent[number] == 1, (number, f"{sent[number]} emails")
    # SendGrid has no idempotency key: a SIGKILL after it accepted an email and before the
    # email was marked sent makes the claim's takeover send it again, under the same
    # Message-ID (docs/operations.md, "Emails"). That is the only resend there may be: one per
    # email in flight at a SIGKILL (at most the broker's delivery workers), each announced in
    # the log by the takeover, and none in a run without a SIGKILL.
    deliveries = Counter(number for number, _ in ready_emails())
    resent = {number: count - 1 for number, count in deliveries.items() if count > 1}
    kills = sum(1 for entry in batch.log if entry.startswith("SIGKILL"))
    assert all(count == 1 for count in resent.values()), f"sent three times or more: {resent}"
    assert len(resent) <= kills * DEFAULT_WORKERS, f"resent {resent} after {kills} SIGKILLs"
    log = dev.log.read_text(errors="replace")
    for number in resent:
        key = f"{batch.accepted[number]}-ready"
        announced = f"resending it under the same message id (key {key})"
        assert announced in log, (number, "resent without a takeover")
    assert set(sent) <= numbers, "an email for an upload that was never accepted"
    (pending,) = query(env, pending_sql)
    assert pending == (0,), "events left in the outbox"
    assert queues_empty(), f"events left in the broker's queues: {batch.queues}"
    return {
        "uploads": UPLOADS,
        "accepted": len(batch.accepted),
        "refused": dict(batch.refused),
        "ready": len(ids),
        "pdf": len(ids),
        "xlsx": len(ids),
        "emails": sum(sent.values()),
        "resent_after_sigkill": sum(resent.values()),
        "outbox_pending": 0,
        "faults": batch.log,
    }


def test_embedded_default_survives_sigkill_twice(tmp_path: Path, sendgrid: FakeSendGrid) -> None:
    """SQLite, a files directory and the durable in-process broker; SIGKILL at 100 and 200
    accepted uploads, restarted on the same data directory each time."""
    env = _env(tmp_path, sendgrid)
    dev = Dev(env, tmp_path / "dev.log").start()
    try:
        batch = Batch(dev, _login(dev))
        sigkill = batch.fault("SIGKILL", batch.kill_and_restart)
        batch.faults = {100: sigkill, 200: sigkill}
        batch.run()
        counts = _settle(
            env,
            dev,
            batch,
            sendgrid,
            queues_empty=lambda: query(env, "SELECT count(*) FROM broker_queue") == [(0,)],
        )
    finally:
        dev.stop()
    print(f"embedded: {json.dumps(counts)}")
    assert not batch.faults, "every fault was injected"


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_postgres_and_rabbitmq_survive_sigkill_and_both_server_restarts(
    tmp_path: Path, sendgrid: FakeSendGrid, postgres_cluster: Any, rabbit_node: Any
) -> None:
    """PostgreSQL and RabbitMQ of the test's own: SIGKILL of the runtime at 75 accepted
    uploads, a RabbitMQ restart at 150, a PostgreSQL restart at 225."""
    env = _env(
        tmp_path,
        sendgrid,
        DATABASE_URL=postgres_cluster.url,
        RABBITMQ_URL=rabbit_node.url,
        OUTBOX_CLAIM_SECONDS="11",
    )
    migrated = subprocess.run(
        [str(BIN / "invoiceflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    dev = Dev(env, tmp_path / "dev.log").start()
    try:
        batch = Batch(dev, _login(dev))
        batch.faults = {
            75: batch.fault("SIGKILL", batch.kill_and_restart),
            150: batch.fault("RabbitMQ restart", rabbit_node.restart),
            225: batch.fault("PostgreSQL restart", postgres_cluster.restart),
        }
        batch.run()

        def queues_empty() -> bool:
            r = rabbit_node.ctl("list_queues", "-q", "--no-table-headers", "name", "messages")
            depths = dict(
                line.rsplit(None, 1)
                for line in r.stdout.splitlines()
                if line.strip()
                # its one message records the bound filters: not an event
                if not line.split()[0].endswith(".topology")
            )
            batch.queues = depths
            return r.returncode == 0 and all(depth == "0" for depth in depths.values())

        counts = _settle(env, dev, batch, sendgrid, queues_empty)
    finally:
        dev.stop()
    print(f"postgres+rabbitmq: {json.dumps(counts)}")
    assert not batch.faults, "every fault was injected"
