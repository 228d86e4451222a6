"""A PostgreSQL cluster of the test's own, on its own port, that a test may restart (never
the machine's shared server on 5432).

Usage (the ``postgres_cluster`` fixture in tests/conftest.py does this)::

    cluster = PostgresCluster.create()   # pg_createcluster VERSION NAME -p PORT, started
    cluster.url                          # postgresql://postgres@127.0.0.1:PORT/postgres
    cluster.restart()                    # pg_ctlcluster ... restart -m fast: connections die
    cluster.drop()                       # stop and remove it

It uses Debian's postgresql-common tools (``pg_createcluster``, ``pg_ctlcluster``,
``pg_dropcluster``) with trust authentication on 127.0.0.1, for the installed server version.
When they are missing, :func:`require_postgres_tools` fails under CI and skips elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from support.services import fail_or_skip, free_port

CONFIG_ROOT = Path("/etc/postgresql")


def require_postgres_tools() -> None:
    if shutil.which("pg_createcluster") is None or not CONFIG_ROOT.is_dir():
        fail_or_skip("Debian's postgresql-common tools (pg_createcluster) are not installed")


@dataclass
class PostgresCluster:
    version: str
    name: str
    port: int

    @classmethod
    def create(cls) -> PostgresCluster:
        version = sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir())[-1]
        cluster = cls(version, f"test-{uuid.uuid4().hex[:8]}", free_port())
        subprocess.run(
            [
                "pg_createcluster",
                version,
                cluster.name,
                "-p",
                str(cluster.port),
                "--",
                "--auth=trust",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        return cluster

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", self.version, self.name, *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._ctl("start")
        self.wait_ready()

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """A real restart: every open connection is cut, the data stays."""
        self._ctl("restart", "-m", "fast")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.url, connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", self.version, self.name, "--stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )
