"""Issue 9, finding 7: ``invoiceflow dev`` on the embedded defaults (SQLite, files, the
in-process broker) is killed with SIGKILL in the middle of a batch of uploads and started
again: every upload that was answered 202 ends ``ready`` with one PDF, one XLSX and one email,
and nothing is left in the outbox or the broker's queue. (Before, the outbox marked events
sent once the in-memory broker took them, and the broker lost them with the process.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support.api import EXAMPLES
from support.devprocess import Dev, add_user, embedded_env, query, wait_until_ready

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-passw0rd"
UPLOADS, CLIENTS, KILL_AFTER = 32, 4, 10


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("postgres+rabbitmq", marks=[pytest.mark.postgres, pytest.mark.rabbitmq]),
    ]
)
def dev_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The embedded defaults, or Postgres and a RabbitMQ node of the test's own."""
    env = embedded_env(tmp_path / "data")
    if request.param != "embedded":
        env["DATABASE_URL"] = str(request.getfixturevalue("postgres_url"))
        env["RABBITMQ_URL"] = request.getfixturevalue("rabbit_node").url
        # the killed process's claims free up after this (the shortest allowed lease)
        env["OUTBOX_CLAIM_SECONDS"] = "11"
    add_user(env, "crash@example.com", PASSWORD)
    yield env


def test_sigkill_mid_batch_then_restart_every_accepted_upload_is_ready(
    dev_env: dict[str, str], tmp_path: Path
) -> None:
    dev = Dev(dev_env, tmp_path / "dev.log").start()
    try:
        token = requests.post(
            f"{dev.url}/login", auth=("crash@example.com", PASSWORD), timeout=30
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # without a number: each upload gets the next of the series (numbers are used once)
        sample = json.loads((EXAMPLES / "eur-two-rates.json").read_bytes())
        document = json.dumps({k: v for k, v in sample.items() if k != "number"}).encode()
        accepted: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()

        def upload(_: int) -> None:
            if killed.is_set():
                return
            try:
                r = requests.post(
                    f"{dev.url}/upload",
                    data=document,
                    timeout=30,
                    headers={**auth, "Content-Type": "application/json"},
                )
            except requests.RequestException:
                return  # the process died under this request: not accepted
            if r.status_code == 202:
                with lock:
                    accepted.append(r.json()["invoice_id"])
                    if len(accepted) == KILL_AFTER and not killed.is_set():
                        killed.set()
                        dev.kill()  # mid-batch: renders and emails are in flight

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            list(pool.map(upload, range(UPLOADS)))
        assert killed.is_set() and len(accepted) >= KILL_AFTER
        dev.start()  # the same data directory, a new process
        stuck = wait_until_ready(dev.url, auth, accepted, timeout=120)
        assert stuck == {}, f"{len(stuck)} of {len(accepted)} accepted uploads not ready: {stuck}"
        # the numbers the killed process gave are 1..n: none lost, none twice
        numbers = sorted(str(n) for (n,) in query(dev_env, "SELECT number FROM invoices"))
        assert numbers == [f"2026-{i:05d}" for i in range(1, len(numbers) + 1)], numbers
        outbox = Path(dev_env["DATA_DIR"]) / "outbox"
        deadline = time.monotonic() + 90  # a notify killed mid-send is taken over later
        while time.monotonic() < deadline and not all(
            (outbox / f"{i}-ready.eml").exists() for i in accepted
        ):
            time.sleep(0.2)
        leftovers = (
            "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) + "
            "(SELECT count(*) FROM broker_queue)"
        )
        deadline = time.monotonic() + 45  # the relay loop: every second (claims: a 30 s lease)
        while time.monotonic() < deadline and query(dev_env, leftovers) != [(0,)]:
            time.sleep(0.2)
        dev.stop()
        artifacts = query(dev_env, "SELECT invoice_id, format FROM artifacts")
        sent = query(
            dev_env, "SELECT invoice_id FROM notifications WHERE kind = 'ready' AND state = 'sent'"
        )
        (pending,) = query(dev_env, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        (queued,) = query(dev_env, "SELECT count(*) FROM broker_queue")
        print(
            f"{len(accepted)} uploads answered 202 before and around the SIGKILL; "
            f"{len(accepted)} ready after the restart; outbox pending {pending[0]}, "
            f"broker queue {queued[0]}"
        )
        for invoice_id in accepted:
            formats = sorted(f for i, f in artifacts if i == invoice_id)
            assert formats == ["pdf", "xlsx"], invoice_id  # one PDF, one XLSX
            assert (outbox / f"{invoice_id}-ready.eml").exists(), invoice_id  # one email
            assert sum(1 for (i,) in sent if i == invoice_id) == 1, invoice_id
        assert pending == (0,) and queued == (0,)
    finally:
        dev.stop()


def test_durable_queue_rows_have_readable_events(tmp_path: Path) -> None:
    """The stored form is the binary-mode HTTP message (headers JSON + body)."""
    from invoiceflow import events
    from invoiceflow.stores import open_repository

    repo = open_repository(f"sqlite:///{tmp_path / 'q.db'}")
    repo.migrate()
    event = events.make_event(events.INVOICE_UPLOADED, "/upload", {"invoice_id": "x"})
    headers, body = events.to_http(event)
    (row,) = repo.enqueue_deliveries("b", ["t"], "/upload", event["id"], headers, body)
    assert events.from_request(row.headers, row.body)["id"] == event["id"]
    assert json.loads(row.body) == {"invoice_id": "x"}
    repo.close()
