"""Connections are reused: events.send and the Dispatcher's deliveries POST through pooled
sessions (one kept-alive connection per destination and thread in use, not a TCP connect per
request), ignore proxy settings where no proxy can apply, and close them on shutdown."""

from __future__ import annotations

import threading
import time
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


# ------------------------------------------------------ the plain session (http.client)


def test_loopback_and_cluster_local_http_get_a_plain_session_others_requests(
    pool: events.Sessions,
) -> None:
    assert isinstance(pool._open_session("http://127.0.0.1:9/_broker"), events.PlainSession)
    assert isinstance(pool._open_session("http://notify.invoiceflow.svc/"), events.PlainSession)
    tls = pool._open_session("https://127.0.0.1:9/")
    assert isinstance(tls, events.RequestsSession) and not tls.session.trust_env
    remote = pool._open_session("http://broker.example.com/")
    assert isinstance(remote, events.RequestsSession) and remote.session.trust_env


def wsgi_server(app: object) -> tuple[object, str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_plain_session_answers_what_requests_answers(pool: events.Sessions) -> None:
    """Status, reason, headers (case-insensitive, a repeated one joined), content, text, and
    the request's path, query, headers and body as sent; werkzeug closes every connection,
    so each POST opens a new one."""
    seen: list[tuple[str, str, str, bytes]] = []

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        stream = environ["wsgi.input"]
        body = stream.read(int(str(environ.get("CONTENT_LENGTH") or 0)))  # type: ignore[attr-defined]
        seen.append(
            (
                str(environ["PATH_INFO"]),
                str(environ["QUERY_STRING"]),
                str(environ["HTTP_CE_ID"]),
                body,
            )
        )
        answer = '{"title": "é"}'.encode()
        start_response(  # type: ignore[operator]
            "409 Conflict",
            [
                ("Content-Type", "application/problem+json; charset=utf-8"),
                ("X-Twice", "a"),
                ("X-Twice", "b"),
                ("Content-Length", str(len(answer))),
            ],
        )
        return [answer]

    server, url = wsgi_server(app)
    try:
        for n in range(3):
            r = pool.post(
                f"{url}/_functions/notify?x=1",
                data=b"{}",
                headers={"ce-id": f"id-{n}", "content-type": "application/json"},
                timeout=5,
            )
            assert (r.status_code, r.reason) == (409, "Conflict")
            assert r.headers["content-type"] == "application/problem+json; charset=utf-8"
            assert r.headers["x-twice"] == "a, b"
            assert r.content == '{"title": "é"}'.encode() and r.text == '{"title": "é"}'
            assert r.url == f"{url}/_functions/notify?x=1"
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
    assert seen == [("/_functions/notify", "x=1", f"id-{n}", b"{}") for n in range(3)]


def test_plain_session_raises_send_errors(pool: events.Sessions) -> None:
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    with pytest.raises(events.ConnectError):
        pool.post(f"http://127.0.0.1:{port}/", data=b"x", timeout=5)

    silent = socket.socket()  # accepts (the backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        with pytest.raises(events.ReadTimeout):
            pool.post(f"http://127.0.0.1:{silent.getsockname()[1]}/", data=b"x", timeout=0.3)
    finally:
        silent.close()


def test_plain_session_reopens_a_connection_the_server_closed_while_idle(
    pool: events.Sessions,
) -> None:
    """A server that keeps the connection open after its answer (HTTP/1.1) and closes it
    while it is idle, as a keep-alive timeout does: the next POST opens a new one instead of
    failing on the dead one."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    connections: list[int] = []

    def serve() -> None:
        for _ in range(2):
            conn, (_, port) = listener.accept()
            connections.append(port)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            conn.close()  # idle now: closed without a Connection: close

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        assert post(pool, url) == 202
        time.sleep(0.2)  # the server's FIN arrives
        assert post(pool, url) == 202
        thread.join(5)
    finally:
        listener.close()
    assert len(set(connections)) == 2


def test_a_requests_session_answers_and_fails_as_a_plain_one() -> None:
    """Where a proxy may apply, the pool's session is a ``requests`` one behind the same
    interface: an :class:`events.Answer`, and ``events.SendError`` subclasses instead of
    ``requests``' exceptions."""
    import socket

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response(  # type: ignore[operator]
            "202 Accepted", [("Content-Type", "text/plain; charset=latin-1"), ("X-A", "1")]
        )
        return ["é".encode("latin-1")]

    server, url = wsgi_server(app)
    session = events.RequestsSession(url)
    try:
        r = session.post(f"{url}/x", data=b"{}", timeout=5)
        assert isinstance(r, events.Answer)
        assert (r.status_code, r.reason, r.ok) == (202, "Accepted", True)
        assert r.headers["x-a"] == r.headers["X-A"] == "1" and r.text == "é"
    finally:
        session.close()
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    session = events.RequestsSession(f"http://127.0.0.1:{port}")
    with pytest.raises(events.ConnectError) as refused:
        session.post(f"http://127.0.0.1:{port}/", data=b"x", timeout=5)
    assert refused.value.__cause__ is not None
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        with pytest.raises(events.ReadTimeout):
            session.post(f"http://127.0.0.1:{silent.getsockname()[1]}/", data=b"x", timeout=0.3)
    finally:
        silent.close()
        session.close()


@pytest.mark.parametrize(
    ("content_type", "content", "text"),
    [
        ("application/json", '{"a": "é"}'.encode(), '{"a": "é"}'),  # no charset: UTF-8
        ("text/plain; charset=ISO-8859-1", "é".encode("latin-1"), "é"),
        ('text/plain; charset="utf-8"', "é".encode(), "é"),
        ("text/plain; charset=no-such-charset", "é".encode(), "é"),
        ("", b"\xff", "\ufffd"),  # undecodable: replaced, never an exception
    ],
)
def test_answer_text(content_type: str, content: bytes, text: str) -> None:
    headers = events.Headers([("Content-Type", content_type)] if content_type else [])
    answer = events.Answer(200, "OK", "http://x/", headers, content)
    assert answer.text == text


def test_headers_are_case_insensitive_and_join_repeats() -> None:
    headers = events.Headers([("Content-Type", "a"), ("X-Twice", "1"), ("x-twice", "2")])
    assert headers["CONTENT-TYPE"] == headers["content-type"] == "a"
    assert headers["X-Twice"] == "1, 2" and "x-TWICE" in headers and "x-once" not in headers
    assert dict(headers) == {"content-type": "a", "x-twice": "1, 2"}
    assert headers.get("missing") is None and len(headers) == 2
