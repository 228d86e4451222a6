"""The numbering settings: ``GET|PUT /settings/numbering`` (owner only, schema-checked, in
the OpenAPI document) and ``invoiceflow numbering show|set``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from invoiceflow import cli, numbering
from invoiceflow.api import openapi_document
from invoiceflow.context import get_context
from support.api import Person, example_json
from support.openapi import assert_matches

PATH = "/settings/numbering"


def numberless(**changes: Any) -> dict[str, Any]:
    doc = {k: v for k, v in example_json("minimal.json").items() if k != "number"}
    return doc | changes


def test_the_default_series_until_one_is_set(upload_client: Any, alice: Person) -> None:
    r = upload_client.get(PATH, headers=alice.auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert_matches(r, PATH, "get")
    assert r.get_json() == {
        "pattern": "{yyyy}-{seq:05}",
        "yearly_reset": True,
        "configured": False,
        "last_numbers": {},
    }
    assert r.headers["Cache-Control"] == "no-store"


def test_a_set_series_numbers_the_next_documents(
    upload_client: Any, alice: Person, bob: Person
) -> None:
    assert upload_client.post("/upload", headers=alice.auth, json=numberless()).status_code == 202
    r = upload_client.put(
        PATH, headers=alice.auth, json={"pattern": "RE-{yy}{mm}-{seq:03}", "yearly_reset": True}
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert_matches(r, PATH, "put")
    assert r.get_json() == {
        "pattern": "RE-{yy}{mm}-{seq:03}",
        "yearly_reset": True,
        "configured": True,
        "last_numbers": {"2026": 1},
    }
    # the counter runs on under the new pattern: 2026's second invoice
    second = upload_client.post("/upload", headers=alice.auth, json=numberless())
    assert second.get_json()["number"] == "RE-2611-002"
    assert upload_client.get(PATH, headers=alice.auth).get_json()["last_numbers"] == {"2026": 2}
    # bob's series is his own
    assert upload_client.get(PATH, headers=bob.auth).get_json()["configured"] is False


def test_bad_settings_are_one_422_listing_every_problem(upload_client: Any, alice: Person) -> None:
    cases: list[tuple[Any, set[str]]] = [
        ({"pattern": "RE-{seq}", "yearly_reset": "yes", "x": 1}, {"/x", "/yearly_reset"}),
        ({"yearly_reset": False}, {"/pattern"}),
        ({"pattern": "RE-{yyyy}"}, {"/pattern"}),  # no {seq}
        ({"pattern": "RE-{seq}-{seq}", "yearly_reset": False}, {"/pattern"}),
        ({"pattern": "RE-{seq}", "yearly_reset": True}, {"/pattern"}),  # resets, no year
        ({"pattern": "RE/{yyyy}/{seq}"}, {"/pattern"}),  # a slash: not in a file name
        ({"pattern": "RE-{yyyy}-{seq:099}"}, {"/pattern"}),
        ({"pattern": "RE-{yyyy}-{counter}-{seq}"}, {"/pattern"}),
        ({"pattern": "x" * 61 + "{seq}"}, {"/pattern"}),
        ({"pattern": "RE-{yyyy}-{seq}\u0000"}, {"/pattern"}),
        ({"pattern": "RE-{yyyy}-{seq}\ud800"}, {"/pattern"}),
        ({"pattern": "RE-{yyyy}-{seq}\r\nBcc: x"}, {"/pattern"}),
        # line and paragraph separators, a noncharacter, edge spaces, a symbol no font has,
        # letters no font has: every one would make numbers the PDF or an email cannot carry
        ({"pattern": "RE\u2028{yyyy}-{seq}"}, {"/pattern"}),
        ({"pattern": "RE\u0085{yyyy}-{seq}"}, {"/pattern"}),
        ({"pattern": "RE-\ufffe{yyyy}-{seq}"}, {"/pattern"}),
        ({"pattern": " {yyyy}-{seq} "}, {"/pattern"}),
        ({"pattern": "\U0001d11e{yyyy}-{seq}"}, {"/pattern"}),
        ({"pattern": "\u1200\u1201-{yyyy}-{seq}"}, {"/pattern"}),  # Ethiopic letters
        ([], {""}),
    ]
    for body, pointers in cases:
        r = upload_client.put(PATH, headers=alice.auth, json=body)
        assert r.status_code == 422, (body, r.get_data(as_text=True))
        assert_matches(r, PATH, "put")
        assert {p["pointer"] for p in r.get_json()["problems"]} == pointers, body
    assert get_context().repo.get_number_series(alice.id) is None  # nothing changed
    bad_json = upload_client.put(
        PATH, headers=alice.auth, data=b"{", content_type="application/json"
    )
    assert bad_json.status_code == 400
    text = upload_client.put(PATH, headers=alice.auth, data=b"x", content_type="text/plain")
    assert text.status_code == 400


def test_only_the_owner_with_a_token_and_only_get_and_put(
    upload_client: Any, alice: Person
) -> None:
    assert upload_client.get(PATH).status_code == 401
    assert upload_client.put(PATH, json={"pattern": "{seq}"}).status_code == 401
    assert upload_client.post(PATH, headers=alice.auth, json={}).status_code == 405
    assert upload_client.delete(PATH, headers=alice.auth).status_code == 405


def test_the_openapi_schema_is_the_code_schema() -> None:
    def bare(schema: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in schema.items() if k != "description"}
        if "properties" in out:
            out["properties"] = {k: bare(v) for k, v in out["properties"].items()}
        return out

    documented = openapi_document()["components"]["schemas"]["NumberingSeries"]
    assert bare(documented) == bare(numbering.SETTINGS_SCHEMA)


def test_the_cli_shows_and_sets_a_users_series(
    alice: Person, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["numbering", "show", alice.email]) == 0
    assert json.loads(capsys.readouterr().out)["configured"] is False
    assert cli.main(["numbering", "set", alice.email, "INV-{seq}", "--no-yearly-reset"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["pattern"], shown["yearly_reset"], shown["configured"]) == (
        "INV-{seq}",
        False,
        True,
    )
    assert get_context().repo.get_number_series(alice.id) == ("INV-{seq}", False)
    # a pattern that resets yearly without the year: refused, nothing changes
    assert cli.main(["numbering", "set", alice.email, "INV-{seq}"]) == 2
    assert "must show the year" in capsys.readouterr().err
    assert cli.main(["numbering", "show", "nobody@example.com"]) == 2
    assert get_context().repo.get_number_series(alice.id) == ("INV-{seq}", False)
