"""The shortcuts that make parsing a long document cheap answer what the plain code answered:
the printable-string test before the suspect-character regexes, the level-by-level depth
check, the string walk that writes pointers only for problems, the per-document memo of
decoded amounts, the line item set without fourteen ``__setattr__`` calls, and the line
amount that is not rounded a second time when there is no line discount."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.test_en16931_fields import _DOCUMENT, FULL
from invoiceflow.domain import parse
from invoiceflow.domain.model import Discount, LineItem
from invoiceflow.domain.parse import load_json, parse_invoice
from invoiceflow.domain.totals import LineTotal, compute_totals, line_total

EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "examples" / "invoices"


def test_a_printable_string_has_no_suspect_character() -> None:
    """Every code point: str.isprintable() True means _SUSPECT finds nothing (so the walk may
    skip the regexes for it); and the suspects themselves are all unprintable."""
    printable_suspects = [
        hex(c)
        for c in range(sys.maxunicode + 1)
        if chr(c).isprintable() and parse._SUSPECT.search(chr(c))
    ]
    assert printable_suspects == []
    assert not "\n".isprintable() and not "\ud800".isprintable() and not "\ufffe".isprintable()


# ------------------------------------------------------------------- the string walk


def _reference_strings(value: Any, where: str, key: str = "") -> Iterator[tuple[str, str]]:
    """The string check as it was written before the walk (one generator per value)."""
    if isinstance(value, parse.BadNumber):
        yield where, value.problem
    elif isinstance(value, str):
        if not parse._SUSPECT.search(value):
            return
        nonchar = parse._NONCHARACTER.search(value)
        if parse._CONTROL.search(value):
            yield where, "contains control characters or invalid Unicode"
        elif nonchar:
            yield (
                where,
                f"contains U+{ord(nonchar.group()):04X}, a Unicode noncharacter that "
                "XML 1.0 and so the workbook cannot hold",
            )
        elif key not in parse._MULTILINE and key != "logo" and parse._LINE_BREAK.search(value):
            yield (
                where,
                "must be a single line (line breaks are allowed only in "
                "descriptions, notes, terms and payment terms)",
            )
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _reference_strings(item, f"{where}/{name}", str(name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _reference_strings(item, f"{where}/{i}", key)


_TEXT = st.text(
    alphabet=st.sampled_from("aZ 0é€\t\n\r\x00\x7f\x85\u2028\u2029\ud800\ufdd0\uffff\U0001fffe"),
    max_size=6,
)
_KEYS = st.sampled_from(
    ["description", "notes", "number", "logo", "note", "payment_terms", "lines", "x"]
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.decimals(allow_nan=False, places=2)
    | _TEXT
    | st.sampled_from([parse.NonFinite("NaN"), parse.OutOfRange("1e999")]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES, _KEYS)
def test_the_string_walk_finds_what_the_recursive_check_found(value: Any, key: str) -> None:
    assert parse._check_strings(value, "", key) == list(_reference_strings(value, "", key))


# -------------------------------------------------------------------- the depth check


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _nested(depth: int, wide: bool) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"a": value, "b": [1, "x"]} if level % 2 else [value, {"c": None}]
    return [value, *([{"x": [1]}] * 3 if wide else [])]


@pytest.mark.parametrize("depth", [0, 1, 30, 31, 32, 33, 60])
def test_the_depth_check_stops_at_max_depth(depth: int) -> None:
    for wide in (False, True):
        value = _nested(depth, wide)
        assert parse._depth_problem(value) == (_depth(value) > parse.MAX_DEPTH)


@settings(max_examples=200, deadline=None)
@given(_VALUES)
def test_the_depth_check_measures_the_depth(value: Any) -> None:
    assert parse._depth_problem(value) == (_depth(value) > parse.MAX_DEPTH)
    assert not parse._depth_problem("text") and not parse._depth_problem(None)


# ------------------------------------------------------------ amounts and line items


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"-?[0-9]{1,17}(\.[0-9]{0,7})?\n?", fullmatch=True) | _TEXT)
def test_the_memo_gives_what_decoding_gives(text: str) -> None:
    memo: parse.Amounts = {}
    first, again = parse._dec(text, memo), parse._dec(text, memo)
    assert first == again == parse._dec(text)
    assert parse._checked_amount(text, memo) == parse._checked_amount(text)
    if first is not None:
        assert first.as_tuple() == parse._dec(text).as_tuple()  # type: ignore[union-attr]


@pytest.mark.parametrize("cls", [LineItem, LineTotal])
def test_the_classes_assemble_builds_have_no_post_init_nor_factories(cls: type) -> None:
    assert not hasattr(cls, "__post_init__")
    assert all(f.default_factory is dataclasses.MISSING for f in dataclasses.fields(cls))
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_the_optional_item_fields_are_line_item_fields() -> None:
    names = {f.name for f in dataclasses.fields(LineItem)}
    required = {f.name for f in dataclasses.fields(LineItem) if f.default is dataclasses.MISSING}
    assert required == {"description", "quantity", "unit_price"}  # what _line_item sets
    assert set(parse._OPTIONAL_ITEM_FIELDS) == names - required


def _same(built: Any, cls: type) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.description = "changed"
    plain = cls(**vars(built))
    assert type(built) is cls
    assert built == plain and hash(built) == hash(plain) and repr(built) == repr(plain)
    assert list(vars(built).items()) == list(vars(plain).items())  # the same order too


def _check_items(doc: Mapping[str, Any]) -> int:
    memo: parse.Amounts = {}
    for it in doc["items"]:
        _same(parse._line_item(it, memo), LineItem)
    return len(doc["items"])


def test_every_examples_items_are_built_as_the_constructor_builds_them() -> None:
    seen = 0
    for path in sorted(EXAMPLES.glob("*.json")):
        doc = load_json(path.read_bytes())
        if isinstance(doc.get("items"), list) and "seller" in doc:
            seen += _check_items(doc)
    seen += _check_items(FULL)
    assert seen > 300


@settings(max_examples=100, deadline=None)
@given(_DOCUMENT)
def test_random_documents_items_are_built_as_the_constructor_builds_them(
    doc: dict[str, Any],
) -> None:
    doc = load_json(json.dumps(doc))
    _check_items(doc)
    invoice = parse_invoice(json.dumps(doc)).invoice
    for line in compute_totals(invoice).lines:
        _same(line, LineTotal)


def test_a_line_item_missing_a_required_field_is_a_key_error() -> None:
    """As before: load_canonical of a document that is not what the service stored fails."""
    with pytest.raises(KeyError):
        parse._line_item({"quantity": "1", "unit_price": "2"}, {})
    with pytest.raises(KeyError):
        parse._line_item({"description": "x"}, {})


_AMOUNT = st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(_AMOUNT, _AMOUNT, st.sampled_from(["EUR", "JPY", "KWD"]))
def test_a_line_without_a_discount_is_rounded_once_to_the_same_figure(
    quantity: Decimal, price: Decimal, currency: str
) -> None:
    plain = line_total(LineItem("x", quantity, price), currency)
    _same(plain, LineTotal)
    none_off = line_total(
        LineItem("x", quantity, price, discount=Discount("amount", Decimal(0))), currency
    )
    assert plain.amount.as_tuple() == none_off.amount.as_tuple()
    assert plain.discount.as_tuple() == none_off.discount.as_tuple()
    assert plain == none_off
