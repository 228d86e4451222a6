"""Shared fixtures: database URLs (PostgreSQL, SQLite), a files directory, a mongomock
database usable with GridFS; and the markers of tests that need a server.

The servers are named in support/services.py. When one does not answer, tests needing it fail
if ``CI`` is set and are skipped otherwise (``fail_or_skip``).
"""

from __future__ import annotations

import logging
import os
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The image installs no lxml, so openpyxl writes workbooks with the standard library there;
# lxml is here only for the e-invoice tests (the CII XSD, factur-x). openpyxl decides when it
# is first imported, so the switch comes before anything imports it, and subprocesses inherit
# it.
os.environ["OPENPYXL_LXML"] = "False"

from invoiceflow.context import get_context, reset_context
from support.api import (
    PRODUCER_KEY_ID,
    PRODUCER_SECRET,
    SECRET,
    Person,
    Sink,
    client,
    make_person,
    serve_wsgi,
)
from support.services import POSTGRES_URLS, fail_or_skip


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core (at most 8) for the whole suite, one per core for the
    fast part (``-m '... not slow'``). The slow tests wait a good part of their time (for
    subprocesses, RabbitMQ nodes, the pipeline's HTTP hops), and a second worker per core
    computes meanwhile (whole suite on 2 cores: 100 s instead of 124 s); the fast part only
    computes, and extra workers would cost their start-up (25 s instead of 37 s)."""
    per_core = 1 if "not slow" in (config.option.markexpr or "") else 2
    return min(8, per_core * (os.cpu_count() or 1))


#: Whole folders and modules marked ``slow``: each test runs a tool, a subprocess or a whole
#: runtime (helm, kubectl and the Kubernetes schemas; schemathesis; ``invoiceflow`` commands;
#: a generated client; the benchmark and fault runs), so the fast part stays under 30 s.
SLOW_PATHS = (
    "tests/deploy/",
    "tests/attacks/",
    "tests/e2e/",
    "tests/bench/",
    "tests/faults/",
    "tests/test_cli.py",
    "tests/test_readme_commands.py::test_the_commands_run_as_written",
    "tests/api/test_generated_client.py",
    "tests/runtime/test_local_runtime.py",
    "tests/browser/test_webapp_in_chromium.py",
    # and single tests of a second or more each (on a quiet 2-core machine):
    # workbook formulas evaluated by pycel, documents at the size limits, a PDF
    # rendered in another process, argon2 logins through the throttle, a subprocess
    # killed mid-request
    "tests/render/test_xlsx.py::test_random_invoices_compute_the_totals",
    "tests/render/test_xlsx.py::test_formulas_compute_the_totals",
    "tests/domain/test_parse.py::test_limits_have_clear_messages",
    "tests/domain/test_number_bombs.py::test_every_bomb_in_every_amount_field",
    "tests/render/test_pdf.py::test_extreme_content_still_lays_out",
    "tests/render/test_pdf.py::test_same_bytes_in_another_process",
    "tests/api/test_login.py::test_the_lockout_is_short",
    "tests/api/test_login.py::test_behind_a_trusted_proxy",
    "tests/api/test_login.py::test_each_client_address_has_a_token_bucket",
    "tests/api/test_upload.py::test_killed_between_commit_and_send",
)

#: Fixtures that reach a server, by the marker their tests get.
SERVICE_FIXTURES = {
    "postgres": {"postgres_server_url", "postgres_url"},
    "rabbitmq": {"rabbitmq_url"},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL or RabbitMQ: by the fixtures it requests, or by a
    parameter naming the backend (``database_url[postgres]``, ``broker[rabbitmq]``,
    ``pipeline[postgres+rabbitmq+files]``), so ``-m 'not postgres and not rabbitmq'`` is the
    part that runs without servers.

    The fault-injection runs (``faults``, minutes each) run only when a ``-m`` expression
    names them (``pytest -m faults``, as .ci/run does); otherwise they are deselected."""
    if "faults" not in (config.option.markexpr or ""):
        deselected = [item for item in items if item.get_closest_marker("faults")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("faults")]
    for item in items:
        if item.nodeid.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = [str(v) for v in callspec.params.values()] if callspec else []
        for marker, fixtures in SERVICE_FIXTURES.items():
            if names & fixtures or any(marker in value.split("+") for value in params):
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the test database (the public schema); the session's one connection check."""
    import psycopg2

    problems = []
    for url in POSTGRES_URLS:
        try:
            psycopg2.connect(url, connect_timeout=3).close()
            return url
        except psycopg2.OperationalError as exc:
            problems.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    fail_or_skip("PostgreSQL is not reachable: " + "; ".join(problems))


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped afterwards)."""
    import psycopg2

    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = psycopg2.connect(postgres_server_url, connect_timeout=3)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in postgres_server_url else "?"
        yield f"{postgres_server_url}{separator}options=-csearch_path%3D{schema}"
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL for a new database file under tmp_path."""
    return f"sqlite:///{tmp_path / 'invoiceflow.db'}"


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """An (absent) directory for the files document store."""
    return tmp_path / "files"


_GRIDFS_MOCKED = False


@pytest.fixture
def mongomock_db() -> Any:
    """A fresh mongomock database that pymongo's gridfs accepts."""
    global _GRIDFS_MOCKED
    import mongomock
    import mongomock.gridfs

    if not _GRIDFS_MOCKED:
        mongomock.gridfs.enable_gridfs_integration()  # patches gridfs for the whole session
        _GRIDFS_MOCKED = True
    client: Any = mongomock.MongoClient()
    # pymongo >= 4.9 reads db.client.options.timeout; mongomock turns unknown attributes into
    # databases/collections, so give it the one option gridfs asks for
    client.options = types.SimpleNamespace(timeout=None)
    return client["invoiceflow"]


@pytest.fixture(autouse=True)
def _every_emitted_event_matches_its_schema() -> Iterator[None]:
    """Every event any test makes a function emit is validated against events/schemas/."""
    from invoiceflow import events
    from support.events import validate_event

    events.observers.append(validate_event)
    yield
    events.observers.remove(validate_event)


# ---------------------------------------------------------------- functions and their env


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    with serve_wsgi(s) as url:
        s.url = f"{url}/"
        yield s


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record, also of the ``invoiceflow`` logger, which stops propagating once
    configured (invoiceflow.logs)."""
    logger = logging.getLogger("invoiceflow")
    level = logger.level
    caplog.set_level(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sink: Sink, database_url: str
) -> Iterator[dict[str, str]]:
    values = {
        "DATABASE_URL": database_url,
        "MONGODB_URL": str(tmp_path / "files"),
        "DATA_DIR": str(tmp_path),
        "JWT_SECRET": SECRET,
        "K_SINK": sink.url,
        "PUBLIC_BASE_URL": "http://invoices.test",
        "EVENT_PRODUCER_KEYS": f"{PRODUCER_KEY_ID}:{PRODUCER_SECRET}",
    }
    for name in (
        "JWT_ALGORITHM",
        "JWT_PRIVATE_KEY",
        "JWT_PUBLIC_KEY",
        "MAX_DOCUMENT_BYTES",
        "INVOICE_FORMATS",
        "RABBITMQ_URL",
    ):
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


@pytest.fixture
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A started RabbitMQ node of this test's own (own ports, dirs, cookie), which the test
    may stop, kill and restart (support/rabbitmq_node.py); closed afterwards."""
    from support.rabbitmq_node import RabbitNode, require_rabbitmq_server

    require_rabbitmq_server()
    node = RabbitNode.create(tmp_path_factory.mktemp("rabbit-node"))
    try:
        yield node.start()
    finally:
        node.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment of a local runtime on the embedded defaults under tmp_path: no server
    URLs, no secrets from the caller's shell (restored afterwards by monkeypatch)."""
    for name in (
        "DATABASE_URL",
        "MONGODB_URL",
        "RABBITMQ_URL",
        "K_SINK",
        "PUBLIC_BASE_URL",
        "JWT_SECRET",
        "JWT_ALGORITHM",
        "SENDGRID_API_KEY",
        "INVOICE_FORMATS",
        "KNATIVE_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")


@pytest.fixture
def postgres_cluster() -> Iterator[Any]:
    """A started PostgreSQL cluster of this test's own (its own port), which the test may
    restart (support/postgres_cluster.py); dropped afterwards."""
    from support.postgres_cluster import PostgresCluster, require_postgres_tools

    require_postgres_tools()
    cluster = PostgresCluster.create()
    try:
        yield cluster
    finally:
        cluster.drop()


@pytest.fixture
def intake_client(env: dict[str, str]) -> Any:
    return client("intake")
