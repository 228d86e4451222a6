"""Fixtures for the HTTP functions: a fresh environment per test (SQLite or the real Postgres,
a files document store), an event sink that records what the functions emit, users, and the
functions-framework test clients of the real entry points."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from invoiceflow.context import get_context, reset_context
from support.api import SECRET, Person, Sink, client, make_person


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    server = make_server("127.0.0.1", 0, s, threaded=True)
    s.url = f"http://127.0.0.1:{server.server_port}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield s
    server.shutdown()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sink: Sink,
        database_url: str) -> Iterator[dict[str, str]]:
    values = {
        "DATABASE_URL": database_url,
        "MONGODB_URL": str(tmp_path / "files"),
        "DATA_DIR": str(tmp_path),
        "JWT_SECRET": SECRET,
        "K_SINK": sink.url,
        "PUBLIC_BASE_URL": "http://invoices.test",
    }
    for name in ("JWT_ALGORITHM", "JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY", "MAX_DOCUMENT_BYTES",
                 "INVOICE_FORMATS", "RABBITMQ_URL"):
        monkeypatch.delenv(name, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    reset_context()
    get_context().repo.migrate()
    yield values
    reset_context()


@pytest.fixture
def alice(env: dict[str, str]) -> Person:
    return make_person("alice@example.com")


@pytest.fixture
def bob(env: dict[str, str]) -> Person:
    return make_person("bob@example.com")


@pytest.fixture
def login_client(env: dict[str, str]) -> Any:
    return client("login")


@pytest.fixture
def upload_client(env: dict[str, str]) -> Any:
    return client("upload")


@pytest.fixture
def download_client(env: dict[str, str]) -> Any:
    return client("download")


