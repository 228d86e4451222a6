"""Number bombs: amount-shaped inputs whose full decimal form is huge (issue 9, finding 3).

``"unit_price": 1e999999999`` is 11 bytes of JSON; written out it is a billion digits. Every
amount-shaped field of the three input dialects gets every bomb, and each must be answered
with a 422 pointing at that field at a bounded cost. The cost is measured the way a benchmark
would, without a clock: the peak of Python's traced allocations while validating, and the
size of every Decimal the parser hands on (digits and exponent), which bound any later
arithmetic or formatting.
"""

from __future__ import annotations

import copy
import json
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from invoiceflow.domain.parse import (
    MAX_NUMBER_CHARS,
    MAX_NUMBER_EXPONENT,
    load_json,
    parse_invoice,
)
from invoiceflow.errors import InvoiceflowError, ValidationError
from support.api import example_json

#: JSON number texts (inserted verbatim into the document)
BOMBS = [
    "1e999999999",  # the 11 bytes: 23.9 s and 1.9 GB before the fix
    "1e99999999999",  # a MemoryError (503) before the fix
    "-1E+999999999",
    "1.5e999999999",
    "1e-999999999",  # a billion zeros after the point
    "0e999999999",
    "9" * 200_000,  # an integer with 200,000 digits
    "0." + "0" * 200_000 + "1",
    "123456789012345678901234567890",
]

#: peak traced allocation allowed for validating one bombed document (a valid 300-line
#: invoice needs far more; a written-out bomb needs gigabytes)
PEAK_BYTES = 4 * 1024 * 1024

_MARK = "__BOMB__"


def _fields(doc: dict[str, Any], dialect: str) -> Iterator[tuple[str, Any, str]]:
    """(pointer, container, key) of every amount-shaped field of a dialect's example."""
    if dialect == "canonical":
        doc.update(shipping="1", shipping_tax_rate="5", amount_paid="0", discount={"percent": "5"})
        item = doc["items"][0]
        item.update(tax_rate="10", discount={"amount": "1"})
        for key in ("quantity", "unit_price", "tax_rate"):
            yield f"/items/0/{key}", item, key
        yield "/items/0/discount/amount", item["discount"], "amount"
        for key in ("shipping", "shipping_tax_rate", "amount_paid"):
            yield f"/{key}", doc, key
        yield "/discount/percent", doc["discount"], "percent"
    elif dialect == "legacy":
        item = doc["items"][0]
        for key in ("qty", "unit_price", "total"):
            yield f"/items/0/{key}", item, key
        for key in ("tax_rate", "subtotal", "tax_amount", "total_amount"):
            yield f"/{key}", doc, key
    else:
        item = doc["items"][0]
        for key in ("quantity", "unit_cost"):
            yield f"/items/0/{key}", item, key
        for key in ("tax", "discounts", "shipping", "amount_paid"):
            yield f"/{key}", doc, key


_EXAMPLES = {
    "canonical": "minimal.json",
    "legacy": "legacy-flat.json",
    "invoice-generator": "invoice-generator.json",
}


def _cases() -> Iterator[tuple[str, str, str]]:
    for dialect, name in _EXAMPLES.items():
        for pointer, _, _ in _fields(example_json(name), dialect):
            yield dialect, pointer, name


def _bombed(name: str, dialect: str, pointer: str, bomb: str) -> str:
    doc = copy.deepcopy(example_json(name))
    for where, container, key in _fields(doc, dialect):
        if where == pointer:
            container[key] = _MARK
    return json.dumps(doc).replace(f'"{_MARK}"', bomb)


def _decimals(value: Any) -> Iterator[Decimal]:
    if isinstance(value, Decimal):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _decimals(item)
    elif isinstance(value, list):
        for item in value:
            yield from _decimals(item)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Load the schema, Babel's data and the validator before anything is measured."""
    for dialect, name in _EXAMPLES.items():
        parse_invoice(json.dumps(example_json(name)))
        assert dialect


@pytest.mark.parametrize(("dialect", "pointer", "name"), list(_cases()))
def test_every_bomb_in_every_amount_field_is_a_bounded_422(
    dialect: str, pointer: str, name: str
) -> None:
    for bomb in BOMBS:
        text = _bombed(name, dialect, pointer, bomb)
        for number in _decimals(load_json(text)):  # what any later arithmetic could see
            digits, exponent = number.as_tuple()[1:]
            assert isinstance(exponent, int)
            assert len(digits) <= MAX_NUMBER_CHARS and abs(exponent) <= MAX_NUMBER_EXPONENT
        tracemalloc.start()
        try:
            with pytest.raises(ValidationError) as caught:
                parse_invoice(text)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < PEAK_BYTES, (bomb[:20], pointer, peak)
        problems = {p.pointer: p.message for p in caught.value.problems}
        assert pointer in problems, (bomb[:20], problems)
        assert all(len(m) < 300 for m in problems.values()), problems


def test_zero_with_a_huge_exponent_is_still_bounded_where_zero_is_allowed() -> None:
    doc = example_json("minimal.json")
    text = json.dumps(doc | {"shipping": _MARK}).replace(f'"{_MARK}"', "0e999999999")
    with pytest.raises(ValidationError) as caught:
        parse_invoice(text)
    assert "out of range" in {p.pointer: p.message for p in caught.value.problems}["/shipping"]


@pytest.mark.parametrize("bomb", ["1e999999999", "-1e99999999999", "1e-999999999"])
def test_a_decimal_bomb_handed_over_as_a_mapping_is_bounded_too(bomb: str) -> None:
    """parse_invoice also takes an already parsed mapping: the amount check itself must not
    write the number out."""
    doc = example_json("minimal.json")
    doc["items"][0]["unit_price"] = Decimal(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as caught:
            parse_invoice(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES
    assert [p.pointer for p in caught.value.problems] == ["/items/0/unit_price"]


@pytest.mark.parametrize(
    ("name", "key", "pointer"),
    [("minimal.json", "notes", "/notes"), ("legacy-flat.json", "invoice_no", "/invoice_no")],
)
def test_a_number_bomb_where_text_belongs_is_reported_not_kept(
    name: str, key: str, pointer: str
) -> None:
    doc = example_json(name)
    text = json.dumps(doc | {key: _MARK}).replace(f'"{_MARK}"', "1e999999999")
    with pytest.raises(ValidationError) as caught:
        parse_invoice(text)
    assert "out of range" in {p.pointer: p.message for p in caught.value.problems}[pointer]


def test_ordinary_numbers_still_parse_exactly() -> None:
    doc = example_json("minimal.json")
    doc["items"][0].update(quantity=_MARK, unit_price="X")
    text = json.dumps(doc).replace(f'"{_MARK}"', "1.5e2").replace('"X"', "999999999.123456")
    invoice = parse_invoice(text).invoice
    assert invoice.items[0].quantity == Decimal("150")
    assert invoice.items[0].unit_price == Decimal("999999999.123456")


@pytest.mark.parametrize("depth", [33, 900, 5000])
def test_deep_nesting_is_a_400_not_a_crash(depth: int) -> None:
    doc = example_json("minimal.json")
    text = json.dumps(doc | {"notes": _MARK}).replace(f'"{_MARK}"', "[" * depth + "]" * depth)
    with pytest.raises(InvoiceflowError) as caught:
        parse_invoice(text)
    assert caught.value.status == 400
    assert "nested too deeply" in caught.value.detail
