"""Connections are reused: events.send and the Dispatcher's deliveries POST through pooled
sessions (one kept-alive connection per destination and thread in use, not a TCP connect per
request), ignore proxy settings where no proxy can apply, and close them on shutdown."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from invoiceflow import events
from invoiceflow_local.delivery import DELIVERED, Dispatcher, Outcome
from invoiceflow_local.triggers import load_triggers
from support.brokerkit import trigger_yaml, write_manifests

TYPE = "com.example.pooled"


@dataclass
class Server:
    """A keep-alive (HTTP/1.1) server that records the client port of every request. (The
    local runtime's werkzeug servers close every connection: reuse needs a server that keeps
    them, as gunicorn and Knative's queue-proxy do in the cluster.)"""

    ports: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Server:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder.lock:
                    recorder.ports.append(self.client_address[1])
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def connections(self) -> int:
        with self.lock:
            return len(set(self.ports))


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server().start()
    yield found
    found.stop()


@pytest.fixture
def pool() -> Iterator[events.Sessions]:
    made = events.Sessions()
    yield made
    made.close()


def event(n: int = 0) -> events.Event:
    return events.make_event(TYPE, "/test", {"n": n})


def post(pool: events.Sessions, url: str) -> int:
    headers, body = events.to_http(event())
    return pool.post(url, data=body, headers=headers, timeout=5).status_code


def test_successive_posts_reuse_one_connection(server: Server, pool: events.Sessions) -> None:
    for _ in range(10):
        assert post(pool, server.url + "/a") == 202
    assert len(server.ports) == 10
    assert server.connections() == 1


def test_each_destination_has_its_own_sessions(pool: events.Sessions) -> None:
    one, two = Server().start(), Server().start()
    try:
        for _ in range(3):
            assert post(pool, one.url) == 202
            assert post(pool, two.url) == 202
        assert (one.connections(), two.connections()) == (1, 1)
    finally:
        one.stop()
        two.stop()


def test_concurrent_posts_use_a_session_each(server: Server, pool: events.Sessions) -> None:
    barrier = threading.Barrier(6)
    results: list[int] = []

    def work() -> None:
        barrier.wait()
        for _ in range(5):
            results.append(post(pool, server.url))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [202] * 30
    assert 1 <= server.connections() <= 6  # never more connections than threads at once


def test_close_closes_the_connections_and_the_pool_stays_usable(
    server: Server, pool: events.Sessions
) -> None:
    assert post(pool, server.url) == 202
    pool.close()
    assert post(pool, server.url) == 202
    assert server.connections() == 2


def test_send_reuses_its_connection(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "observers", [])  # a test type, not in the catalogue
    try:
        for n in range(5):
            events.send(event(n), server.url + "/_broker")
        assert server.connections() == 1
    finally:
        events.close_sessions()


@pytest.mark.parametrize(
    ("url", "applies"),
    [
        ("http://127.0.0.1:8080/_broker", False),
        ("http://127.0.0.2/x", False),
        ("http://[::1]:80/", False),
        ("http://localhost:9/", False),
        ("http://broker-ingress.knative-eventing.svc.cluster.local/invoiceflow/default", False),
        ("http://notify.invoiceflow.svc/", False),
        ("https://api.sendgrid.com/v3/mail/send", True),
        ("http://10.0.0.7/", True),
        ("http://broker.example.com/", True),
    ],
)
def test_proxies_apply_only_off_this_machine_and_cluster(url: str, applies: bool) -> None:
    assert events.proxies_apply(url) is applies


def test_a_proxy_in_the_environment_is_not_used_for_loopback(
    server: Server, pool: events.Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh ``requests.post`` would send through HTTP_PROXY (a closed port here)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    import requests

    with pytest.raises(requests.exceptions.ProxyError):
        requests.post(server.url, data=b"x", timeout=5)
    assert post(pool, server.url) == 202


def test_dispatcher_deliveries_reuse_connections(server: Server, tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path, trigger_yaml("pooled", TYPE, "sub", dead_letter=False))
    (trigger,) = load_triggers(manifests)
    dispatcher = Dispatcher(lambda service: server.url + f"/{service}", workers=2)
    outcomes: list[Outcome] = []
    dispatcher.start()
    try:
        for n in range(20):
            dispatcher.submit(event(n), trigger, outcomes.append)
        assert dispatcher.wait_idle(20)
    finally:
        dispatcher.stop()
    assert [o.result for o in outcomes] == [DELIVERED] * 20
    assert len(server.ports) == 20
    assert server.connections() <= 2  # one per worker at most, not one per delivery
