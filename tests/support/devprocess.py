"""``invoiceflow dev`` as a subprocess that a test may kill and start again, and a look into
its database: for the crash and fault-injection tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from invoiceflow import naming
from support.services import free_port

BIN = Path(sys.executable).parent


#: what a caller's shell may hold that would point a test's runtime at other servers, keys,
#: links, mail or formats
_CALLER_SETTINGS = (
    "DATABASE_URL",
    "MONGODB_URL",
    "RABBITMQ_URL",
    "K_SINK",
    "PUBLIC_BASE_URL",
    "SENDGRID_API_KEY",
    "MAIL_OUTBOX_DIR",
    "INVOICE_FORMATS",
    "KNATIVE_DIR",
    "JWT_ALGORITHM",
    "JWT_PRIVATE_KEY",
    "JWT_PUBLIC_KEY",
    "EVENT_PRODUCER_KEYS",
    "SENDGRID_HOST",
)


def embedded_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment for an ``invoiceflow`` subprocess on the embedded defaults
    under ``data_dir`` (warnings only, a fixed development key), with ``settings`` on top; none
    of the caller's server URLs, keys or mail settings that ``settings`` does not give."""
    env = {k: v for k, v in os.environ.items() if k not in _CALLER_SETTINGS}
    env.update(
        DATA_DIR=str(data_dir),
        LOG_LEVEL="WARNING",
        JWT_SECRET="a-dev-secret-that-is-long-enough-for-hs256",
    )
    env.update(settings)
    return env


def add_user(env: dict[str, str], email: str, password: str) -> None:
    """``invoiceflow users add EMAIL --password-stdin`` in ``env``."""
    added = subprocess.run(
        [str(BIN / "invoiceflow"), "users", "add", email, "--password-stdin"],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr


class Dev:
    """``invoiceflow dev`` as a subprocess: ``command`` (default: this venv's ``invoiceflow``)
    with ``dev --port PORT``, started in ``cwd``."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.env, self.log = env, log
        self.command = command or [str(BIN / "invoiceflow")]
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Dev:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*self.command, "dev", "--port", str(port)],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            assert time.monotonic() < deadline, "invoiceflow dev did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def query(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    if "DATABASE_URL" in env:
        import psycopg2

        conn = psycopg2.connect(env["DATABASE_URL"])
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            conn.close()
    db = sqlite3.connect(Path(env["DATA_DIR"]) / "invoiceflow.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def wait_until_ready(
    url: str, auth: dict[str, str], ids: list[str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    waiting = set(ids)
    statuses: dict[str, Any] = {}
    while waiting and time.monotonic() < deadline:
        for invoice_id in sorted(waiting):
            r = requests.get(naming.invoice_url(url, invoice_id), headers=auth, timeout=30)
            statuses[invoice_id] = r.json().get("status") if r.ok else r.status_code
            if statuses[invoice_id] == "ready":
                waiting.discard(invoice_id)
        if waiting:
            time.sleep(0.3)
    return {i: statuses.get(i) for i in sorted(waiting)}
