"""The event catalogue: schemas, examples and the README table agree with the code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from invoiceflow.events import EVENT_TYPES, from_request
from support.events import SCHEMAS, validate_event

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_has_a_schema_an_example_and_a_catalogue_row(event_type: str) -> None:
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    name = event_type.split(".")[-2]
    example = (EVENTS / "examples" / "events" / f"{name}.json").read_bytes()
    event = from_request({"content-type": "application/cloudevents+json"}, example)
    assert event["type"] == event_type
    validate_event(event)
    assert f"`{event_type}`" in (EVENTS / "README.md").read_text()


def test_a_wrong_event_fails_validation() -> None:
    example = json.loads((EVENTS / "examples" / "events" / "rendered.json").read_text())
    example["data"]["size"] = "big"
    event = from_request(
        {"content-type": "application/cloudevents+json"}, json.dumps(example).encode()
    )
    with pytest.raises(jsonschema.ValidationError):
        validate_event(event)


def test_the_uploaded_example_carries_the_routing_attributes_of_its_formats() -> None:
    from invoiceflow import naming
    from invoiceflow.events import attributes_of

    example = (EVENTS / "examples" / "events" / "uploaded.json").read_bytes()
    event = from_request({"content-type": "application/cloudevents+json"}, example)
    routes = {k: v for k, v in attributes_of(event).items() if k.startswith("render")}
    assert routes == naming.uploaded_routes(event.data["formats"])
    readme = (EVENTS / "README.md").read_text()
    for step in naming.RENDER_STEP_FORMATS:
        assert f"| `{naming.route_attribute(step)}` | {step} (`{step}`) |" in readme


def test_the_rendered_example_says_whether_the_invoice_was_complete() -> None:
    from invoiceflow.events import attributes_of
    from invoiceflow.steps import ALL_RENDERED

    example = (EVENTS / "examples" / "events" / "rendered.json").read_bytes()
    event = from_request({"content-type": "application/cloudevents+json"}, example)
    assert attributes_of(event)[ALL_RENDERED] in ("true", "false")
    assert f"`{ALL_RENDERED}`" in (EVENTS / "README.md").read_text()
