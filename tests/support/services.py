"""The rule for tests that need a real server: fail under CI, skip otherwise."""

from __future__ import annotations

import os

import pytest


def require_service(reason: str) -> None:
    """Fail (CI is set) or skip (a developer's machine without the server)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)
