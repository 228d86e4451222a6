"""The local runtime's per-request access log: at DEBUG unless ACCESS_LOG=1 asks for it at
INFO (werkzeug's own behaviour)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from invoiceflow.errors import ConfigError
from invoiceflow.settings import Settings
from invoiceflow_local.dev import LocalRuntime, QuietRequestHandler, request_handler


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def access_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "werkzeug" and r.levelno == level and "GET /probe" in r.getMessage()
    ]


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Any] = []

    def start(access_log: bool) -> str:
        server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=request_handler(access_log)
        )
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("access_log", [False, True])
def test_access_lines_at_info_only_when_asked(
    serve: Any, caplog: pytest.LogCaptureFixture, access_log: bool
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    url = serve(access_log)
    assert requests.get(url + "/probe", timeout=5).text == "ok"
    assert len(access_lines(caplog, logging.INFO)) == (1 if access_log else 0)
    assert access_lines(caplog, logging.DEBUG) == []


def test_access_lines_at_debug_when_debug_is_on(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="werkzeug")
    url = serve(False)
    assert requests.get(url + "/probe", timeout=5).status_code == 200
    (line,) = access_lines(caplog, logging.DEBUG)
    assert '"GET /probe HTTP/1.1" 200' in line
    assert access_lines(caplog, logging.INFO) == []


def test_the_setting() -> None:
    assert Settings.from_env({}).access_log is False
    assert Settings.from_env({"ACCESS_LOG": "1"}).access_log is True
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"ACCESS_LOG": "yes"})
    assert [p.pointer for p in exc.value.problems] == ["/ACCESS_LOG"]


@pytest.mark.parametrize("value", ["0", "1"])
def test_the_runtime_servers_follow_the_setting(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ACCESS_LOG", value)
    with LocalRuntime("127.0.0.1", 0) as runtime:
        assert runtime.server is not None and runtime.internal_server is not None
        for server in (runtime.server, runtime.internal_server):
            handler = server.RequestHandlerClass
            assert isinstance(handler, type) and issubclass(handler, QuietRequestHandler)
            assert handler.access_log is (value == "1")


@pytest.mark.parametrize("access_log", [False, True])
def test_the_runtime_ports_answer_without_nagle(access_log: bool) -> None:
    """Every connection the runtime's servers accept has TCP_NODELAY: werkzeug sends a
    response's head and body separately, and with Nagle on a kept-alive connection the body
    waited for the client's delayed ACK (~40 ms per answer)."""
    import http.client
    import socket

    seen: list[int] = []

    class Probe(request_handler(access_log)):  # type: ignore[misc]
        def setup(self) -> None:
            super().setup()
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Probe)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        for _ in range(2):  # one kept-alive connection
            conn.request("GET", "/probe")
            assert conn.getresponse().read() == b"ok"
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(seen) == 1 and seen[0] != 0
