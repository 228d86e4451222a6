"""Fixtures of the step tests (tests/steps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from invoiceflow.context import reset_context
from support.sendgrid import FakeSendGrid, fake_sendgrid


@pytest.fixture
def sendgrid(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    """notify sends through the SendGrid API, to a local stand-in (the setup's env)."""
    with fake_sendgrid() as fake:
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key-not-a-secret")
        monkeypatch.setenv("SENDGRID_HOST", fake.url)
        monkeypatch.setenv("MAIL_FROM", "billing@invoiceflow.test")
        reset_context()
        yield fake
