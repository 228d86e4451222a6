"""Schemathesis against the OpenAPI document the product serves, on the public functions
(login, upload, download) in-process, with and without credentials: no 5xx, no status and no
media type the document does not list, and every JSON body matches its schema.

Deterministic (derandomized Hypothesis, no example database) and bounded (``MAX_EXAMPLES``
per operation and credential), so it runs in seconds. ``/events`` is not a public operation
(the broker delivers there), so it is not attacked from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.api import openapi_document
from support.api import FUNCTIONS, PASSWORD, Person, basic, make_person
from support.services import fail_or_skip

try:
    import schemathesis
    from hypothesis import HealthCheck, Phase, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    HAS_SCHEMATHESIS = True
except ImportError:  # pragma: no cover - the test extra has it
    HAS_SCHEMATHESIS = False

pytestmark = pytest.mark.attack

#: examples per operation and credential: enough to hit every documented status, bounded time
MAX_EXAMPLES = 15


def _app(name: str) -> Any:
    from functions_framework import create_app

    return create_app(name, str(FUNCTIONS / f"{name}.py"))


#: the function apps, made once (each request reads the context the ``env`` fixture set)
_APPS: dict[str, Any] = {}


def _router() -> Callable[..., Any]:
    """The three public functions behind one address, routed by path as the ingress does."""
    apps = _APPS

    def route(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        name = (
            "login"
            if path.startswith("/login")
            else "upload"
            if path.startswith(("/upload", "/settings"))
            else "download"
        )
        if name not in apps:
            apps[name] = _app(name)
        return apps[name](environ, start_response)

    return route


def _settings() -> Any:
    return settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _missing(test: Callable[..., None]) -> Callable[[], None]:
    def missing() -> None:
        fail_or_skip("schemathesis is not installed (pip install -e '.[test]')")

    missing.__name__ = test.__name__
    return missing


if HAS_SCHEMATHESIS:
    schema = schemathesis.openapi.from_dict(openapi_document())

    def attack(test: Callable[..., None]) -> Any:
        """Every public operation, fixed seed, bounded examples."""
        return schema.parametrize()(_settings()(test))

    CHECKS = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
else:  # pragma: no cover - the test extra has it; fails under CI, skips elsewhere
    attack = _missing
    CHECKS = []


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the attack is on the HTTP surface (both backends run the API tests)."""
    return f"sqlite:///{tmp_path / 'attack.db'}"


@pytest.fixture
def wsgi(env: dict[str, str]) -> Iterator[Any]:
    yield _router()


@pytest.fixture
def mallory(env: dict[str, str]) -> Person:
    return make_person("mallory@example.com")


@attack
def test_unauthenticated(case: Any, wsgi: Any) -> None:
    case.call_and_validate(app=wsgi, checks=CHECKS)


@attack
def test_authenticated(case: Any, wsgi: Any, mallory: Person) -> None:
    credentials = basic(mallory.email, PASSWORD) if case.path == "/login" else mallory.auth
    case.call_and_validate(app=wsgi, headers=credentials, checks=CHECKS)
