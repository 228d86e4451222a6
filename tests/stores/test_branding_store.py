"""The branding settings in the SQL repository (migration 0004): on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from invoiceflow.stores import Repository


@pytest.fixture
def repo_clock() -> object:
    return lambda: datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_settings_are_none_until_put_then_read_back_and_replaced(repo: Repository) -> None:
    alice = repo.add_user("alice@example.com", "x")
    assert alice is not None
    assert repo.get_branding(alice.id) is None

    first = json.dumps({"layout": "modern", "footer": "Thank you — merci"}, ensure_ascii=False)
    repo.put_branding(alice.id, first)
    assert repo.get_branding(alice.id) == first

    second = json.dumps({"currency": "EUR"})
    repo.put_branding(alice.id, second)  # PUT replaces the whole document
    assert repo.get_branding(alice.id) == second


def test_each_owner_has_their_own_settings(repo: Repository) -> None:
    alice = repo.add_user("alice@example.com", "x")
    bob = repo.add_user("bob@example.com", "x")
    assert alice is not None and bob is not None
    repo.put_branding(alice.id, '{"layout": "compact"}')
    assert repo.get_branding(bob.id) is None
    repo.put_branding(bob.id, '{"layout": "modern"}')
    assert repo.get_branding(alice.id) == '{"layout": "compact"}'
    assert repo.get_branding(bob.id) == '{"layout": "modern"}'


def test_settings_belong_to_an_existing_user(repo: Repository) -> None:
    with pytest.raises(Exception):  # noqa: B017  # the driver's integrity error
        repo.put_branding("no-such-user", "{}")
    assert repo.get_branding("no-such-user") is None
