"""The local runtime with each function in processes of its own (``LOCAL_WORKERS``, the
default of ``invoiceflow dev``): gunicorn masters with their workers, sized from the Service
manifests, behind the runtime's proxy and broker; restarted when they die, gone when the
runtime is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from invoiceflow import accounts
from invoiceflow.context import get_context
from invoiceflow.errors import ConfigError
from invoiceflow.events import INVOICE_NOTIFIED
from invoiceflow.settings import Settings
from invoiceflow_local.dev import LocalRuntime
from invoiceflow_local.package_data import KNATIVE_DIR
from invoiceflow_local.workers import (
    DEFAULT_THREADS,
    DEFAULT_TIMEOUT_SECONDS,
    HOP_BY_HOP,
    ServiceSize,
    _request_headers,
    load_service_sizes,
    worker_class,
    worker_count,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
EXAMPLE = ROOT / "events/examples/invoices/minimal.json"


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids += [int(k) for k in text]
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.fixture
def runtime(clean_env: None) -> Iterator[LocalRuntime]:
    running = LocalRuntime("127.0.0.1", 0, workers=2).start()
    try:
        yield running
    finally:
        running.stop()


def _token(runtime: LocalRuntime, email: str) -> dict[str, str]:
    accounts.add_user(get_context().repo, email, PASSWORD)
    r = requests.post(f"{runtime.url}/login", auth=(email, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _upload_and_wait(runtime: LocalRuntime, auth: dict[str, str], number: str) -> dict[str, Any]:
    doc = json.loads(EXAMPLE.read_text())
    doc["number"] = number
    r = requests.post(
        f"{runtime.url}/upload",
        files={"file": ("invoice.json", json.dumps(doc).encode(), "application/json")},
        headers=auth,
        timeout=60,
    )
    assert r.status_code == 202, r.text
    invoice_id = r.json()["invoice_id"]
    view: dict[str, Any] = {}

    def ready() -> bool:
        nonlocal view
        view = requests.get(f"{runtime.url}/invoices/{invoice_id}", headers=auth, timeout=30).json()
        return view.get("status") != "received"

    assert _wait(ready, 90), view
    return view


# -- sizes and settings --------------------------------------------------------------------------


def test_sizes_come_from_the_service_manifests() -> None:
    sizes = load_service_sizes(KNATIVE_DIR)
    # knative/40-services.yaml: login takes 4 at once for 30 s (argon2), upload 20 for 60 s
    assert sizes["login"] == ServiceSize(threads=4, timeout_seconds=30)
    assert sizes["upload"] == ServiceSize(threads=20, timeout_seconds=60)
    assert sizes["render-pdf"].timeout_seconds == 90
    # the renderers: one request at a time (CPU work under one interpreter lock)
    for renderer in ("render-pdf", "render-xlsx", "render-xml"):
        assert sizes[renderer].threads == 1, renderer
    assert worker_class(1) == "sync" and worker_class(4) == "gthread"
    assert set(sizes) >= {"login", "upload", "download", "render-pdf", "render-xlsx", "notify"}


def test_sizes_default_and_report_every_bad_value(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(
        """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: plain}
spec: {template: {spec: {containers: [{image: x}]}}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: unlimited}
spec: {template: {spec: {containerConcurrency: 0, timeoutSeconds: 12}}}
"""
    )
    sizes = load_service_sizes(tmp_path)
    assert sizes["plain"] == ServiceSize(DEFAULT_THREADS, DEFAULT_TIMEOUT_SECONDS)
    assert sizes["unlimited"] == ServiceSize(DEFAULT_THREADS, 12)
    (tmp_path / "bad.yaml").write_text(
        """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: bad}
spec: {template: {spec: {containerConcurrency: -1, timeoutSeconds: "soon"}}}
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_service_sizes(tmp_path)
    messages = [p.message for p in caught.value.problems]
    assert len(messages) == 2
    assert any("containerConcurrency" in m for m in messages)
    assert any("timeoutSeconds" in m for m in messages)


def test_local_workers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({}).local_workers == "auto"
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(Settings.from_env({"LOCAL_WORKERS": "3"}).local_workers) == 3
    assert worker_count(Settings.from_env({"LOCAL_WORKERS": "0"}).local_workers) == 0
    for bad in ("many", "-1", "65", "1.5"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({"LOCAL_WORKERS": bad})
        assert [p.pointer for p in caught.value.problems] == ["/LOCAL_WORKERS"]


def test_the_proxy_passes_the_client_on_and_drops_hop_by_hop_headers() -> None:
    headers = _request_headers(
        {
            "REMOTE_ADDR": "192.0.2.7",
            "HTTP_X_FORWARDED_FOR": "203.0.113.9",
            "HTTP_AUTHORIZATION": "Bearer t",
            "HTTP_CONNECTION": "keep-alive",
            "HTTP_KEEP_ALIVE": "timeout=5",
            "HTTP_TE": "trailers",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": "12",
        }
    )
    assert headers == {
        "X-Forwarded-For": "203.0.113.9, 192.0.2.7",  # the function trusts the last hop only
        "Authorization": "Bearer t",
        "Content-Type": "application/json",
        "Content-Length": "12",
    }
    assert not {h.lower() for h in headers} & HOP_BY_HOP


# -- the runtime with its function processes -----------------------------------------------------


def test_every_function_runs_in_its_own_processes(runtime: LocalRuntime) -> None:
    assert runtime.functions is not None and not runtime.apps
    masters = runtime.functions.pids()
    assert set(masters) == set(runtime.services)
    assert len(set(masters.values())) == len(masters)
    for service, pid in masters.items():
        assert pid is not None and pid != os.getpid()
        assert len(_children(pid)) == 2, service  # LOCAL_WORKERS workers under each master
    r = requests.get(runtime.url + "/readyz", timeout=10)
    assert r.status_code == 200 and r.json()["checks"]["functions"] == "ok"


def test_an_invoice_goes_through_the_function_processes(runtime: LocalRuntime) -> None:
    auth = _token(runtime, "ann@example.com")
    view = _upload_and_wait(runtime, auth, "PROC-1")
    assert view["status"] == "ready", view
    pdf = requests.get(f"{runtime.url}/invoices/{view['invoice_id']}/pdf", headers=auth, timeout=30)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["Content-Length"] == str(len(pdf.content))
    assert pdf.headers["Server"].startswith("Werkzeug")  # one Server header: the runtime's
    assert "gunicorn" not in pdf.headers["Server"]
    # errors pass through the proxy as the function answered them, and never a 5xx
    r = requests.get(f"{runtime.url}/invoices/not-an-id", headers=auth, timeout=30)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/problem")
    r = requests.post(f"{runtime.url}/upload", data=b"{", headers=auth, timeout=30)
    assert 400 <= r.status_code < 500


def test_a_function_that_dies_is_restarted_and_loses_no_request(runtime: LocalRuntime) -> None:
    assert runtime.functions is not None
    auth = _token(runtime, "bo@example.com")
    render = runtime.functions.functions["render-pdf"]
    old = render.process.pid if render.process else 0
    argv = Path(f"/proc/{old}/cmdline").read_bytes().split(b"\0")
    workers = _children(old)
    for pid in [old, *workers]:
        os.kill(pid, signal.SIGKILL)
    # an invoice uploaded meanwhile waits (in the socket's backlog, or the broker's retries)
    view = _upload_and_wait(runtime, auth, "PROC-2")
    assert view["status"] == "ready", view
    assert render.restarts >= 1
    assert render.process is not None and render.process.pid != old
    assert _wait(lambda: runtime.functions is not None and runtime.functions.healthy())
    # the same listener descriptor number on the new master's command line: the benchmark
    # (bench/pipeline.py) knows a restarted master by it
    new = Path(f"/proc/{render.process.pid}/cmdline").read_bytes().split(b"\0")
    module = argv.index(b"invoiceflow_local.workers")
    assert new[module : module + 2] == argv[module : module + 2], (argv, new)


def _start_dev() -> tuple[subprocess.Popen[str], str]:
    """``invoiceflow dev`` (one worker per function) in a process group of its own, as a
    terminal starts it; returns once it printed its banner."""
    env = dict(os.environ, LOCAL_WORKERS="1", PYTHONUNBUFFERED="1")
    dev = subprocess.Popen(
        [sys.executable, "-m", "invoiceflow.cli", "dev", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )
    assert dev.stdout is not None
    banner = ""
    while "running on" not in banner:
        line = dev.stdout.readline()
        if not line:
            dev.kill()
            raise AssertionError(f"invoiceflow dev stopped: {banner}")
        banner += line
    return dev, banner


def _family(dev: subprocess.Popen[str]) -> list[int]:
    masters = _children(dev.pid)
    assert len(masters) == 9
    family = masters + [w for m in masters for w in _children(m)]
    assert len(family) == 18
    return family


@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_the_function_processes_end_with_the_runtime(
    clean_env: None, tmp_path: Path, how: str
) -> None:
    """SIGKILL to ``invoiceflow dev``, or Ctrl-C in its terminal (SIGINT to its process
    group): no function process is left behind; Ctrl-C stops it cleanly (exit 0, no function
    restarted on the way)."""
    dev, _ = _start_dev()
    try:
        family = _family(dev)
        if how == "SIGKILL":
            dev.kill()
        else:
            os.killpg(dev.pid, signal.SIGINT)
        assert dev.wait(30) == (-signal.SIGKILL if how == "SIGKILL" else 0)
        assert _wait(lambda: not any(_alive(pid) for pid in family), 30), [
            pid for pid in family if _alive(pid)
        ]
        assert dev.stdout is not None
        rest = dev.stdout.read()
        assert "restarted" not in rest, rest
    finally:
        if dev.poll() is None:
            dev.kill()
        if dev.stdout is not None:
            dev.stdout.close()


def test_connections_to_the_runtime_are_kept_alive(runtime: LocalRuntime) -> None:
    """Both ports keep HTTP/1.1 connections open (werkzeug's dev server closes each one):
    a request body the application does not read is read away, not taken for the next
    request; ``Connection: close`` is honoured."""
    import http.client

    for base, path, body in (
        (runtime.url, "/login", b"x" * 70_000),  # proxied to login: 401, body unread
        (runtime.url, "/healthz", b"ignored"),  # answered by the runtime, body unread
        (runtime.internal_url, "/_broker", b"{}"),  # the broker ingress: 400, body read
    ):
        port = int(base.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            statuses, sockets = [], []
            for _ in range(3):
                conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                sockets.append(conn.sock)
                assert response.getheader("Connection") != "close", path
            assert sockets[0] is not None and all(s is sockets[0] for s in sockets), path
            assert len(set(statuses)) == 1 and statuses[0] < 500, (path, statuses)
            conn.request("GET", "/healthz", headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            assert response.getheader("Connection") == "close"
        finally:
            conn.close()


def _raw_exchange(port: int, request: bytes) -> tuple[bytes, bool]:
    """Send ``request`` as it is and read the answer; whether the server then closed the
    connection (not merely stopped sending until the timeout)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except TimeoutError:
            return answer, False
    return answer, True


def test_a_request_whose_body_cannot_be_read_is_a_400_problem(clean_env: None) -> None:
    """A malformed chunked body, both Content-Length and Transfer-Encoding (two framings:
    request smuggling) and a body shorter than its Content-Length made werkzeug's body reader
    raise inside the proxy: an HTML 500 from werkzeug and a traceback in the log. Each is
    the runtime's 400 problem, and the connection is closed after it."""
    runtime = LocalRuntime("127.0.0.1", 0, services=("login",), workers=1).start()
    try:
        assert runtime.server is not None
        port = runtime.server.server_port
        head = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        for name, request, half_close in (
            ("bad chunk", head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n", False),
            (
                "chunk without its line end",
                head + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhiX\r\n0\r\n\r\n",
                False,
            ),
            (
                "both lengths",
                head + b"Content-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                False,
            ),
            ("short body", head + b"Content-Length: 20\r\n\r\n{}", True),
        ):
            if half_close:  # the client ends its side after the short body, still reading
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    sock.sendall(request)
                    sock.shutdown(socket.SHUT_WR)
                    answer = b""
                    while data := sock.recv(65536):
                        answer += data
                closed = True
            else:
                answer, closed = _raw_exchange(port, request)
            head_part, _, body = answer.partition(b"\r\n\r\n")
            status_line = head_part.split(b"\r\n")[0]
            assert status_line.startswith(b"HTTP/1.1 400"), (name, answer[:300])
            assert b"content-type: application/problem+json" in head_part.lower(), name
            problem = json.loads(body)
            assert problem["status"] == 400 and problem["title"] == "Bad Request", name
            assert "body cannot be read" in problem["detail"], name
            assert closed, f"{name}: the connection stayed open"
        # a well-formed chunked body still reaches the function (login: 401 without a user)
        answer, _ = _raw_exchange(
            port, head + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 4") and not answer.startswith(b"HTTP/1.1 400"), answer
    finally:
        runtime.stop()


def test_a_chunked_body_is_read_whole_first_on_every_port(clean_env: None) -> None:
    """The broker's ingress (internal port) and a function hosted in the runtime's own
    process (``workers`` 0) read the body without the proxy: there a malformed chunk was
    werkzeug's or Flask's HTML 500. Every port reads a chunked body whole before any app sees
    it: the same 400 problem everywhere, and a well-formed chunked event is accepted."""
    runtime = LocalRuntime("127.0.0.1", 0, services=("login",), workers=0).start()
    try:
        assert runtime.server is not None and runtime.internal_server is not None
        public, internal = runtime.server.server_port, runtime.internal_server.server_port
        bad = b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n"
        for port, path in ((public, b"/login"), (internal, b"/_broker")):
            request = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + bad
            answer, closed = _raw_exchange(port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400"), (path, answer[:300])
            assert b"content-type: application/problem+json" in head.lower(), path
            assert "body cannot be read" in json.loads(body)["detail"], path
            assert closed, path
        event = json.dumps({"invoice_id": "inv-chunked"}).encode()
        chunked_event = (
            b"POST /_broker HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"ce-specversion: 1.0\r\nce-id: chunked-1\r\nce-source: /tests\r\n"
            b"ce-type: " + INVOICE_NOTIFIED.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + f"{len(event):x}\r\n".encode()
            + event
            + b"\r\n0\r\n\r\n"
        )
        answer, _ = _raw_exchange(internal, chunked_event)
        assert answer.startswith(b"HTTP/1.1 2"), answer[:300]
    finally:
        runtime.stop()


def test_renderers_take_one_request_at_a_time_per_worker(runtime: LocalRuntime) -> None:
    """A renderer's workers are gunicorn's sync workers (containerConcurrency 1): each closes
    its connection after the answer, so the next request goes to whichever worker is free;
    the other functions keep their connections alive (gthread)."""
    import http.client

    assert runtime.functions is not None
    ports = {f.service: f.port for f in runtime.functions}
    for service, kept_alive in (("render-pdf", False), ("render-xlsx", False), ("upload", True)):
        conn = http.client.HTTPConnection("127.0.0.1", ports[service], timeout=30)
        try:
            conn.request("GET", f"/_functions/{service}/healthz")
            response = conn.getresponse()
            response.read()
            assert response.status == 200, service
            closes = response.getheader("Connection", "").lower() == "close"
            assert closes is not kept_alive, service
        finally:
            conn.close()
