"""Intake refuses text the PDF cannot print (render/scripts.py ``check_printable``): a 422
with a problem per offending text field at its JSON pointer in the client's own document,
naming the code points, when the request asks for a PDF (pdf or facturx); nothing stored."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.domain import to_json
from support.api import Person, Sink
from support.einvoice_samples import german_b2b

EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"
CLEF = "\U0001d11e"  # MUSICAL SYMBOL G CLEF: no font of the PDF has it
PLANE_2 = "\U00020000"  # CJK extension B: neither CJK font has it


def post(upload_client: Any, person: Person, body: bytes, query: str = "") -> Any:
    return upload_client.post(
        f"/upload{query}", headers=person.auth, content_type="application/json", data=body
    )


def document(**changes: Any) -> bytes:
    return json.dumps(to_json(dataclasses.replace(german_b2b(), **changes))).encode()


def unprintable_body() -> bytes:
    inv = german_b2b()
    seller = dataclasses.replace(inv.seller, name=f"Notenhaus {CLEF}")
    items = (dataclasses.replace(inv.items[0], description=f"Noten {CLEF}{PLANE_2}"),)
    return document(seller=seller, items=(*items, *inv.items[1:]))


@pytest.mark.parametrize("formats", ["?formats=pdf", "?formats=facturx", "?formats=pdf,cii", ""])
def test_text_no_font_has_is_a_422_per_field_naming_the_code_points(
    upload_client: Any, alice: Person, sink: Sink, formats: str
) -> None:
    r = post(upload_client, alice, unprintable_body(), formats)
    assert r.status_code == 422, r.get_data(as_text=True)
    problems = {p["pointer"]: p["message"] for p in r.get_json()["problems"]}
    assert problems == {
        "/seller/name": "U+1D11E cannot be printed in the PDF",
        "/items/0/description": "U+1D11E, U+20000 cannot be printed in the PDF",
    }
    assert sink.events == []


def test_unprintable_text_is_listed_with_the_broken_business_rules(
    upload_client: Any, alice: Person, sink: Sink
) -> None:
    """One 422 lists every problem: the broken EN 16931 rules and the text the PDF cannot
    print, not the rules first and the text only once they are mended."""
    inv = german_b2b()
    seller = dataclasses.replace(inv.seller, name=f"Notenhaus {CLEF}", vat_id=None, tax_id=None)
    r = post(upload_client, alice, document(seller=seller), "?formats=pdf,cii")
    assert r.status_code == 422, r.get_data(as_text=True)
    problems = r.get_json()["problems"]
    assert "BR-S-02" in {p.get("rule") for p in problems}, problems
    assert {"pointer": "/seller/name", "message": "U+1D11E cannot be printed in the PDF"} in (
        problems
    )
    assert sink.events == []


def test_formats_without_a_pdf_take_the_text(upload_client: Any, alice: Person) -> None:
    for n, formats in enumerate(("?formats=xlsx", "?formats=cii,ubl")):
        # each upload its own number: a number used once is a 409
        body = json.loads(unprintable_body())
        body["number"] = f"RE-2026-{n}"
        r = post(upload_client, alice, json.dumps(body).encode(), formats)
        assert r.status_code == 202, (formats, r.get_data(as_text=True))


def test_every_script_with_a_font_is_accepted(upload_client: Any, alice: Person) -> None:
    text = "Zoë Ελλάδα Россия 中文 日本語 한국어 عربي עברית ไทย हिन्दी \U0001f600"
    inv = german_b2b()
    items = (dataclasses.replace(inv.items[0], description=text), *inv.items[1:])
    r = post(upload_client, alice, document(items=items, notes=text), "?formats=pdf")
    assert r.status_code == 202, r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("example", "field", "expected"),
    [
        ("legacy-flat.json", ("company_name",), "/company_name"),
        ("legacy-flat.json", ("items", 1, "description"), "/items/1/description"),
        ("invoice-generator.json", ("from",), "/from"),
        ("invoice-generator.json", ("items", 2, "name"), "/items/2/name"),
    ],
)
def test_a_foreign_format_gets_its_own_pointers(
    upload_client: Any,
    alice: Person,
    example: str,
    field: tuple[str | int, ...],
    expected: str,
) -> None:
    doc = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    parent = doc
    for key in field[:-1]:
        parent = parent[key]
    parent[field[-1]] = f"{parent[field[-1]]} {CLEF}"
    r = post(upload_client, alice, json.dumps(doc).encode(), "?formats=pdf")
    assert r.status_code == 422, r.get_data(as_text=True)
    problems = r.get_json()["problems"]
    assert [(p["pointer"], p["message"]) for p in problems] == [
        (expected, "U+1D11E cannot be printed in the PDF")
    ]


def test_the_printable_characters_file_is_the_fonts_union() -> None:
    """render/fonts/printable.txt (what intake checks against) is exactly the characters the
    shipped fonts have: regenerate it with scripts/printable_chars.py after a font changes."""
    from invoiceflow.render import scripts

    assert scripts.printable_chars() == scripts.fonts_printable_chars()
    text = scripts.PRINTABLE_FILE.read_text(encoding="ascii")
    assert text == scripts.printable_ranges(scripts.fonts_printable_chars())


def test_printable_is_membership_in_the_printable_characters() -> None:
    """The bisection over the file's ranges answers as the set of its characters does, for
    every code point (the ranges' ends and the gaps between them included)."""
    from invoiceflow.render import scripts

    chars = scripts.printable_chars()
    wrong = [c for c in map(chr, range(0x110000)) if scripts.printable(c) != (c in chars)]
    assert wrong == []
    assert scripts.printable("A") and not scripts.printable("\U0001d11e")


def test_the_intake_check_loads_no_font() -> None:
    """Upload and intake check text without ReportLab (their cold start and memory): the
    check reads the precomputed characters, not the fonts' maps."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from invoiceflow.render.scripts import unprintable\n"
        "assert unprintable('日本語 עברית ไทย \\U0001d11e') == ['\\U0001d11e']\n"
        "assert not any(m.startswith('reportlab') for m in sys.modules), 'reportlab loaded'\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(root / "functions"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_faces_file_is_what_each_family_maps() -> None:
    """render/fonts/faces.txt (what choosing a word's font reads) holds, for every family of
    the chain and every family a document may choose, exactly the characters both its fonts
    map: regenerate it with ``scripts.write_faces_file()`` after a font changes."""
    from invoiceflow.render import scripts
    from invoiceflow.render.families import FAMILIES

    assert scripts.FACES_FILE.read_text(encoding="ascii") == scripts.faces_text()
    for face in {*scripts.FontChain().faces(), *FAMILIES.values()}:
        assert scripts.listed_face_chars(face) == scripts.font_face_chars(face), face
