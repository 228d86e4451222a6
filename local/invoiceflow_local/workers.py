"""The local runtime's function processes: each function (Knative Service) in processes of
its own, as the cluster runs each Service in its own pods.

A function runs as the container image runs it (functions-framework's server, gunicorn): one
gunicorn master per function, started by the runtime as a child process, which imports the
function once and forks ``workers`` worker processes (``LOCAL_WORKERS``: one per core by
default) of ``threads`` threads each (the Service's ``containerConcurrency`` in
``knative/40-services.yaml``; its ``timeoutSeconds`` is the request timeout); a Service of
``containerConcurrency: 1`` (the renderers) gets gunicorn's ``sync`` workers, as the image
does. The runtime binds each function's listening socket itself (127.0.0.1, a free port) and
hands it to the master, so the address stays the same when the runtime restarts a master
that died, and requests that arrive meanwhile wait in the socket's backlog instead of failing.

A master is ``python -m invoiceflow_local.workers LISTENER_FD STARTED_FD``: the settings the
runtime decided (``K_SINK``, a generated ``JWT_SECRET``...) reach it pickled on its standard
input, never through the environment or the command line; each worker writes a byte to the
``STARTED_FD`` pipe once it can serve. A master dies with the runtime (``PR_SET_PDEATHSIG`` on
Linux), and gunicorn's workers stop when their master is gone.

Requests reach the workers over HTTP with kept-alive connections (``sync`` workers close
each after its request): the broker's deliveries
through its pooled sessions, the public routes through :class:`Proxy` (a connection pool per
function), which adds the client's address to ``X-Forwarded-For``; the worker takes it as
the request's remote address (werkzeug's ``ProxyFix``, one hop), so login's per-client limits
see the real client, as behind the cluster's ingress.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

import yaml

from invoiceflow.errors import ConfigError, Problem
from invoiceflow.records import record
from invoiceflow.settings import Settings
from invoiceflow_local.broker import headers_from_environ
from invoiceflow_local.package_data import FUNCTIONS_DIR
from invoiceflow_local.triggers import manifest_files

log = logging.getLogger(__name__)

#: threads per worker when the Service sets no ``containerConcurrency`` (0: no limit)
DEFAULT_THREADS = 8
#: request timeout when the Service sets no ``timeoutSeconds`` (Knative's default)
DEFAULT_TIMEOUT_SECONDS = 300
#: seconds gunicorn keeps an idle kept-alive connection (longer than the pools keep theirs idle)
KEEPALIVE_SECONDS = 75
#: seconds a stopping master lets its workers finish their requests
GRACEFUL_SECONDS = 5
#: seconds :meth:`FunctionProcesses.start` waits for every function's first worker
START_TIMEOUT = 120.0
#: the longest wait before restarting a master that keeps dying
RESTART_BACKOFF_MAX = 30.0
#: the socket's backlog: requests wait there while a master restarts
BACKLOG = 1024
#: hop-by-hop headers (RFC 9110, 7.6.1), never forwarded by the proxy
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: response headers the runtime's own server writes (forwarding them would double them)
SERVER_HEADERS = frozenset({"server", "date"})


def function_source(service: str) -> Path:
    """The entry file of ``service`` (``functions/<step>.py``, bundled with this package)."""
    return FUNCTIONS_DIR / f"{service.replace('-', '_')}.py"


def create_function_app(service: str) -> Any:
    """The functions-framework app of ``service``. ``create_app`` writes the function's name
    and type into ``os.environ`` (FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE): put back as they
    were, as the in-process runtime hosts every function in one process."""
    from functions_framework import create_app

    saved = dict(os.environ)
    try:
        return create_app(service.replace("-", "_"), str(function_source(service)))
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update({k: v for k, v in saved.items() if os.environ.get(k) != v})


def service_path(service: str) -> str:
    """The path prefix under which the runtime reaches ``service`` (its in-process apps are
    mounted there on the internal port too): the broker's subscriber URLs end with the
    function's name, as the dead-letter step's reasons expect."""
    return f"/_functions/{service}"


class MountedAt:
    """A WSGI app that also answers under ``prefix`` (moved from PATH_INFO to SCRIPT_NAME)."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO") or "/"
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        return self.app(environ, start_response)


def worker_count(setting: str) -> int:
    """Worker processes per function for a ``LOCAL_WORKERS`` value (already validated by the
    settings): ``auto`` is the cores this process may run on."""
    if setting == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    return int(setting)


# -- the Services' sizes, from the manifests ---------------------------------------------------


@record
class ServiceSize:
    """What a Knative Service's manifest says about one pod's capacity."""

    threads: int  # containerConcurrency (DEFAULT_THREADS when 0 or absent)
    timeout_seconds: int  # timeoutSeconds (DEFAULT_TIMEOUT_SECONDS when absent)


def load_service_sizes(path: Path) -> dict[str, ServiceSize]:
    """``containerConcurrency`` and ``timeoutSeconds`` of every Knative Service in the manifests
    at ``path``; raises ConfigError listing every value that is not a whole number >= 0."""
    problems: list[Problem] = []
    sizes: dict[str, ServiceSize] = {}
    for file in manifest_files(path):
        try:
            documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError):
            continue  # load_triggers reports unreadable manifests
        for index, doc in enumerate(documents):
            if not isinstance(doc, dict) or doc.get("kind") != "Service":
                continue
            if not str(doc.get("apiVersion", "")).startswith("serving.knative.dev/"):
                continue
            name = (doc.get("metadata") or {}).get("name")
            spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
            values = {}
            for key, default in (
                ("containerConcurrency", 0),
                ("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
            ):
                value = spec.get(key, default)
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    problems.append(
                        Problem(f"{file}#{index}", f"{key} must be a whole number >= 0")
                    )
                    value = default
                values[key] = value
            if isinstance(name, str):
                sizes[name] = ServiceSize(
                    threads=values["containerConcurrency"] or DEFAULT_THREADS,
                    timeout_seconds=values["timeoutSeconds"] or DEFAULT_TIMEOUT_SECONDS,
                )
    if problems:
        raise ConfigError(problems)
    return sizes


# -- one function's processes --------------------------------------------------------------------


@record
class FunctionSpec:
    """Everything a function's master needs (pickled to it when it starts)."""

    service: str
    settings: Settings
    workers: int
    size: ServiceSize


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGTERM when the runtime that started it dies
    (even of SIGKILL). Elsewhere the master outlives a killed runtime until stopped."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def worker_class(threads: int) -> str:
    """gunicorn's worker class for ``threads`` threads, as gunicorn (and so the image's
    functions-framework server) picks it: ``sync`` for one thread (one request at a time, the
    connection closed after it, so a free worker takes the next one: the renderers), else
    ``gthread`` (kept-alive connections, ``threads`` requests at once)."""
    return "sync" if threads == 1 else "gthread"


def serve_function(spec: FunctionSpec, listener_fd: int, started_fd: int) -> None:
    """A function's master: import the function once, then let gunicorn fork
    ``spec.workers`` workers that accept on the socket ``listener_fd``. Each worker writes a
    byte to ``started_fd`` once ready to serve."""
    _die_with_parent()
    import gunicorn.app.base
    from werkzeug.middleware.proxy_fix import ProxyFix

    from invoiceflow.context import use_settings

    use_settings(spec.settings)  # lazy: no connection is opened before the workers fork
    function = ProxyFix(create_function_app(spec.service), x_for=1, x_proto=0, x_host=0)
    app = MountedAt(function, service_path(spec.service))
    debug = spec.settings.log_level == "DEBUG"

    os.set_blocking(started_fd, False)  # a worker never waits for the runtime to read

    def post_worker_init(worker: Any) -> None:
        with contextlib.suppress(OSError):  # the runtime stopped listening: nothing to tell
            os.write(started_fd, b".")

    options = {
        "bind": [f"fd://{listener_fd}"],  # gunicorn takes the descriptor over
        "workers": spec.workers,
        "worker_class": worker_class(spec.size.threads),
        "threads": spec.size.threads,
        "timeout": spec.size.timeout_seconds,
        "graceful_timeout": GRACEFUL_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        "backlog": BACKLOG,
        "preload_app": True,
        "proc_name": f"invoiceflow-{spec.service}",
        # gunicorn's own INFO lines (booting, listening) would repeat per worker and function
        "loglevel": "debug" if debug else "warning",
        "accesslog": "-" if spec.settings.access_log else None,
        "post_worker_init": post_worker_init,
        # gunicorn's control socket is one path per user (~/.gunicorn/gunicorn.ctl): the
        # second master on the machine failed to bind it (an ERROR line at each start), and
        # the runtime manages its masters itself
        "control_socket_disable": True,
    }

    class Master(gunicorn.app.base.BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Master().run()


def main(argv: list[str] | None = None) -> None:
    """``python -m invoiceflow_local.workers LISTENER_FD STARTED_FD``, the
    :class:`FunctionSpec` pickled on standard input (what :class:`FunctionProcess` runs)."""
    args = sys.argv[1:] if argv is None else argv
    listener_fd, started_fd = int(args[0]), int(args[1])
    # S301: the pickle comes from the runtime that started this process, over its private pipe
    spec = pickle.load(sys.stdin.buffer)  # noqa: S301
    if not isinstance(spec, FunctionSpec):
        raise SystemExit("expected a FunctionSpec on standard input")
    sys.stdin.close()
    serve_function(spec, listener_fd, started_fd)


class FunctionProcess:
    """One function: its listening socket (bound by the runtime, kept across restarts) and
    its gunicorn master (a child process: ``python -m invoiceflow_local.workers``)."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
        self.port: int = self.listener.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._next_start = 0.0
        self._started_r: int | None = None
        self._workers_ready = 0

    @property
    def service(self) -> str:
        return self.spec.service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._close_started()
        self._workers_ready = 0
        started_r, started_w = os.pipe()
        self._started_r = started_r
        os.set_blocking(started_r, False)
        listener_fd = self.listener.fileno()
        env = dict(os.environ)
        # the modules this process imports, wherever they come from (a checkout, a wheel)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "invoiceflow_local.workers",
                    str(listener_fd),
                    str(started_w),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(listener_fd, started_w),
                env=env,
                # not in the terminal's process group: Ctrl-C reaches the runtime only, which
                # stops the functions after the broker's deliveries have finished
                start_new_session=True,
            )
        finally:
            os.close(started_w)
        assert self.process.stdin is not None
        try:  # the settings (secrets included) go over the pipe, not the environment
            self.process.stdin.write(pickle.dumps(self.spec))
            self.process.stdin.close()
        except OSError:  # it died at once: the watcher sees it
            pass

    def has_started(self) -> bool:
        """True once every one of its workers said it is ready (since the last start)."""
        if self._started_r is not None:
            try:
                self._workers_ready += len(os.read(self._started_r, 64))
            except BlockingIOError:
                pass
        return self._workers_ready >= self.spec.workers

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart_if_dead(self, now: float) -> None:
        """Start the master again if it died (after a wait that doubles while it keeps
        dying, at most :data:`RESTART_BACKOFF_MAX`)."""
        if self.process is None or self.alive() or now < self._next_start:
            return
        self.restarts += 1
        wait = min(RESTART_BACKOFF_MAX, 0.5 * 2 ** min(self.restarts, 10))
        log.warning(
            "function %s stopped (exit code %s): restarted (restart %d); requests wait in its "
            "socket meanwhile",
            self.service,
            self.process.returncode,
            self.restarts,
        )
        self.start()
        self._next_start = now + wait

    def terminate(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()

    def stop(self) -> None:
        """SIGTERM to the master (its workers finish their requests for up to
        :data:`GRACEFUL_SECONDS`), then SIGKILL if it is still there."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(GRACEFUL_SECONDS * 2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._close_started()
        self.listener.close()

    def _close_started(self) -> None:
        if self._started_r is not None:
            os.close(self._started_r)
            self._started_r = None


class FunctionProcesses:
    """Every function's processes, and a thread that restarts a master that dies."""

    def __init__(
        self,
        services: Iterable[str],
        settings: Settings,
        workers: int,
        sizes: Mapping[str, ServiceSize],
    ) -> None:
        default = ServiceSize(DEFAULT_THREADS, DEFAULT_TIMEOUT_SECONDS)
        self.functions = {
            service: FunctionProcess(
                FunctionSpec(service, settings, workers, sizes.get(service, default))
            )
            for service in services
        }
        self.proxy = Proxy(self.functions.values())
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def __iter__(self) -> Iterator[FunctionProcess]:
        return iter(self.functions.values())

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every master; return once each function's workers are all ready (raise
        RuntimeError naming the functions still waiting after ``timeout`` seconds)."""
        for function in self:
            function.start()
        deadline = time.monotonic() + timeout
        waiting = list(self)
        while waiting and time.monotonic() < deadline:
            time.sleep(0.05)
            waiting = [f for f in waiting if not f.has_started()]
            dead = [f for f in waiting if not f.alive()]
            if dead:
                raise RuntimeError(
                    "functions that could not start (their log says why): "
                    + ", ".join(
                        f"{f.service} (exit code {f.process and f.process.returncode})"
                        for f in dead
                    )
                )
        if waiting:
            raise RuntimeError(
                "functions without a worker after "
                f"{timeout:.0f} s: {', '.join(f.service for f in waiting)}"
            )
        self._watcher = threading.Thread(
            target=self._watch, name="invoiceflow-function-watcher", daemon=True
        )
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for function in self:
                try:
                    function.restart_if_dead(time.monotonic())
                except Exception:  # keep watching the others
                    log.exception("could not restart function %s", function.service)

    def healthy(self) -> bool:
        """True when every function's master is running."""
        return all(function.alive() for function in self)

    def pids(self) -> dict[str, int | None]:
        """Each function's master (its workers are the master's children)."""
        return {f.service: f.process.pid if f.process else None for f in self}

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for function in self:
            function.terminate()  # every master at once: they stop in parallel
        for function in self:
            function.stop()
        self.proxy.close()


# -- the proxy of the public routes ----------------------------------------------------------


class Proxy:
    """Forwards a WSGI request to a function's workers over kept-alive connections (a
    urllib3 pool per function), streaming the answer back. The client's address is appended
    to ``X-Forwarded-For``; hop-by-hop headers are dropped both ways. A function that does not
    answer within its timeout is a 504, an unreachable one a 502, with a problem body that
    names neither the address nor the error. A request whose body cannot be read (a malformed
    chunked body, both ``Content-Length`` and ``Transfer-Encoding``, fewer bytes than its
    ``Content-Length``) is a 400, and its connection is closed."""

    def __init__(self, functions: Iterable[FunctionProcess]) -> None:
        import urllib3

        self._urllib3 = urllib3
        # a function's port stays the same across restarts of its master
        self._pools = {
            f.service: urllib3.HTTPConnectionPool(
                "127.0.0.1", f.port, maxsize=64, block=False, retries=False
            )
            for f in functions
        }
        self._timeouts = {f.service: f.spec.size.timeout_seconds for f in functions}

    def forward(
        self, service: str, environ: dict[str, Any], start_response: Any
    ) -> Iterable[bytes]:
        headers = _request_headers(environ)
        target = _quote_path(environ.get("PATH_INFO") or "/")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        timeout = self._timeouts[service]
        body = _client_body(environ)  # a chunked one was read whole (read_chunked_body)
        try:
            response = self._pools[service].urlopen(
                environ.get("REQUEST_METHOD", "GET"),
                target,
                body=cast("IO[bytes] | None", body),  # a _ClientBody: read() only
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=self._urllib3.Timeout(connect=5.0, read=timeout),
                chunked=False,
            )
        except Exception as exc:
            # reading the client's body failed inside urllib3's send, whether urllib3 wrapped
            # the error (an OSError) or not (werkzeug's ClientDisconnected): the client's fault
            if isinstance(body, _ClientBody) and body.failed:
                return _unreadable_body(environ, start_response, exc)
            if not isinstance(exc, self._urllib3.exceptions.HTTPError):
                raise
            gateway_timeout = isinstance(exc, self._urllib3.exceptions.TimeoutError)
            log.warning("function %s did not answer: %s", service, exc.__class__.__name__)
            status = "504 Gateway Timeout" if gateway_timeout else "502 Bad Gateway"
            return _problem(start_response, status, "the function did not answer")
        start_response(
            f"{response.status} {response.reason or ''}".rstrip(),
            [
                (name, value)
                for name, value in response.headers.items()
                if name.lower() not in HOP_BY_HOP and name.lower() not in SERVER_HEADERS
            ],
        )
        return _stream(response)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


class _MalformedRequest(Exception):
    """The request's framing is ambiguous: refused before anything is sent on."""


class _ClientBody:
    """A request body the proxy streams to a function as it reads it from the client; it
    remembers whether reading failed, which urllib3 reports as the function's failure."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed = False

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._stream.read(size)
        except Exception:  # an OSError, werkzeug's ClientDisconnected (fewer bytes than said)
            self.failed = True
            raise
        return data


def _client_body(environ: Mapping[str, Any]) -> _ClientBody | None:
    """The body to send on, its ``Content-Length`` bytes streamed (a chunked body arrives
    here read whole and given its length: :func:`read_chunked_body`)."""
    from werkzeug.wsgi import LimitedStream

    length = environ.get("CONTENT_LENGTH")
    if length and length.isdigit() and int(length) > 0:
        return _ClientBody(LimitedStream(environ["wsgi.input"], int(length)))
    return None


def read_chunked_body(environ: dict[str, Any], start_response: Any) -> list[bytes] | None:
    """A chunked request body (werkzeug dechunks it as it is read) read whole before any app
    of the runtime's ports sees it, and handed on as a body of ``Content-Length`` bytes: so
    the broker's ingress, a function called in this process (``LOCAL_WORKERS=0``) and the
    proxy (the function gets its length) read every body the same way. The 400 of
    :func:`_unreadable_body` to answer instead of calling the app when it cannot be read (a
    malformed chunk) or when both framings are given, which can mean two different bodies to
    two readers (request smuggling); None otherwise (a body that was not chunked is left as
    it is)."""
    if not environ.get("wsgi.input_terminated"):
        return None
    try:
        if environ.get("CONTENT_LENGTH"):
            raise _MalformedRequest("both Content-Length and Transfer-Encoding: chunked")
        body: bytes = environ["wsgi.input"].read()
    except (_MalformedRequest, OSError) as exc:  # werkzeug's dechunking: "Invalid chunk..."
        return _unreadable_body(environ, start_response, exc)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input_terminated"] = False
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return None


def _unreadable_body(
    environ: Mapping[str, Any], start_response: Any, exc: BaseException
) -> list[bytes]:
    """The 400 of a request whose body cannot be read. Its connection ends after it: a
    chunked request's always (:class:`~invoiceflow_local.dev.QuietRequestHandler`), a short
    body's at the end of the stream the client closed."""
    log.info(
        "refused %s %s: its body cannot be read (%s)",
        environ.get("REQUEST_METHOD"),
        environ.get("PATH_INFO"),
        exc.__class__.__name__,
    )
    return _problem(
        start_response,
        "400 Bad Request",
        "the request body cannot be read: a malformed chunked body, both Content-Length and "
        "Transfer-Encoding, or fewer bytes than its Content-Length",
    )


def _problem(start_response: Any, status: str, detail: str) -> list[bytes]:
    """A problem+json answer of the proxy itself (the functions' problem format)."""
    import json

    from invoiceflow.outputs import PROBLEM_CONTENT_TYPE

    body = json.dumps({"status": int(status[:3]), "title": status[4:], "detail": detail}).encode()
    start_response(
        status, [("Content-Type", PROBLEM_CONTENT_TYPE), ("Content-Length", str(len(body)))]
    )
    return [body]


def _stream(response: Any) -> Iterator[bytes]:
    try:
        yield from response.stream(64 * 1024, decode_content=False)
    finally:
        response.release_conn()


def _quote_path(path: str) -> str:
    """PATH_INFO is decoded (WSGI, latin-1): quote it again for the request line."""
    from urllib.parse import quote

    return quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~")


def _request_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers (:func:`~invoiceflow_local.broker.headers_from_environ`) as the
    proxy forwards them: no hop-by-hop header, its length, and the client's address appended
    to ``X-Forwarded-For``."""
    headers = {
        name.title(): value
        for name, value in headers_from_environ(environ).items()
        if name not in HOP_BY_HOP
    }
    if environ.get("CONTENT_LENGTH"):
        headers["Content-Length"] = str(environ["CONTENT_LENGTH"])
    client = environ.get("REMOTE_ADDR")
    if client:
        earlier = headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{earlier}, {client}" if earlier else str(client)
    return headers


if __name__ == "__main__":  # run as a module: use the importable one (its FunctionSpec)
    from invoiceflow_local.workers import main as workers_main

    workers_main()
