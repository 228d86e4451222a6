"""Inputs that used to answer 503 (or be accepted and fail later) get a clear 4xx, on SQLite
and on PostgreSQL (the ``database_url`` fixture runs every test on both): issue 9, findings
3, 5 and 10."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from invoiceflow.context import get_context
from invoiceflow.events import INVOICE_REQUESTED, make_event, to_http
from invoiceflow.signing import sign_event
from support.api import PASSWORD, PRODUCER_KEY_ID, PRODUCER_SECRET, Person, basic, example_json


def _cursor(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert "Traceback" not in json.dumps(body)
    return body


HOSTILE_CURSORS = [
    _cursor(["0001-01-01T00:00:00+01:00", "x"]),  # OverflowError before the fix
    _cursor(["9999-12-31T23:59:59-01:00", "x"]),
    _cursor(b"[" * 5000 + b"]" * 5000),  # RecursionError before the fix
    _cursor(["2026-01-01T00:00:00+00:00", "a\x00b"]),  # NUL: PostgreSQL text cannot hold it
    _cursor([20260101, "x"]),
    _cursor(["2026-01-01T00:00:00+00:00", "\ud800"]),  # lone surrogate: no encoding holds it
    _cursor(["2026-01-01T00:00:00+00:00", "a\x1fb"]),
    "A" * 5000,
]


def test_hostile_cursors_are_400(download_client: Any, alice: Person) -> None:
    for cursor in HOSTILE_CURSORS:
        r = download_client.get(f"/invoices?cursor={quote(cursor)}", headers=alice.auth)
        assert "cursor" in _problem(r, 400)["detail"]


def test_unknown_field_names_that_look_like_digits_are_listed(
    upload_client: Any, alice: Person
) -> None:
    names = ["²", "①", "٣", "\uff11"]  # superscript, circled, Arabic-Indic, fullwidth
    doc = example_json("minimal.json")
    for name in names:
        doc[name] = 1
        doc["items"][0][name] = 2
    r = upload_client.post("/upload", headers=alice.auth, json=doc)
    pointers = {p["pointer"] for p in _problem(r, 422)["problems"]}
    assert {f"/{n}" for n in names} | {f"/items/0/{n}" for n in names} <= pointers


def test_nul_characters_are_4xx_not_a_database_error(
    upload_client: Any, login_client: Any, intake_client: Any, alice: Person
) -> None:
    """PostgreSQL text cannot hold U+0000: each is caught before any query."""
    headers = {**alice.auth, "Idempotency-Key": "order\x0077"}
    r = upload_client.post("/upload", headers=headers, json=example_json("minimal.json"))
    assert "Idempotency-Key" in _problem(r, 400)["detail"]

    _problem(login_client.post("/login", headers=basic("alice@example.com\x00", PASSWORD)), 401)
    _problem(login_client.post("/login", headers={"Authorization": "Basic \xe9"}), 401)
    assert login_client.post("/login", headers=basic(alice.email, PASSWORD)).status_code == 200

    event = make_event(
        INVOICE_REQUESTED,
        "/erp/orders",
        {"owner_email": "alice@example.com\x00", "invoice": example_json("minimal.json")},
        id="nul-1",
    )
    headers, body = to_http(sign_event(event, PRODUCER_KEY_ID, PRODUCER_SECRET))
    _problem(intake_client.post("/", headers=headers, data=body), 422)

    repo = get_context().repo
    assert repo.get_user_by_email("alice@example.com\x00") is None
    assert repo.get_user_by_email("alice@example.com") is not None
    assert repo.list_invoices(alice.id).items == ()


def test_dates_a_spreadsheet_cannot_show_are_422_at_upload(
    upload_client: Any, alice: Person
) -> None:
    for day in ["1899-12-31", "1900-01-01", "1900-02-28", "0001-01-01"]:
        doc = example_json("minimal.json") | {"issue_date": day, "due_date": day}
        r = upload_client.post("/upload", headers=alice.auth, json=doc)
        problems = {p["pointer"]: p["message"] for p in _problem(r, 422)["problems"]}
        for field in ("/issue_date", "/due_date"):
            assert "spreadsheet" in problems[field] and "1900-03-01" in problems[field]
    doc = example_json("minimal.json") | {"issue_date": "1900-03-01"}  # the first it shows
    assert upload_client.post("/upload", headers=alice.auth, json=doc).status_code == 202


def test_characters_xml_cannot_hold_are_422(upload_client: Any, alice: Person) -> None:
    for char in ["\ufffe", "\uffff", "\ufdd0", "\U0010ffff"]:
        doc = example_json("minimal.json")
        doc["number"] += char
        doc["notes"] = f"thanks{char}"
        doc["items"][0]["description"] += char
        doc["seller"]["name"] += char
        r = upload_client.post("/upload", headers=alice.auth, json=doc)
        problems = {p["pointer"]: p["message"] for p in _problem(r, 422)["problems"]}
        for pointer in ("/number", "/notes", "/items/0/description", "/seller/name"):
            assert f"U+{ord(char):04X}" in problems[pointer]


def test_number_bombs_and_deep_nesting_are_4xx_at_upload(upload_client: Any, alice: Person) -> None:
    for bomb in ["1e999999999", "1e99999999999"]:
        doc = example_json("minimal.json")
        doc["items"][0]["unit_price"] = "BOMB"
        data = json.dumps(doc).replace('"BOMB"', bomb)
        r = upload_client.post(
            "/upload", headers=alice.auth, data=data, content_type="application/json"
        )
        problems = {p["pointer"]: p["message"] for p in _problem(r, 422)["problems"]}
        assert "out of range" in problems["/items/0/unit_price"]
    data = '{"notes": ' + "[" * 5000 + "]" * 5000 + "}"
    r = upload_client.post(
        "/upload", headers=alice.auth, data=data, content_type="application/json"
    )
    assert "nested too deeply" in _problem(r, 400)["detail"]


def test_hostile_events_are_400_so_they_are_dead_lettered(intake_client: Any) -> None:
    """A 5xx is retried by the broker; a malformed event must be a 4xx, which goes to the
    dead-letter sink at once (deep nesting, lone surrogates: 503 before the review)."""
    structured = {"Content-Type": "application/cloudevents+json"}
    deep = "[" * 5000 + "]" * 5000
    for body in [
        '{"specversion": "1.0", "id": "a", "source": "/s", "type": "t", "data": ' + deep + "}",
        '{"specversion": "1.0", "id": "\\ud800", "source": "/s", "type": "t"}',
    ]:
        _problem(intake_client.post("/", headers=structured, data=body), 400)
    binary = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "a",
        "ce-source": "/s",
        "ce-type": INVOICE_REQUESTED,
    }
    _problem(intake_client.post("/", headers=binary, data=deep), 400)


def test_events_with_characters_a_cloudevents_string_forbids_are_4xx(env: dict[str, str]) -> None:
    """NUL in an event id or in data.invoice_id was a 503 from PostgreSQL in every step (and a
    lone surrogate on both backends): retried, then lost at the dead-letter sink that failed
    the same way. CloudEvents strings may not hold control characters, surrogates or
    noncharacters: a 400, dead-lettered at once (issue 9 #10, review)."""
    from support.api import client

    structured = {"Content-Type": "application/cloudevents+json"}
    for service, kind in [
        ("render_pdf", "uploaded"),
        ("render_xlsx", "uploaded"),
        ("render_xml", "uploaded"),
        ("notify", "rendered"),
        ("notify", "failed"),
        ("dead_letter", "uploaded"),
    ]:
        step = client(service)
        for event_id, invoice_id in [
            ("a\x00b", "x"),
            ("a\ufffeb", "x"),
            ("e1", "a\x00b"),
            ("e2", "\ud800"),
            ("e3", "a\x85b"),
        ]:
            body = json.dumps(
                {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": "/s",
                    "type": f"io.invoiceflow.invoice.{kind}.v1",
                    "data": {"invoice_id": invoice_id, "format": "pdf"},
                }
            )
            r = step.post("/", headers=structured, data=body)
            assert 400 <= r.status_code < 500 or (
                service == "dead_letter" and r.status_code == 200
            ), (service, event_id, invoice_id, r.get_data(as_text=True)[:300])
