"""The two foreign formats people already send, normalised into the canonical document.

* ``legacy``: the flat format of the microservice this product replaces (``company_name``,
  ``invoice_no``, ``bill_to_*``, ``items[].qty``..., client-computed ``subtotal``,
  ``tax_rate`` in percent, ``tax_amount``, ``total_amount``; no currency: USD).
* ``invoice-generator``: the invoice-generator.com API format (``from``, ``to``, ``number``,
  ``items[].name/quantity/unit_cost``, ``tax``, ``discounts``, ``shipping``, ``fields``...).

A converter never raises: it builds the best canonical dict it can and leaves values it
cannot understand in place so that validation reports them. Each converter also returns a
function that maps a canonical JSON pointer back to the field the client actually sent, so
every problem points into the client's own document. Unknown keys are ignored in these two
formats (they are other tools' formats and often carry extra fields).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from invoiceflow.domain.model import SCHEMA_VERSION

PointerMap = Callable[[str], str]

LEGACY_KEYS = frozenset(
    {"company_name", "invoice_no", "bill_to_name", "total_amount", "tax_amount", "company_address"}
)
GENERATOR_KEYS = frozenset({"from", "to", "unit_cost", "amount_paid", "payment_terms"})

_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
)


def detect(doc: Mapping[str, Any]) -> str:
    """``canonical``, ``legacy`` or ``invoice-generator``."""
    if "schema_version" in doc or "seller" in doc:
        return "canonical"
    if LEGACY_KEYS & doc.keys():
        return "legacy"
    items = doc.get("items")
    first = items[0] if isinstance(items, list) and items else {}
    if {"from", "to"} & doc.keys() or (isinstance(first, dict) and "unit_cost" in first):
        return "invoice-generator"
    return "canonical"


def to_iso_date(value: Any) -> Any:
    """Unambiguous date spellings to ISO 8601; anything else is returned unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return value


def _lines(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [line.strip() for line in re.split(r"\r?\n", value) if line.strip()]
    return [] if value is None else [value]


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "" and value != []:
        target[key] = value


def _renamer(
    top: Mapping[str, str], item_fields: Mapping[str, str], items_key: str = "items"
) -> PointerMap:
    """Map canonical pointers to the client's field names."""

    def to_client(pointer: str) -> str:
        parts = pointer.split("/")[1:]
        if not parts:
            return pointer
        if parts[0] == "items" and len(parts) >= 3:
            parts[0] = items_key
            parts[2] = item_fields.get(parts[2], parts[2])
            return "/" + "/".join(parts)
        joined = "/" + "/".join(parts)
        for canonical, client in sorted(top.items(), key=lambda kv: -len(kv[0])):
            if joined == canonical or joined.startswith(canonical + "/"):
                rest = joined[len(canonical) :]
                return client + (rest if not client.endswith("*") else "")
        return joined

    return to_client


# --------------------------------------------------------------------------- legacy


_LEGACY_POINTERS = {
    "/number": "/invoice_no",
    "/issue_date": "/date",
    "/seller/name": "/company_name",
    "/seller/address": "/company_address",
    "/seller/phone": "/company_phone",
    "/seller/email": "/company_email",
    "/bill_to/name": "/bill_to_name",
    "/bill_to/company": "/bill_to_company",
    "/bill_to/address": "/bill_to_address",
    "/ship_to/name": "/ship_to_name",
    "/ship_to/company": "/ship_to_company",
    "/ship_to/address": "/ship_to_address",
    "/bill_to": "/bill_to_name",
    "/seller": "/company_name",
}
_LEGACY_ITEM_FIELDS = {"quantity": "qty", "sku": "id", "tax_rate": "tax_rate"}


def _party_from_flat(doc: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    name, company = doc.get(f"{prefix}_name"), doc.get(f"{prefix}_company")
    address = doc.get(f"{prefix}_address")
    if not any((name, company, address)):
        return None
    party: dict[str, Any] = {}
    _put(party, "name", name or company)
    if name:
        _put(party, "company", company)
    _put(party, "address", _lines(address))
    return party


def from_legacy(doc: Mapping[str, Any]) -> tuple[dict[str, Any], PointerMap, dict[str, Any]]:
    """Returns (canonical dict, pointer map, the client-sent totals to check)."""
    seller: dict[str, Any] = {}
    _put(seller, "name", doc.get("company_name"))
    _put(seller, "address", _lines(doc.get("company_address")))
    _put(seller, "phone", doc.get("company_phone"))
    _put(seller, "email", doc.get("company_email"))
    number = doc.get("invoice_no")
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "number": str(number) if isinstance(number, int | Decimal) else number,
        "issue_date": to_iso_date(doc.get("date")),
        "currency": doc.get("currency", "USD"),
        "seller": seller,
        "bill_to": _party_from_flat(doc, "bill_to") or {},
    }
    if number is None:  # no invoice_no: the server assigns the next number of the series
        del out["number"]
    _put(out, "due_date", to_iso_date(doc.get("due_date")))
    _put(out, "locale", doc.get("locale"))
    _put(out, "notes", doc.get("notes"))
    _put(out, "terms", doc.get("terms"))
    ship_to = _party_from_flat(doc, "ship_to")
    if ship_to:
        out["ship_to"] = ship_to
    tax_rate = doc.get("tax_rate")
    items = []
    raw_items = doc.get("items")
    for raw in raw_items if isinstance(raw_items, list) else []:
        if not isinstance(raw, dict):
            items.append(raw)
            continue
        item: dict[str, Any] = {}
        _put(item, "description", raw.get("description"))
        _put(item, "quantity", raw.get("qty", raw.get("quantity")))
        _put(item, "unit_price", raw.get("unit_price"))
        _put(item, "unit", raw.get("unit"))
        sku = raw.get("id")
        _put(item, "sku", str(sku) if sku is not None else None)
        if tax_rate not in (None, ""):
            item["tax_rate"] = tax_rate
        items.append(item)
    out["items"] = items if isinstance(raw_items, list) else raw_items
    sent = {key: doc[key] for key in ("subtotal", "tax_amount", "total_amount") if key in doc}
    sent["items"] = [
        raw.get("total") if isinstance(raw, dict) else None
        for raw in (raw_items if isinstance(raw_items, list) else [])
    ]
    pointers = dict(_LEGACY_POINTERS)
    if tax_rate is not None:
        pointers["/tax_rate"] = "/tax_rate"
    to_client = _renamer(pointers, _LEGACY_ITEM_FIELDS)

    def legacy_map(pointer: str) -> str:
        # every line's tax rate comes from the one top-level tax_rate
        if re.fullmatch(r"/items/\d+/tax_rate", pointer):
            return "/tax_rate"
        return to_client(pointer)

    return out, legacy_map, sent


# --------------------------------------------------------------- invoice-generator.com


def _party_from_block(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    lines = _lines(value)
    if not lines:
        return value if value not in (None, "") else None
    party: dict[str, Any] = {"name": lines[0]}
    _put(party, "address", lines[1:])
    return party


def from_invoice_generator(
    doc: Mapping[str, Any],
) -> tuple[dict[str, Any], PointerMap, list[tuple[str, str]]]:
    """Returns (canonical dict, pointer map, problems found while converting)."""
    problems: list[tuple[str, str]] = []
    raw_fields = doc.get("fields")
    fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
    seller = _party_from_block(doc.get("from"))
    logo = doc.get("logo")
    if isinstance(logo, str) and logo:
        if logo.startswith("data:"):
            if isinstance(seller, dict):
                seller["logo"] = logo
        else:
            problems.append(
                ("/logo", "only data: URIs are accepted for the logo; URLs are never fetched")
            )
    currency = doc.get("currency", "USD")
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "number": str(doc["number"]) if isinstance(doc.get("number"), int) else doc.get("number"),
        "issue_date": to_iso_date(doc.get("date")),
        "currency": currency.upper() if isinstance(currency, str) else currency,
        "seller": seller if seller is not None else {},
        "bill_to": _party_from_block(doc.get("to")) or {},
    }
    if out["number"] is None:  # no number: the server assigns the next number of the series
        del out["number"]
    ship_to = _party_from_block(doc.get("ship_to"))
    if ship_to:
        out["ship_to"] = ship_to
    _put(out, "due_date", to_iso_date(doc.get("due_date")))
    _put(out, "payment_terms", doc.get("payment_terms"))
    _put(out, "locale", doc.get("locale"))
    _put(out, "notes", doc.get("notes"))
    _put(out, "terms", doc.get("terms"))
    _put(out, "shipping", doc.get("shipping") or None)
    _put(out, "amount_paid", doc.get("amount_paid") or None)

    tax = doc.get("tax")
    tax_mode = fields.get("tax", "%")
    if tax not in (None, "", 0) and tax_mode is True:
        problems.append(
            (
                "/fields/tax",
                "flat tax amounts are not supported; send the tax "
                'as a percentage (fields.tax = "%")',
            )
        )
    discounts = doc.get("discounts")
    if discounts not in (None, "", 0):
        kind = "percent" if fields.get("discounts") == "%" else "amount"
        out["discount"] = {kind: discounts}

    items = []
    raw_items = doc.get("items")
    for raw in raw_items if isinstance(raw_items, list) else []:
        if not isinstance(raw, dict):
            items.append(raw)
            continue
        item: dict[str, Any] = {}
        name, extra = raw.get("name"), raw.get("description")
        _put(item, "description", f"{name} — {extra}" if name and extra else (name or extra))
        _put(item, "quantity", raw.get("quantity"))
        _put(item, "unit_price", raw.get("unit_cost"))
        _put(item, "unit", raw.get("unit"))
        if tax not in (None, "", 0) and tax_mode == "%":
            item["tax_rate"] = tax
        items.append(item)
    out["items"] = items if isinstance(raw_items, list) else raw_items

    to_client = _renamer(
        {
            "/seller/logo": "/logo",
            "/seller": "/from",
            "/bill_to": "/to",
            "/ship_to": "/ship_to",
            "/issue_date": "/date",
            "/discount": "/discounts",
        },
        {"description": "name", "unit_price": "unit_cost"},
    )

    def generator_map(pointer: str) -> str:
        if re.fullmatch(r"/items/\d+/tax_rate", pointer):
            return "/tax"
        if pointer.startswith("/discount/"):  # the one number "discounts" became the object
            return "/discounts"
        if pointer.startswith(("/seller/", "/bill_to/", "/ship_to/")) and not pointer.startswith(
            "/seller/logo"
        ):
            # the whole party came from one multi-line string: point at that field
            return to_client("/" + pointer.split("/")[1])
        return to_client(pointer)

    return out, generator_map, problems


# ------------------------------------------------------------- business-rule pointers


def _closest(pointer: str, place: Callable[[str], str | None]) -> str:
    """The client's field for ``pointer`` or for its closest parent that has a place in the
    client's format (``place`` maps a canonical pointer to it, or None); the document itself
    ("") when none has."""
    parts = pointer.split("/")
    while len(parts) > 1:
        found = place("/".join(parts))
        if found is not None:
            return found
        parts.pop()
    return ""


def _item_place(
    parts: list[str], raw_items: Any, fields: Mapping[str, str], rate: str
) -> str | None:
    """``/items``, ``/items/N`` and the item fields the format has (``fields``: canonical
    name -> the client's); every line's tax rate is the one top-level ``rate`` field."""
    if len(parts) == 1:
        return "/items"
    index = parts[1]
    if not index.isdigit() or not isinstance(raw_items, list) or int(index) >= len(raw_items):
        return None
    if len(parts) == 2:
        return f"/items/{index}"
    if len(parts) == 3 and parts[2] == "tax_rate":
        return rate
    if len(parts) == 3 and parts[2] in fields:
        return f"/items/{index}/{fields[parts[2]]}"
    return None


_LEGACY_PLACES = {
    **{k: v for k, v in _LEGACY_POINTERS.items() if k not in ("/bill_to", "/seller")},
    **{f"/{k}": f"/{k}" for k in ("due_date", "currency", "locale", "notes", "terms")},
}


def legacy_rule_pointers(doc: Mapping[str, Any]) -> PointerMap:
    """Where a broken business rule's canonical pointer points in a legacy flat document:
    the flat field that holds the value (``/seller/address`` and everything in it ->
    ``/company_address``, ``/items/0/quantity`` -> ``/items/0/qty``, a line's tax rate ->
    the top-level ``/tax_rate``), else the closest parent that exists in the flat format:
    ``/items/N`` for an item field it has no key for (``tax_category``, ``unit_code``), and
    the document itself ("") for everything else it cannot carry (the seller's VAT id,
    ``/payment_terms``, ``/tax_exemptions/...``), since a flat document has no party
    objects: such a field needs the canonical format."""
    raw_items = doc.get("items")
    quantity = (
        "quantity"
        if any(
            isinstance(r, dict) and "quantity" in r and "qty" not in r
            for r in (raw_items if isinstance(raw_items, list) else [])
        )
        else "qty"
    )
    item_fields = {
        "description": "description",
        "quantity": quantity,
        "unit_price": "unit_price",
        "unit": "unit",
        "sku": "id",
    }

    def place(pointer: str) -> str | None:
        parts = pointer.split("/")[1:]
        if parts[0] == "items":
            return _item_place(parts, raw_items, item_fields, "/tax_rate")
        return _LEGACY_PLACES.get(pointer)

    return lambda pointer: _closest(pointer, place)


_GENERATOR_PARTIES = {"seller": "/from", "bill_to": "/to", "ship_to": "/ship_to"}
_GENERATOR_PLACES = {
    "/issue_date": "/date",
    "/discount": "/discounts",
    "/seller/logo": "/logo",
    **{
        f"/{k}": f"/{k}"
        for k in (
            "number",
            "due_date",
            "payment_terms",
            "currency",
            "locale",
            "notes",
            "terms",
            "shipping",
            "amount_paid",
        )
    },
}


def generator_rule_pointers(doc: Mapping[str, Any]) -> PointerMap:
    """Where a broken business rule's canonical pointer points in an invoice-generator
    document: its own field (``/issue_date`` -> ``/date``, ``/items/0/description`` ->
    ``/items/0/name``, a line's tax rate -> ``/tax``); for a party sent as an object
    (``"to": {...}``, canonical party fields) the same path under its key (``/to/vat_id``);
    for a party sent as one multi-line string the string itself (``/to`` for
    ``/bill_to/address/country``); ``/items/N`` for an item field the format has no key
    for; the document itself ("") for the rest (``/shipping_tax_category``,
    ``/tax_exemptions/...``, ``/payment/...``)."""
    raw_items = doc.get("items")
    item_fields = {
        "description": "name",
        "quantity": "quantity",
        "unit_price": "unit_cost",
        "unit": "unit",
    }

    def place(pointer: str) -> str | None:
        parts = pointer.split("/")[1:]
        if parts[0] == "items":
            return _item_place(parts, raw_items, item_fields, "/tax")
        if pointer.startswith("/discount/"):
            return "/discounts"
        if pointer in _GENERATOR_PLACES:
            return _GENERATOR_PLACES[pointer]
        key = _GENERATOR_PARTIES.get(parts[0])
        if key is None:
            return None
        if isinstance(doc.get(key[1:]), dict):
            return key + pointer[len(parts[0]) + 1 :]
        return key if len(parts) == 1 else None

    return lambda pointer: _closest(pointer, place)
