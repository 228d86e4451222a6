"""``invoiceflow dev`` as a user runs it: a real process on a real port with the real Postgres,
driven by the seed's three curl commands (the ``curl`` binary), then stopped with Ctrl-C; it
prints its data folder and logs no warning."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.api import EXAMPLES
from support.devprocess import query
from support.services import free_port

BIN = Path(sys.executable).parent


def curl(*args: str) -> str:
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"curl {args}: {out.stdout} {out.stderr}"
    return out.stdout


@pytest.mark.slow
def test_seed_curl_commands_against_invoiceflow_dev(postgres_url: str, tmp_path: Path) -> None:
    assert shutil.which("curl"), "the curl binary is needed (apt-get install curl)"
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "DATA_DIR": str(tmp_path),
        "MONGODB_URL": str(tmp_path / "files"),
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": "a-dev-secret-that-is-long-enough-for-hs256",
    }
    for name in ("RABBITMQ_URL", "K_SINK", "PUBLIC_BASE_URL", "SENDGRID_API_KEY"):
        env.pop(name, None)
    cli = str(BIN / "invoiceflow")
    added = subprocess.run(
        [cli, "users", "add", "seed@example.com", "--password-stdin"],
        input="s3cret-passw0rd\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    port = free_port()
    server = subprocess.Popen(
        [cli, "dev", "--port", str(port)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    host = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.1)
        # 1. curl -X POST http://HOST:8080/login -u email:password
        token = json.loads(
            curl("-X", "POST", f"{host}/login", "-u", "seed@example.com:s3cret-passw0rd")
        )["token"]
        # 2. curl -X POST -F 'file=@invoice_data.json' -H 'Authorization: Bearer TOKEN' .../upload
        invoice = tmp_path / "invoice_data.json"
        invoice.write_bytes((EXAMPLES / "legacy-flat.json").read_bytes())
        accepted = json.loads(
            curl(
                "-X",
                "POST",
                "-F",
                f"file=@{invoice}",
                "-H",
                f"Authorization: Bearer {token}",
                f"{host}/upload",
            )
        )
        invoice_id = accepted["invoice_id"]
        view: dict[str, object] = {}
        while time.monotonic() < deadline + 60:
            view = json.loads(
                curl("-H", f"Authorization: Bearer {token}", f"{host}/invoices/{invoice_id}")
            )
            if view["status"] != "received":
                break
            time.sleep(0.1)
        assert view["status"] == "ready", view
        files = view["files"]
        assert isinstance(files, dict)
        # 3. curl -H 'Authorization: Bearer TOKEN' http://HOST:8080/download?fid=FILE_ID
        target = tmp_path / "downloaded.pdf"
        curl(
            "-H",
            f"Authorization: Bearer {token}",
            "-o",
            str(target),
            f"{host}/download?fid={files['pdf']['file_id']}",
        )
        assert target.read_bytes().startswith(b"%PDF")
        # the email goes to the outbox (notify writes it just after marking the invoice ready)
        email = tmp_path / "outbox" / f"{invoice_id}-ready.eml"
        deadline = time.monotonic() + 20
        while not email.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert email.exists()
        # and notify has finished with the rendered event that completed the invoice (it
        # announces the email to the broker after writing it): stopping the runtime earlier
        # would refuse that event. Only "allrendered" events reach notify (one, or two when
        # both renderers finished together)
        sql = (
            "SELECT count(*) FROM processed_events WHERE consumer = 'notify' "  # noqa: S608 (a UUID)
            f"AND event_id LIKE '{invoice_id}.rendered.%'"
        )
        rendered = len(files) - 2  # every file but the submitted document and the completed one
        while query(env, sql)[0][0] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 1 <= query(env, sql)[0][0] <= rendered, files
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    assert server.stdout is not None and server.stderr is not None
    logged = server.stderr.read()
    assert code == 0, logged
    assert f"data folder: {tmp_path}  (DATA_DIR" in server.stdout.read()
    # a normal run (one upload to ready, LOG_LEVEL=WARNING): not one warning, no traceback
    assert "WARNING" not in logged and "Traceback" not in logged, logged
