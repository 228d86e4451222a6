"""The one rule for tests that need something this machine may lack (a server, a tool, an
input beside the repository): fail under CI, skip otherwise."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def fail_or_skip(reason: str) -> NoReturn:
    """Fail (CI is set: CI has everything) or skip (a developer's machine without it)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)
