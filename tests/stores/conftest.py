"""Fixtures of the store contract tests: every repository test runs on SQLite and on
PostgreSQL (a fresh schema), with the clock the test module chooses (``repo_clock``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from invoiceflow.stores import Repository, open_repository


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def make_repo(
    database_url: str, repo_clock: Callable[[], Any]
) -> Iterator[Callable[..., Repository]]:
    """make_repo(**options): a migrated repository on ``database_url`` (reading
    ``repo_clock`` unless a clock is given); all closed afterwards."""
    opened: list[Repository] = []

    def make(**options: Any) -> Repository:
        options.setdefault("clock", repo_clock)
        repo = open_repository(database_url, **options)
        opened.append(repo)
        repo.migrate()
        return repo

    yield make
    for repo in opened:
        repo.close()


@pytest.fixture
def repo(make_repo: Callable[..., Repository]) -> Repository:
    return make_repo()
