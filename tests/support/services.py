"""The real servers the suite uses, and the one rule for tests that need something this
machine may lack (a server, a tool, an input beside the repository): fail under CI, skip
otherwise.

PostgreSQL: 127.0.0.1:5432, database ``test``, user ``postgres`` or ``root`` (trust auth), or
``INVOICEFLOW_TEST_POSTGRES_URL``. RabbitMQ: 127.0.0.1:5672 guest/guest, or
``INVOICEFLOW_TEST_RABBITMQ_URL``. Tests that use them carry the ``postgres`` / ``rabbitmq``
markers (tests/conftest.py adds them), so ``-m 'not postgres and not rabbitmq'`` runs without
servers.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

POSTGRES_URLS = tuple(filter(None, (os.environ.get("INVOICEFLOW_TEST_POSTGRES_URL"),))) or (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
RABBITMQ_URL = os.environ.get(
    "INVOICEFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fail_or_skip(reason: str) -> NoReturn:
    """Fail (CI is set: CI has everything) or skip (a developer's machine without it)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)
