"""Fault injection, one server restart at a time, on a server of the test's own (never the
machine's shared one): what a process that stays up sees once the server is back.

Run with the other fault runs: ``.venv/bin/pytest -m faults -rP``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from invoiceflow.errors import Unavailable
from invoiceflow.stores.postgres import PostgresRepository

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.postgres]

POOL = 4


def test_no_query_fails_on_a_pooled_connection_the_restart_cut(postgres_cluster: Any) -> None:
    """A PostgreSQL restart cuts every idle pooled connection. Once the server is back, every
    query succeeds: none is sent on a connection the server already closed (each such query
    was a 503, one per pooled connection, well after the restart)."""
    repo = PostgresRepository(postgres_cluster.url, max_connections=POOL)
    try:
        repo.migrate()
        with ThreadPoolExecutor(POOL) as pool:  # every connection of the pool opened, now idle
            list(pool.map(lambda _: repo.pending_outbox_events(), range(10 * POOL)))
        postgres_cluster.restart()
        failures = []
        for _ in range(2 * POOL):
            try:
                repo.pending_outbox_events()
            except Unavailable as exc:
                failures.append(exc.detail)
        assert failures == []
        with ThreadPoolExecutor(POOL) as pool:  # the pool still serves POOL threads at once
            assert list(pool.map(lambda _: repo.pending_outbox_events(), range(4 * POOL)))
    finally:
        repo.close()


def test_a_server_that_is_down_is_still_unavailable(postgres_cluster: Any) -> None:
    """Skipping dead pooled connections never hides a server that is down: a 503."""
    repo = PostgresRepository(postgres_cluster.url, max_connections=POOL)
    try:
        repo.migrate()
        postgres_cluster.stop()
        with pytest.raises(Unavailable):
            repo.pending_outbox_events()
        postgres_cluster.start()
        assert repo.pending_outbox_events() == []
    finally:
        repo.close()
