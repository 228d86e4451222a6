"""The document's ``language`` and ``branding``: parsed, checked with pointers, written back by
``to_json`` (a round trip), and held to the schema's enums (the model's LAYOUTS and
FONT_FAMILIES are the schema's)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from invoiceflow.domain import parse_invoice, to_json
from invoiceflow.domain.model import FONT_FAMILIES, LAYOUTS, Branding
from invoiceflow.domain.parse import schema
from invoiceflow.errors import ValidationError


def _doc(**extra: Any) -> dict[str, Any]:
    return {
        "number": "RE-1",
        "issue_date": "2026-03-05",
        "currency": "EUR",
        "locale": "de-CH",
        "seller": {"name": "Muster AG"},
        "bill_to": {"name": "Kunde"},
        "items": [{"description": "Beratung", "quantity": "1", "unit_price": "100"}],
        **extra,
    }


def test_language_and_branding_round_trip() -> None:
    branding = {
        "layout": "modern",
        "accent_color": "#0a7e8c",
        "font": "liberation-serif",
        "footer": "Muster AG · Bahnhofstrasse 1 · 8001 Zürich",
    }
    invoice = parse_invoice(json.dumps(_doc(language="en", branding=branding))).invoice
    assert invoice.language == "en"
    assert invoice.locale == "de-CH"
    assert invoice.branding == Branding(
        layout="modern",
        accent_color="#0A7E8C",
        font="liberation-serif",
        footer="Muster AG · Bahnhofstrasse 1 · 8001 Zürich",
    )
    again = parse_invoice(json.dumps(to_json(invoice))).invoice
    assert again == invoice


def test_absent_language_and_branding_stay_absent() -> None:
    invoice = parse_invoice(json.dumps(_doc())).invoice
    assert invoice.language is None and invoice.branding is None
    assert "language" not in to_json(invoice) and "branding" not in to_json(invoice)


def test_bad_language_and_branding_are_refused_with_every_pointer() -> None:
    bad = _doc(
        language="xx-Nowhere",
        branding={"layout": "fancy", "accent_color": "red", "font": "comic-sans", "logo": 1},
    )
    with pytest.raises(ValidationError) as caught:
        parse_invoice(json.dumps(bad))
    pointers = {p.pointer for p in caught.value.problems}
    assert {
        "/language",
        "/branding/layout",
        "/branding/accent_color",
        "/branding/font",
    } <= pointers
    assert "/branding" in pointers or "/branding/logo" in pointers  # the unknown key


def test_the_schema_enums_are_the_models() -> None:
    props = schema()["properties"]["branding"]["properties"]
    assert tuple(props["layout"]["enum"]) == LAYOUTS
    assert tuple(props["font"]["enum"]) == FONT_FAMILIES


@pytest.mark.parametrize("field", ["locale", "language"])
def test_a_tag_that_is_not_bcp_47_is_refused_in_words_not_a_regular_expression(
    field: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_invoice(json.dumps(_doc(**{field: "de-DE-u-co-phonebk"})))
    messages = [p.message for p in caught.value.problems if p.pointer == f"/{field}"]
    assert messages and all("^[" not in m and "does not match" not in m for m in messages)
    assert "is not a BCP 47 language tag such as" in messages[0]
