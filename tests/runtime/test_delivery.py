"""Knative's delivery rules, as the shared Dispatcher applies them."""

from __future__ import annotations

import base64

import pytest

from invoiceflow_local.delivery import (
    ERROR_DATA_MAX,
    OK,
    PERMANENT,
    RETRY,
    classify,
    error_extensions,
)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert classify(status) == OK


@pytest.mark.parametrize("status", [None, 404, 408, 409, 429, 500, 502, 503, 504, 599])
def test_retried(status: int | None) -> None:
    assert classify(status) == RETRY


@pytest.mark.parametrize("status", [100, 301, 302, 304, 400, 401, 403, 405, 410, 413, 415, 422])
def test_not_retried(status: int) -> None:
    assert classify(status) == PERMANENT


def test_error_extensions_like_knative() -> None:
    extensions = error_extensions("http://127.0.0.1:1/events", 422, b'{"title": "Invalid"}')
    assert extensions == {
        "knativeerrordest": "http://127.0.0.1:1/events",
        "knativeerrorcode": "422",
        "knativeerrordata": base64.b64encode(b'{"title": "Invalid"}').decode(),
    }


def test_error_data_is_cut_to_knatives_limit() -> None:
    data = error_extensions("http://x", 500, b"x" * 5000)["knativeerrordata"]
    assert len(data) == ERROR_DATA_MAX == 1024
    assert base64.b64encode(b"x" * 5000).decode().startswith(data)


def test_a_request_that_got_no_answer_is_reported_as_500() -> None:
    extensions = error_extensions("http://x", None, b"", "ConnectionError: refused")
    assert extensions["knativeerrorcode"] == "500"
    assert base64.b64decode(extensions["knativeerrordata"]) == (
        b"dispatch error: ConnectionError: refused"
    )
