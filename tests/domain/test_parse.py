"""Parsing and validation of invoice documents in all three formats."""

from __future__ import annotations

import base64
import copy
import io
import json
import struct
import zlib
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from invoiceflow.domain import compute_totals, parse_invoice, to_json
from invoiceflow.domain.parse import check_settings, schema
from invoiceflow.errors import (
    MalformedJSON,
    PayloadTooLarge,
    TotalsMismatch,
    ValidationError,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "events" / "examples" / "invoices"
SCHEMA_FILE = ROOT / "events" / "schemas" / "invoice.v1.schema.json"

MINIMAL: dict[str, object] = {
    "number": "T-1",
    "issue_date": "2026-11-24",
    "currency": "EUR",
    "seller": {"name": "Seller"},
    "bill_to": {"name": "Buyer"},
    "items": [{"description": "Thing", "quantity": "1", "unit_price": "10.00"}],
}


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    """pointer -> its messages joined with ' | '."""
    out: dict[str, str] = {}
    for p in exc.value.problems:
        out[p.pointer] = f"{out[p.pointer]} | {p.message}" if p.pointer in out else p.message
    return out


def doc(**changes: object) -> dict[str, object]:
    d: dict[str, object] = copy.deepcopy(MINIMAL)
    d.update(changes)
    return d


def test_there_are_at_least_six_examples_and_all_parse() -> None:
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) >= 6
    formats = {parse_invoice(f.read_bytes()).source_format for f in files}
    assert formats == {"canonical", "legacy", "invoice-generator"}


def test_schema_is_valid_2020_12_and_the_package_reads_the_same_file() -> None:
    on_disk = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(on_disk)
    assert on_disk["$schema"].endswith("2020-12/schema")
    assert schema() == on_disk


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_normalised_form_of_every_example_validates_against_the_published_schema(
    path: Path,
) -> None:
    canonical = to_json(parse_invoice(path.read_bytes()).invoice)
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(canonical)
    # and the canonical form parses back to the same invoice
    again = parse_invoice(json.dumps(canonical))
    assert again.invoice == parse_invoice(path.read_bytes()).invoice


def test_the_schema_states_the_defaults_the_parser_applies() -> None:
    from invoiceflow.domain.model import DEFAULT_LOCALE, SCHEMA_VERSION
    from invoiceflow.domain.parse import DEFAULT_QUANTITY

    published = schema()
    assert published["properties"]["locale"]["default"] == DEFAULT_LOCALE
    assert published["properties"]["schema_version"]["default"] == SCHEMA_VERSION
    item = published["properties"]["items"]["items"]
    item = published["$defs"][item["$ref"].split("/")[-1]] if "$ref" in item else item
    assert item["properties"]["quantity"]["default"] == DEFAULT_QUANTITY
    doc = json.loads((EXAMPLES / "minimal.json").read_text())
    doc.pop("locale", None)
    for line in doc["items"]:
        line.pop("quantity", None)
    invoice = parse_invoice(json.dumps(doc).encode()).invoice
    assert invoice.locale == DEFAULT_LOCALE
    assert {line.quantity for line in invoice.items} == {Decimal(DEFAULT_QUANTITY)}


def test_legacy_format_is_normalised() -> None:
    d = parse_invoice((EXAMPLES / "legacy-flat.json").read_bytes())
    inv = d.invoice
    assert d.source_format == "legacy"
    assert inv.currency == "USD"
    assert inv.number == "INV-2026-001"
    assert inv.seller.name == "Acme Web Services LLC"
    assert inv.seller.address == ("1200 Market Street, Suite 400", "San Francisco, CA 94102")
    assert inv.bill_to.name == "Jane Cooper" and inv.bill_to.company == "Globex Corporation"
    assert inv.ship_to is not None and inv.ship_to.name == "Receiving Dock B"
    assert [i.quantity for i in inv.items] == [Decimal(1), Decimal(12), Decimal("7.5")]
    assert {i.tax_rate for i in inv.items} == {Decimal("8.25")}
    assert compute_totals(inv).total == Decimal("3677.66")


def test_legacy_totals_off_by_more_than_one_minor_unit_are_rejected_naming_each_field() -> None:
    raw = json.loads((EXAMPLES / "legacy-flat.json").read_text())
    raw["items"][1]["total"] = "359.00"
    raw["subtotal"] = "3396.00"
    raw["total_amount"] = 3677.67  # one cent off: tolerated
    with pytest.raises(TotalsMismatch) as exc:
        parse_invoice(json.dumps(raw))
    found = problems(exc)
    assert set(found) == {"/items/1/total", "/subtotal"}
    assert "359.00" in found["/items/1/total"] and "359.88" in found["/items/1/total"]
    assert "3396.00" in found["/subtotal"] and "3397.38" in found["/subtotal"]
    assert exc.value.status == 422


def test_legacy_problems_point_at_the_clients_own_fields() -> None:
    raw = json.loads((EXAMPLES / "legacy-flat.json").read_text())
    del raw["company_name"]
    raw["date"] = "2026-13-01"
    raw["items"][0]["qty"] = -2
    raw["tax_rate"] = 120
    with pytest.raises(ValidationError) as exc:
        parse_invoice(json.dumps(raw))
    found = problems(exc)
    assert "/company_name" in found
    assert "/date" in found
    assert "/items/0/qty" in found
    assert "/tax_rate" in found and "0 to 100" in found["/tax_rate"]


def test_invoice_generator_format_is_normalised() -> None:
    d = parse_invoice((EXAMPLES / "invoice-generator.json").read_bytes())
    inv = d.invoice
    assert d.source_format == "invoice-generator"
    assert inv.seller.name == "Invoiced, Inc." and inv.seller.address[0] == "548 Market St"
    assert inv.bill_to.name == "Acme Corp"
    assert inv.currency == "USD"
    assert inv.issue_date.isoformat() == "2026-11-20"
    assert inv.logo is not None and inv.logo.media_type == "image/png"
    assert inv.items[0].description == "Starter plan — Monthly subscription"
    assert inv.discount is not None and inv.discount.kind == "percent"
    totals = compute_totals(inv)
    assert totals.subtotal == Decimal("649.00")
    assert totals.discount == Decimal("32.45")
    assert totals.tax == Decimal("44.70")
    assert totals.balance_due == Decimal("576.25")


def test_invoice_generator_logo_url_is_never_fetched_but_rejected() -> None:
    raw = json.loads((EXAMPLES / "invoice-generator.json").read_text())
    raw["logo"] = "https://example.com/logo.png"
    raw["items"][0]["unit_cost"] = "abc"
    with pytest.raises(ValidationError) as exc:
        parse_invoice(json.dumps(raw))
    found = problems(exc)
    assert "never fetched" in found["/logo"]
    assert "/items/0/unit_cost" in found


def test_every_problem_is_reported_at_once_with_pointers() -> None:
    bad = {
        "number": "",
        "issue_date": "2026-02-30",
        "due_date": "2026-01-01",
        "currency": "ZZZ",
        "locale": "xx-QQ",
        "seller": {},
        "bill_to": {"name": "x", "nickname": "y"},
        "items": [
            {"description": "a", "quantity": "-1", "unit_price": "NaN"},
            {"description": "b", "unit_price": "1", "tax_rate": "101"},
            {"description": "c", "unit_price": "5", "discount": {"amount": "9"}},
        ],
        "amount_paid": -3,
        "discount": {"percent": "5", "amount": "1"},
    }
    with pytest.raises(ValidationError) as exc:
        parse_invoice(json.dumps(bad))
    found = problems(exc)
    assert set(found) >= {
        "/number",
        "/issue_date",
        "/currency",
        "/locale",
        "/seller/name",
        "/bill_to/nickname",
        "/items/0/quantity",
        "/items/0/unit_price",
        "/items/1/tax_rate",
        "/items/2/discount/amount",
        "/amount_paid",
        "/discount",
    }
    assert "real calendar date" in found["/issue_date"]
    assert "credit" in found["/items/0/quantity"]
    assert exc.value.status == 422
    assert all(p["message"] for p in exc.value.to_dict()["problems"])


def test_nan_and_infinity_literals_are_rejected_with_a_pointer() -> None:
    text = json.dumps(doc()).replace('"10.00"', "NaN")
    with pytest.raises(ValidationError) as exc:
        parse_invoice(text)
    assert "NaN is not allowed" in problems(exc)["/items/0/unit_price"]
    text = json.dumps(doc(shipping="X")).replace('"X"', "-Infinity")
    with pytest.raises(ValidationError) as exc:
        parse_invoice(text)
    assert "/shipping" in problems(exc)


def test_due_date_before_issue_date_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_invoice(doc(due_date="2026-11-01"))
    assert "before the issue date" in problems(exc)["/due_date"]


def test_credit_lines_may_be_negative() -> None:
    d = doc(
        items=[
            {"description": "Fee", "unit_price": "100"},
            {"description": "Refund", "quantity": "-1", "unit_price": "30", "credit": True},
        ]
    )
    assert compute_totals(parse_invoice(d).invoice).total == Decimal("70.00")


def test_a_credit_lines_amount_discount_goes_at_most_to_zero() -> None:
    """A line discount amount takes the line's sign: on a credit line of -30.00 any amount up
    to 30.00 is accepted and brings the credit towards zero; more is refused."""

    def credit(discount: str) -> dict[str, object]:
        refund = {"description": "Refund", "quantity": "-1", "unit_price": "30", "credit": True}
        fee = {"description": "Fee", "unit_price": "100"}
        return doc(items=[fee, {**refund, "discount": {"amount": discount}}])

    assert compute_totals(parse_invoice(credit("12.50")).invoice).total == Decimal("82.50")
    assert compute_totals(parse_invoice(credit("30.00")).invoice).total == Decimal("100.00")
    with pytest.raises(ValidationError) as exc:
        parse_invoice(credit("30.01"))
    assert "larger than the line's -30" in problems(exc)["/items/1/discount/amount"]


def test_limits_have_clear_messages() -> None:
    item = {"description": "x", "unit_price": "1"}
    with pytest.raises(ValidationError) as exc:
        parse_invoice(doc(items=[item] * 10_001, notes="n" * 1001))
    found = problems(exc)
    assert "at most 10,000 line items" in found["/items"]
    assert "at most 1,000 characters" in found["/notes"]
    parse_invoice(doc(items=[item] * 10_000))  # the limit itself is fine


def test_size_limit_and_malformed_json() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_invoice(b"{" + b" " * 2048 + b"}", max_bytes=1024)
    with pytest.raises(MalformedJSON) as exc:
        parse_invoice(b'{"number": ')
    assert exc.value.status == 400 and "line 1" in str(exc.value)
    with pytest.raises(MalformedJSON):
        parse_invoice(b"\xff\xfe not utf-8")
    with pytest.raises(ValidationError):
        parse_invoice(b"[1, 2]")


def _png() -> bytes:
    logo = json.loads((EXAMPLES / "eur-two-rates.json").read_text())["seller"]["logo"]
    return base64.b64decode(logo.split(",")[1])


def test_logo_rules() -> None:
    png = _png()
    ok = parse_invoice(
        doc(seller={"name": "S", "logo": "data:image/png;base64," + base64.b64encode(png).decode()})
    )
    assert ok.invoice.logo is not None and ok.invoice.logo.data == png
    cases = {
        "data:image/png;base64,!!!": "not valid base64",
        "data:image/jpeg;base64," + base64.b64encode(png).decode(): "not a JPEG",
        "data:image/png;base64,"
        + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 524_281).decode(): "at most 524,288",
        "https://evil.example/logo.png": "data: URI",
    }
    big = doc(seller={"name": "S", "logo": "data:image/png;base64," + "A" * 800_000})
    with pytest.raises(ValidationError) as exc:
        parse_invoice(big)
    assert "at most 699,100 characters" in problems(exc)["/seller/logo"]
    for uri, message in cases.items():
        with pytest.raises(ValidationError) as exc:
            parse_invoice(doc(seller={"name": "S", "logo": uri}))
        assert message in problems(exc)["/seller/logo"], uri


def _png_header(width: int, height: int, idat: bytes = b"\0" * 100) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(idat))
        + chunk(b"IEND", b"")
    )


def test_a_logo_the_renderer_cannot_draw_is_refused_when_accepted() -> None:
    """Right first bytes are not enough: a logo claiming too many pixels (a decompression
    bomb), a damaged PNG or JPEG is a 422 at /seller/logo, not an invoice that fails later."""
    from PIL import Image

    jpeg = io.BytesIO()
    Image.new("RGB", (600, 300), (1, 2, 3)).save(jpeg, "JPEG")
    cases = [
        ("png", _png_header(20000, 20000), "too many pixels"),
        ("png", _png_header(6000, 6000), "6000x6000 pixels; at most 25,000,000"),
        ("png", _png()[:60], "not a readable PNG image"),
        ("jpeg", jpeg.getvalue()[:400], "not a readable JPEG image"),
        ("jpeg", b"\xff\xd8\xff" + b"\0" * 20, "not a readable JPEG image"),
    ]
    for kind, data, message in cases:
        head = f"data:image/{kind};base64,"
        uri = head + base64.b64encode(data).decode()
        with pytest.raises(ValidationError) as exc:
            parse_invoice(doc(seller={"name": "S", "logo": uri}))
        assert message in problems(exc)["/seller/logo"], message
        assert [p.message for p in check_settings({"logo": uri})] == [problems(exc)["/seller/logo"]]


def test_numbers_as_json_numbers_keep_exact_decimal_values() -> None:
    text = json.dumps(doc()).replace('"10.00"', "0.1")
    inv = parse_invoice(text.replace('"quantity": "1"', '"quantity": 3')).invoice
    assert inv.items[0].unit_price == Decimal("0.1")
    assert compute_totals(inv).subtotal == Decimal("0.30")


def test_amounts_must_fit_a_spreadsheet_and_the_money_arithmetic() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_invoice(
            doc(
                items=[
                    {
                        "description": "a",
                        "quantity": "99999999999",
                        "unit_price": "999999999999999",
                        "tax_rate": "19",
                    },
                    {"description": "b", "unit_price": "1234567890.123456"},
                ]
            )
        )
    found = problems(exc)
    assert "too large" in found["/items/0/unit_price"]
    assert "15 significant digits" in found["/items/1/unit_price"]
    with pytest.raises(ValidationError) as exc:
        parse_invoice(
            doc(items=[{"description": "x", "quantity": "900", "unit_price": "999999999"}] * 200)
        )
    assert "invoice total is too large" in problems(exc)["/items"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("number", "INV-1\r\nBcc: evil@example.com", "single line"),
        ("number", "A\u0000B", "control characters"),
        ("purchase_order", "PO\u202830", "single line"),
        ("payment_terms", "#SKONTO#TAGE=14#PROZENT=2.00#\x0b", "control characters"),
        ("payment_terms", "Net\x0030\n", "control characters"),
        ("seller", {"name": "\ud800x"}, "invalid Unicode"),
        ("bill_to", {"name": "B", "address": ["line\nbreak"]}, "single line"),
    ],
)
def test_control_characters_and_line_breaks_where_they_do_not_belong(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_invoice(doc(**{field: value}))
    assert any(message in m for m in problems(exc).values())


def test_line_breaks_are_fine_in_descriptions_notes_and_terms() -> None:
    inv = parse_invoice(
        doc(
            notes="Thanks!\nSee you",
            terms="1.\n2.",
            items=[{"description": "two\nlines", "unit_price": "1"}],
        )
    ).invoice
    assert inv.notes == "Thanks!\nSee you" and inv.items[0].description == "two\nlines"


@pytest.mark.parametrize(
    "terms",
    [
        "#SKONTO#TAGE=14#PROZENT=2.00#\n",
        "#SKONTO#TAGE=7#PROZENT=3.00#\r\n#SKONTO#TAGE=14#PROZENT=2.00#\n30 Tage netto",
    ],
)
def test_payment_terms_may_span_lines(terms: str) -> None:
    """XRechnung's Skonto lines (BR-DE-18) each end with a line break: kept as sent."""
    assert parse_invoice(doc(payment_terms=terms)).invoice.payment_terms == terms


def test_an_invoice_discount_larger_than_the_subtotal_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_invoice(doc(discount={"amount": "100000"}))
    assert "larger than the subtotal 10.00" in problems(exc)["/discount/amount"]
    parse_invoice(doc(discount={"amount": "10.00"}))  # the whole subtotal is fine
