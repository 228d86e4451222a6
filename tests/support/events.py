"""Validate CloudEvents against the catalogue's JSON Schemas (``events/schemas/``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from invoiceflow.events import EVENT_TYPES, is_extension_name

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


@cache
def validator(event_type: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def validate_event(event: Any) -> None:
    """Raise if the event's type is not catalogued, its data does not match its schema, or an
    extension name is not lowercase letters/digits."""
    event_type = event["type"]
    assert event_type in EVENT_TYPES, f"{event_type} is not in the catalogue"
    validator(event_type).validate(event.data)
    for name in event.get_attributes():
        assert is_extension_name(name), f"attribute name {name!r} is not lowercase alphanumeric"
