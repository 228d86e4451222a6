"""A RabbitMQ node of the test's own, on its own ports, that a test may stop and restart
(never the machine's shared server on 5672).

Usage (the ``rabbit_node`` fixture in tests/conftest.py does this)::

    node = RabbitNode.create(tmp_path)   # not started
    node.start()                         # blocks until it accepts AMQP connections
    node.url                             # amqp://guest:guest@127.0.0.1:PORT/%2F
    node.stop(); node.start()            # a real restart: durable queues and messages stay
    node.kill()                          # SIGKILL the Erlang VM (a crash)
    node.close()                         # stop for good

It runs ``/usr/lib/rabbitmq/bin/rabbitmq-server`` as the current user with its own node name,
AMQP and distribution ports, Mnesia and log directories, Erlang cookie (``HOME``), config file
and no plugins. When RabbitMQ is not installed, :func:`require_rabbitmq_server` fails under CI
and skips elsewhere.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from support.services import fail_or_skip, free_port

RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN_DIR", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 90.0


def require_rabbitmq_server() -> None:
    if not (RABBITMQ_BIN / "rabbitmq-server").exists() or shutil.which("erl") is None:
        fail_or_skip(f"RabbitMQ is not installed ({RABBITMQ_BIN}/rabbitmq-server, erl)")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class RabbitNode:
    base: Path
    port: int
    dist_port: int
    name: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, base: Path) -> RabbitNode:
        base.mkdir(parents=True, exist_ok=True)
        node = cls(
            base=base,
            port=free_port(),
            dist_port=free_port(),
            name=f"rabbit-test-{uuid.uuid4().hex[:8]}@localhost",
        )
        home = base / "home"
        home.mkdir(exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16), encoding="ascii")
        cookie.chmod(0o400)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{node.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = warning\n",
            encoding="utf-8",
        )
        (base / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        return node

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(self.base / "home"),
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"),
                "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.base / "rabbit.pid"),
                "RABBITMQ_SERVER_ERL_ARGS": "+S 1:1 +A 4",
            }
        )
        env.pop("RABBITMQ_CONF_ENV_FILE", None)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> RabbitNode:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the node is running")
        self.starts += 1
        log = self.base / f"server-{self.starts}.out"
        self._log.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"rabbitmq-server did not start in {timeout}s")
            time.sleep(0.2)
        return self

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        """A clean stop (``rabbitmqctl stop``), waiting until the process has exited."""
        if self.process is None or self.process.poll() is not None:
            return
        self.ctl("stop")
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the node's process group (the Erlang VM and its helpers)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.kill()
