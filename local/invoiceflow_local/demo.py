"""``invoiceflow demo``: start the local runtime, create a demo user, log in, upload a sample
invoice, wait for it, download its PDF and XLSX into ``out/``, print the email, stop (and say
that the email's links died with the runtime: the files are in ``out/``).

It talks to the runtime over real HTTP, exactly as the README's curl commands do.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import requests

from invoiceflow import accounts, naming
from invoiceflow.context import get_context
from invoiceflow.outputs import JSON_CONTENT_TYPE
from invoiceflow.settings import Settings
from invoiceflow_local.dev import LocalRuntime
from invoiceflow_local.package_data import DEMO_INVOICE

DEMO_EMAIL = "demo@example.com"


def _say(text: str) -> None:
    print(text, flush=True)


def _text_part(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            payload = part.get_payload(decode=True)
            return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return ""


def run_demo(out: Path, port: int = 0, sample: Path = DEMO_INVOICE, timeout: float = 120.0) -> int:
    """The settings come from the environment, but for two defaults of the demo's own: the data
    in a fresh temporary directory, and only warnings logged."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    environ = dict(os.environ)
    if not environ.get("LOG_LEVEL", "").strip():
        environ["LOG_LEVEL"] = "WARNING"
    if not environ.get("DATA_DIR", "").strip():
        environ["DATA_DIR"] = tempfile.mkdtemp(prefix="invoiceflow-demo-")
    settings = Settings.from_env(environ)
    _say(f"1/6 starting the local runtime (data in {settings.data_dir})")
    with LocalRuntime("127.0.0.1", port, settings=settings) as runtime:
        base = runtime.url
        ctx = get_context()
        password = secrets.token_urlsafe(12)
        if ctx.repo.get_user_by_email(DEMO_EMAIL) is None:
            accounts.add_user(ctx.repo, DEMO_EMAIL, password)
        else:
            _say("   (reusing the demo user: set a fresh DATA_DIR for a clean run)")
            return 1
        _say(f"2/6 created {DEMO_EMAIL}; logging in: POST {base}/login")
        r = requests.post(f"{base}/login", auth=(DEMO_EMAIL, password), timeout=30)
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        _say(f"3/6 uploading {sample.name}: POST {base}/upload")
        with sample.open("rb") as fh:
            r = requests.post(
                f"{base}/upload",
                headers=auth,
                timeout=30,
                files={"file": ("invoice_data.json", fh, JSON_CONTENT_TYPE)},
            )
        if r.status_code != 202:
            _say(f"upload failed: {r.status_code} {r.text}")
            return 1
        invoice_id = r.json()["invoice_id"]
        _say(f"4/6 invoice {invoice_id} accepted; waiting for it to be rendered")
        deadline = time.monotonic() + timeout
        view: dict[str, object] = {}
        last = ""
        while time.monotonic() < deadline:
            view = requests.get(
                naming.invoice_url(base, invoice_id), headers=auth, timeout=30
            ).json()
            files = view.get("files") or {}
            ready = [f for f in ("pdf", "xlsx") if isinstance(files, dict) and f in files]
            line = f"    status={view.get('status')} ready={','.join(ready) or '-'}"
            if line != last:
                _say(line)
                last = line
            if view.get("status") in ("ready", "failed"):
                break
            time.sleep(0.1)
        if view.get("status") != "ready":
            _say(f"the invoice did not become ready: {view}")
            return 1
        out.mkdir(parents=True, exist_ok=True)
        _say(f"5/6 downloading into {out}/")
        files = view["files"]
        assert isinstance(files, dict)
        for fmt in ("pdf", "xlsx"):
            r = requests.get(
                f"{base}/download", params={"fid": files[fmt]["file_id"]}, headers=auth, timeout=60
            )
            r.raise_for_status()
            name = r.headers["Content-Disposition"].split('filename="', 1)[1].split('"', 1)[0]
            target = out / name
            target.write_bytes(r.content)
            _say(f"    {target} ({len(r.content):,} bytes)")
        outbox = ctx.settings.mail_outbox_dir
        deadline = time.monotonic() + 30
        emails: list[Path] = []
        while time.monotonic() < deadline and not emails:
            emails = sorted(outbox.glob("*.eml"))
            time.sleep(0.1)
        _say("6/6 the email to the owner (no SENDGRID_API_KEY, so it went to the outbox):")
        for eml in emails:
            copy = out / eml.name
            shutil.copyfile(eml, copy)
            mail = message_from_bytes(eml.read_bytes())
            _say(f"    file:    {copy}\n    To:      {mail['To']}\n    Subject: {mail['Subject']}")
            for line in _text_part(mail).strip().splitlines():
                _say(f"    | {line}")
        if not emails:
            _say("    (no email found)")
            return 1
    _say(
        f"done: the local runtime stopped, so the email's links to {base} no longer answer; "
        f"its files are in {out}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(Path("out")))
