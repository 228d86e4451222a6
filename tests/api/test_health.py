"""GET /healthz and GET /readyz on every function; a missing MongoDB or database shows up in
readiness at once and as a generic 503, never as a driver's message in a response body."""

from __future__ import annotations

import pytest

from invoiceflow import health
from invoiceflow.context import reset_context
from invoiceflow.settings import DOCUMENT_STORE_USERS, FUNCTIONS
from support.api import Person, client, example
from support.records import invoice_record

#: what a driver's message looks like: none of it may reach a body
DRIVER_TEXT = (
    "127.0.0.1:1",
    "Topology",
    "ServerSelection",
    "Connection refused",
    "connection to server",
    "psycopg2",
    "pymongo",
    "Traceback",
)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_answers_liveness_and_readiness(function: str, env: dict[str, str]) -> None:
    app = client(function.replace("-", "_"))
    r = app.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "alive"}
    r = app.get("/readyz")
    assert r.status_code == 200, r.get_data(as_text=True)
    expected = {"database": "ok"}
    if function in DOCUMENT_STORE_USERS:
        expected["documents"] = "ok"
    assert r.get_json() == {"status": "ready", "checks": expected}
    assert r.headers["Cache-Control"] == "no-store"


@pytest.fixture
def no_mongodb(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """MONGODB_URL names a port where nothing listens; short timeouts keep the test fast."""
    from invoiceflow.stores import gridfs_store

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.3)
    monkeypatch.setattr(gridfs_store, "SERVER_SELECTION_TIMEOUT_MS", 300)
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:1/?connectTimeoutMS=300")
    reset_context()


def test_a_missing_mongodb_fails_readiness_and_answers_a_generic_503(
    no_mongodb: None, alice: Person
) -> None:
    r = client("upload").get("/readyz")
    assert r.status_code == 503
    assert r.get_json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "documents": "unavailable"},
    }
    assert client("login").get("/readyz").status_code == 200  # login needs no documents
    r = client("upload").post(
        "/upload", headers=alice.auth, data=example("minimal.json"), content_type="application/json"
    )
    assert r.status_code == 503
    assert r.get_json() == {
        "status": 503,
        "title": "Service unavailable",
        "detail": "a service this request needs is unavailable; retry shortly",
    }
    r = client("download").get("/download?fid=x-pdf", headers=alice.auth)
    assert r.status_code == 503
    for text in DRIVER_TEXT:
        assert text not in r.get_data(as_text=True)


def test_a_missing_database_fails_readiness_and_answers_a_generic_503(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    reset_context()
    r = client("login").get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["checks"] == {"database": "unavailable"}
    r = client("login").post("/login", headers={"Authorization": "Basic YUBiLmM6eA=="})
    assert r.status_code == 503
    body = r.get_data(as_text=True)
    for text in DRIVER_TEXT:
        assert text not in body, body
    assert client("login").get("/healthz").status_code == 200  # liveness checks nothing


def test_invalid_settings_fail_readiness_without_listing_them(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET", "short")
    reset_context()
    r = client("upload").get("/readyz")
    assert r.status_code == 503 and r.get_json()["checks"] == {"settings": "unavailable"}
    r = client("upload").post("/upload", data=b"{}", content_type="application/json")
    assert r.status_code == 503 and "JWT_SECRET" not in r.get_data(as_text=True)


def test_unknown_function_paths_answer_404_and_probes_take_get_only(env: dict[str, str]) -> None:
    upload = client("upload")
    assert upload.post("/healthz").status_code == 404  # a POST is the function's, not a probe
    assert upload.get("/readyz/x").status_code == 404


def test_a_renderer_crash_shows_its_owner_no_internal_text(
    env: dict[str, str], alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoiceflow import outputs, steps
    from invoiceflow.context import get_context
    from invoiceflow.errors import RenderError

    class Exploding:
        content_type = "application/pdf"

        def render(self, document: object) -> bytes:
            raise KeyError("/srv/secret/path/font.ttf")

    monkeypatch.setitem(outputs.OUTPUT_FORMATS, "pdf", Exploding())
    r = client("upload").post(
        "/upload", headers=alice.auth, data=example("minimal.json"), content_type="application/json"
    )
    invoice = invoice_record(get_context().repo, r.get_json()["invoice_id"])
    with pytest.raises(RenderError) as raised:
        steps.render_document(get_context(), invoice, "pdf")
    assert "/srv/secret" not in str(raised.value) and "KeyError" not in str(raised.value)
