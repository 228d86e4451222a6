"""Blank text ("  ") is absent text: the parser never lets it into the model.

Whitespace-only values used to pass the native rules and reach the writers, which wrote empty
elements (``<ram:Name>  </ram:Name>``) that the official artefacts refuse (BR-07, BR-CO-09,
BR-DE-15, PEPPOL-EN16931-R008). Now an optional text or identifier that is empty after
stripping is taken as absent, and a blank required text (the number, a party's name, a line's
description, a preceding invoice's number) is a 422 pointing at it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from invoiceflow.domain import parse_invoice
from invoiceflow.domain.einvoice import cii_profile
from invoiceflow.domain.en16931 import check
from invoiceflow.domain.model import Invoice
from invoiceflow.einvoice.cii import cii_xml
from invoiceflow.einvoice.ubl import ubl_xml
from invoiceflow.errors import ValidationError
from support.official import fatal

Syntax = Literal["cii", "ubl"]
EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"
BLANK = "  "
#: required texts: blank is a 422, never absent
REQUIRED = re.compile(
    r"/number|/(seller|bill_to|ship_to)/name|/items/\d+/description|/preceding_invoices/\d+/number"
)


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / name).read_text()))


def string_paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from string_paths(value, (*path, i))
    elif isinstance(node, str):
        yield path


def changed(doc: dict[str, Any], path: tuple[str | int, ...], value: Any = None) -> Any:
    """A copy with the value at ``path`` replaced (or removed when ``value`` is None)."""
    out = copy.deepcopy(doc)
    parent: Any = out
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def pointer(path: tuple[str | int, ...]) -> str:
    return "".join(f"/{p}" for p in path)


def blank_texts(value: Any, where: str = "") -> Iterator[str]:
    """Where the model holds a blank string (there must be none)."""
    if isinstance(value, str):
        if not value.strip():
            yield where
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from blank_texts(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from blank_texts(item, f"{where}[{i}]")


def parse(doc: Any) -> Invoice:
    return parse_invoice(json.dumps(doc)).invoice


@pytest.mark.parametrize(
    "example", ["be-peppol-ubl.json", "de-xrechnung-b2g.json", "eu-reverse-charge.json"]
)
def test_a_blank_text_is_absent_or_refused_where_it_is_required(example: str) -> None:
    base = load(example)
    for path in string_paths(base):
        where = pointer(path)
        try:
            inv = parse(changed(base, path, BLANK))
        except ValidationError as exc:
            pointers = {p.pointer for p in exc.problems}
            assert pointers == {where}, where  # refused right there (required or a code)
            if REQUIRED.fullmatch(where):
                assert "blank" in exc.problems[0].message
            continue
        assert not REQUIRED.fullmatch(where), where
        assert list(blank_texts(inv)) == [], where
        # the same invoice as without the field (an identifier without its id: without it)
        absent = path[:-1] if path[-1] == "id" else path
        assert inv == parse(changed(base, absent)), where


def test_blank_required_texts_are_422s_with_their_pointers() -> None:
    doc = load("be-peppol-ubl.json")
    doc["number"] = BLANK
    doc["bill_to"]["name"] = "\t "
    doc["items"][1]["description"] = BLANK
    doc["preceding_invoices"] = [{"number": BLANK}]
    with pytest.raises(ValidationError) as raised:
        parse(doc)
    assert {p.pointer: p.message for p in raised.value.problems} == {
        "/number": "must not be blank (it holds only spaces)",
        "/bill_to/name": "must not be blank (it holds only spaces)",
        "/items/1/description": "must not be blank (it holds only spaces)",
        "/preceding_invoices/0/number": "must not be blank (it holds only spaces)",
    }


def official_ids(inv: Invoice, syntax: Syntax) -> set[str]:
    return {a.id for a in fatal(cii_xml(inv) if syntax == "cii" else ubl_xml(inv), syntax)}


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_a_blank_company_is_no_company_the_name_is_used(syntax: Syntax) -> None:
    """BR-07: a blank company was written as an empty buyer name; now the name is."""
    doc = load("be-peppol-ubl.json")
    doc["bill_to"]["company"] = BLANK
    inv = parse(doc)
    assert inv.bill_to.company is None
    assert check(inv, syntax) == []
    assert official_ids(inv, syntax) == set()
    name = "<ram:Name>Aankoopdienst</ram:Name>" if syntax == "cii" else "Aankoopdienst"
    assert name in (cii_xml(inv) if syntax == "cii" else ubl_xml(inv)).decode()


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_a_blank_vat_id_is_no_vat_id(syntax: Syntax) -> None:
    """BR-CO-09: a blank VAT id was written as an empty one. The buyer's is optional (the
    invoice passes); without the seller's, the check reports what the artefacts report."""
    doc = load("be-peppol-ubl.json")
    doc["bill_to"]["vat_id"] = BLANK
    inv = parse(doc)
    assert inv.bill_to.vat_id is None
    assert check(inv, syntax) == []
    assert official_ids(inv, syntax) == set()

    doc = load("de-credit-note.json")
    doc["seller"]["vat_id"] = BLANK
    doc["seller"].pop("tax_id", None)
    inv = parse(doc)
    native = {p.rule for p in check(inv, syntax)}
    assert "BR-S-02" in native
    assert official_ids(inv, syntax) - {"BR-CO-09"} <= native
    assert "BR-CO-09" not in official_ids(inv, syntax)


def test_a_blank_buyer_reference_is_none_so_no_xrechnung() -> None:
    """BR-DE-15: a blank buyer reference chose the XRechnung profile and was written empty;
    now it is absent: the invoice is a plain EN 16931 CII, which passes."""
    doc = load("de-xrechnung-b2g.json")
    doc["buyer_reference"] = BLANK
    inv = parse(doc)
    assert inv.buyer_reference is None
    assert cii_profile(inv) == "en16931"
    assert check(inv, "cii") == []
    assert official_ids(inv, "cii") == set()


def test_no_empty_ubl_element_from_blank_text() -> None:
    """PEPPOL-EN16931-R008: every optional text of the Peppol example blank at once."""
    doc = load("be-peppol-ubl.json")
    for path in string_paths(doc):
        if REQUIRED.fullmatch(pointer(path)):
            continue
        try:
            parse(changed(doc, path, BLANK))
        except ValidationError:
            continue
        doc = changed(doc, path, BLANK)
    inv = parse(doc)
    xml = ubl_xml(inv).decode()
    assert re.findall(r"<(cbc:\w+)[^>]*>\s*</\1>|<cbc:\w+[^>]*/>", xml) == []
