"""Helpers for the broker tests: real HTTP subscribers, manifests in tmp dirs, RabbitMQ
availability (fail under CI, skip elsewhere), and a view of what a broker did."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from invoiceflow_local.delivery import Attempt, Outcome
from support.services import RABBITMQ_URL, fail_or_skip

REPO = Path(__file__).resolve().parents[2]
EVENTUALLY = 15.0  # generous: "eventually", never a timing assertion

T = TypeVar("T")


def eventually(condition: Callable[[], T | None], timeout: float = EVENTUALLY) -> T:
    """The first truthy value of ``condition()``, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Subscriber:
    """A real HTTP server that records every request and answers from a script."""

    name: str
    #: statuses to answer, in order; then ``default``
    script: list[int] = field(default_factory=list)
    default: int = 200
    body: bytes = b""
    #: (headers, body) answered with a 2xx instead of an empty body: a reply event
    reply: tuple[dict[str, str], bytes] | None = None
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return server_url(self.server)

    def answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests.append(request)
            status = self.script.pop(0) if self.script else self.default
        if 200 <= status < 300 and self.reply is not None:
            return status, self.reply[0], self.reply[1]
        return status, {"Content-Type": "text/plain"}, self.body

    def wait_for(self, count: int, timeout: float = EVENTUALLY) -> list[Request]:
        eventually(lambda: len(self.requests) >= count, timeout)
        with self.lock:
            return list(self.requests)

    def start(self) -> Subscriber:
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                status, headers, body = subscriber.answer(request)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Services(dict[str, Subscriber]):
    """Knative Service name -> subscriber; ``resolve`` is the broker's resolver."""

    def resolve(self, name: str) -> str:
        return self[name].url


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # an AF_INET server's address is (host, port)
    return f"http://{host}:{port}"


def closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = server_url(server)
    server.server_close()
    return url


TRIGGER = """\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: {name}
  namespace: invoiceflow
spec:
  broker: invoiceflow
  filter:
    attributes:
      type: {type}
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: {service}
  delivery:
    retry: {retry}
    backoffPolicy: {policy}
    backoffDelay: {delay}
    timeout: PT2S
{dls}"""

DLS = """\
    deadLetterSink:
      ref:
        apiVersion: serving.knative.dev/v1
        kind: Service
        name: dead-letter
"""


def trigger_yaml(
    name: str,
    type: str,
    service: str,
    *,
    retry: int = 2,
    policy: str = "exponential",
    delay: str = "PT0.05S",
    dead_letter: bool = True,
) -> str:
    return TRIGGER.format(
        name=name,
        type=type,
        service=service,
        retry=retry,
        policy=policy,
        delay=delay,
        dls=DLS if dead_letter else "",
    )


def write_manifests(directory: Path, *documents: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "50-triggers.yaml").write_text("---\n".join(documents), encoding="utf-8")
    return directory


def rabbitmq_available() -> bool:
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    except Exception:  # noqa: BLE001 - any failure means "not there"
        return False
    connection.close()
    return True


def require_rabbitmq() -> None:
    """Fail (CI) or skip (a laptop without RabbitMQ)."""
    if not rabbitmq_available():
        fail_or_skip(f"RabbitMQ is not reachable at {RABBITMQ_URL}")


@dataclass
class Running:
    """A started broker behind a real HTTP ingress, with what it did."""

    broker: Any
    ingress_url: str
    records: list[Attempt | Outcome]

    def attempts(self, trigger: str, phase: str = "subscriber") -> list[Attempt]:
        return [
            r
            for r in list(self.records)
            if isinstance(r, Attempt) and r.trigger == trigger and r.phase == phase
        ]

    def outcomes(self, trigger: str) -> list[Outcome]:
        return [r for r in list(self.records) if isinstance(r, Outcome) and r.trigger == trigger]

    def outcome(self, trigger: str) -> Outcome:
        def first() -> Outcome | None:
            found = self.outcomes(trigger)
            return found[0] if found else None

        return eventually(first)
