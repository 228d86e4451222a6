"""Helpers for the function tests: an event sink, people with tokens, test clients."""

from __future__ import annotations

import base64
import functools
import json
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions_framework import create_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from invoiceflow.auth import issue_token
from invoiceflow.context import get_context
from invoiceflow.events import from_request, to_http
from invoiceflow.passwords import hash_password

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
EXAMPLES = ROOT / "events" / "examples" / "invoices"
SECRET = "test-secret-that-is-at-least-32-bytes-long!"
PASSWORD = "correct horse battery staple"
#: the producer key of EVENT_PRODUCER_KEYS in the function tests (invoiceflow.signing)
PRODUCER_KEY_ID = "erp"
PRODUCER_SECRET = "producer-secret-that-is-at-least-32-bytes!"
#: the body of the Sink's answer to a ``refused`` event (what a broker says about it)
REFUSAL_BODY = "the broker's own words about the event"


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 (any free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Sink:
    """A broker stand-in on 127.0.0.1: records the CloudEvents POSTed to it. ``status``: what
    it answers every event (202: takes it); ``refused``: the status it answers the events of
    these ids whatever ``status`` is (a broker that refuses those events for good)."""

    url: str = ""
    events: list[Any] = field(default_factory=list)
    status: int = 202
    refused: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        refused = self.refused.get(request.headers.get("ce-id", ""))
        if refused is not None:
            return Response(REFUSAL_BODY, refused)(environ, start_response)
        if self.status >= 300:
            return Response("down", self.status)(environ, start_response)
        event = from_request(dict(request.headers), request.get_data())
        with self.lock:
            self.events.append(event)
        return Response("", 202)(environ, start_response)

    def of_type(self, suffix: str) -> list[Any]:
        return [e for e in self.events if e["type"].endswith(suffix)]


@dataclass
class Person:
    email: str
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def basic(email: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


@functools.cache
def password_hash() -> str:
    """The argon2 hash of PASSWORD, made once: every test person shares it (hashing is what
    makes argon2 safe, and slow; tests/api/test_login.py tests the real login)."""
    return hash_password(PASSWORD)


def make_person(email: str) -> Person:
    """A user with PASSWORD and a token issued as login issues it."""
    ctx = get_context()
    user = ctx.repo.add_user(email, password_hash())
    assert user is not None, f"{email} exists already"
    return Person(email, user.id, issue_token(ctx.settings, user).token)


def client(name: str) -> Any:
    os.environ.pop("ENTRY_POINT", None)
    return create_app(name, str(FUNCTIONS / f"{name}.py")).test_client()


def deliver(step: Any, event: Any) -> Any:
    """POST ``event`` (binary CloudEvent) to a function's test client, as the broker does."""
    headers, body = to_http(event)
    return step.post("/", headers=headers, data=body)


def outbox_emails(env: dict[str, str]) -> list[str]:
    """The names of the emails in the outbox folder of the environment's data directory."""
    return sorted(p.name for p in (Path(env["DATA_DIR"]) / "outbox").glob("*.eml"))


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def example_json(name: str) -> dict[str, Any]:
    return dict(json.loads(example(name)))


def garbage_png() -> bytes:
    """A PNG that passes acceptance (its header and chunk checksums are right) but whose pixel
    data is no zlib stream: the renderer cannot decode it (a permanent render failure)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", b"\x00garbage" * 20)
        + chunk(b"IEND", b"")
    )
