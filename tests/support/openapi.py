"""Check a test-client response against the OpenAPI 3.1 document the product serves."""

from __future__ import annotations

from typing import Any

import jsonschema

from invoiceflow.api import openapi_document


def response_schema(path: str, method: str, status: int, content_type: str) -> dict[str, Any]:
    spec = openapi_document()
    responses = spec["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} may not answer {status}"
    response = responses[str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
    content = response.get("content", {})
    assert content_type in content, f"{content_type} is not documented for {status}"
    return dict(content[content_type]["schema"])


def assert_matches(response: Any, path: str, method: str) -> None:
    """The response's status and content type are documented and its JSON body validates."""
    spec = openapi_document()
    schema = response_schema(path, method, response.status_code, response.mimetype)
    if response.mimetype.endswith("json"):
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": spec["components"]},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        validator.validate(response.get_json())
