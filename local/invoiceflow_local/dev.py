"""``invoiceflow dev``: the whole product on one machine.

Two HTTP listeners, as the cluster has a public ingress and a cluster-local network:

* the **public port** (``host``:``port``, 8080 by default) serves only the public routes of
  the HTTP functions (exactly as the cluster's one host routes them), plus ``/healthz`` and
  ``/readyz`` (database, document store, broker consumers). Anything else is a 404;
* the **internal port** (127.0.0.1, a random port, :attr:`LocalRuntime.internal_url`) is the
  cluster-local side that only the runtime itself uses: ``/_broker``, the broker ingress (the
  ``K_SINK`` of every function), and ``/_functions/<service>/...``, every function (Knative
  Service) by name. It is never bound to the public host.

Every function is the real functions-framework app built from its entry file
(``functions/<step>.py``, bundled with this package), in processes of its own
(:mod:`~invoiceflow_local.workers`: a gunicorn master per function with ``LOCAL_WORKERS``
workers, one per core by default), as Knative runs each Service in its own pods: the public
port proxies to them and the broker delivers to them over kept-alive connections. With
``LOCAL_WORKERS=0`` (or ``workers=0``) every function's app runs in this process instead, on
the internal port's ``/_functions/<service>`` (one interpreter: one core).

Public routing comes only from the ingress manifest (:mod:`~invoiceflow_local.routes`), event
routing only from the Trigger manifests (:mod:`~invoiceflow_local.triggers`): both read from
the manifests bundled with this package, or from ``KNATIVE_DIR``. Backends come from the
settings (the environment, read once): SQLite, a files directory and the in-process broker by
default; ``DATABASE_URL``, ``MONGODB_URL`` and ``RABBITMQ_URL`` switch to Postgres, GridFS and
RabbitMQ. What the runtime decides itself (``K_SINK``, a ``JWT_SECRET`` when none is set,
``PUBLIC_BASE_URL`` when left at its default) goes into the settings it installs for the
functions (:func:`invoiceflow.context.use_settings`; pickled to the function processes over a
pipe), never into ``os.environ``. The in-process broker keeps its queue in the runtime's
database (``broker_queue``), so events accepted before a crash are delivered after the restart.
A relay thread sends pending outbox events every second (and backs off while the broker refuses
them).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from invoiceflow import events, health, naming
from invoiceflow.context import get_context, reset_context, use_settings
from invoiceflow.errors import InvoiceflowError, Unavailable
from invoiceflow.logs import configure
from invoiceflow.outbox import relay
from invoiceflow.outputs import JSON_CONTENT_TYPE
from invoiceflow.settings import ENV_VARS, FUNCTIONS, Settings
from invoiceflow_local import headers, make_broker
from invoiceflow_local.package_data import DEMO_INVOICE, KNATIVE_DIR
from invoiceflow_local.routes import PublicRoute, load_public_routes, route_for
from invoiceflow_local.triggers import load_triggers
from invoiceflow_local.workers import (
    FunctionProcesses,
    MountedAt,
    create_function_app,
    load_service_sizes,
    read_chunked_body,
    service_path,
    worker_count,
)

log = logging.getLogger(__name__)

PUBLIC_BASE_URL_DEFAULT = next(v.default for v in ENV_VARS if v.name == "PUBLIC_BASE_URL")
#: the longest wait of the relay loop between tries while the broker refuses events
RELAY_BACKOFF_MAX = 60.0
#: the example invoice of a checkout, named in the banner when it is there
CHECKOUT_EXAMPLE = Path("events/examples/invoices/minimal.json")


#: seconds an idle kept-alive connection to the runtime's ports stays open
KEEPALIVE_SECONDS = 75
#: the most unread request body the runtime reads away to keep a connection open
DRAIN_MAX_BYTES = 1024 * 1024


class _BodyReader:
    """A request's input stream that ends with its body (``Content-Length`` bytes), so that
    nothing reads into the next request of a kept-alive connection; it counts what was read."""

    def __init__(self, raw: Any, length: int) -> None:
        self.raw, self.length, self.count = raw, length, 0

    def _allowed(self, size: int | None) -> int:
        left = self.length - self.count
        return left if size is None or size < 0 else min(size, left)

    def read(self, size: int | None = -1) -> bytes:
        n = self._allowed(size)
        data: bytes = self.raw.read(n) if n else b""
        self.count += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        n = self._allowed(size)
        data: bytes = self.raw.readline(n) if n else b""
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with two changes for the runtime's ports:

    * HTTP/1.1 connections are kept alive (werkzeug's dev server closes every connection,
      because http.server does not read away a request body the application left unread:
      this handler does, up to :data:`DRAIN_MAX_BYTES`, and closes only after a chunked or
      bigger unread body). Functions sending events and the broker's clients reuse their
      connections, as in the cluster; an idle connection is closed after
      :data:`KEEPALIVE_SECONDS`;
    * the access log line (one per request, on both ports) is logged at DEBUG, and at INFO
      as werkzeug does only when ``ACCESS_LOG=1`` asks for it;
    * Nagle's algorithm is off (``TCP_NODELAY``, as gunicorn sets it): werkzeug writes a
      response's head and body in two sends, and on a kept-alive connection Nagle held the
      body back until the client acknowledged the head, which a client waiting for the body
      delays by its delayed-ACK timer: every answer on these ports took ~44 ms instead of
      well under 1 ms (tests/runtime/test_function_processes.py times it)."""

    access_log = False
    disable_nagle_algorithm = True  # socketserver.StreamRequestHandler sets TCP_NODELAY
    timeout = KEEPALIVE_SECONDS  # the socket's timeout: also the idle limit between requests
    _keep_alive = False

    def run_wsgi(self) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        self._keep_alive = (
            not chunked
            and self.request_version == "HTTP/1.1"
            and self.headers.get("Connection", "").lower() != "close"
        )
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length, self._keep_alive = 0, False
        if not self._keep_alive:
            super().run_wsgi()
            return
        body = _BodyReader(self.rfile, length)
        self.rfile = body  # type: ignore[assignment]
        try:
            super().run_wsgi()
        finally:
            self.rfile = body.raw
        left = length - body.count
        if not self.close_connection and left > 0:
            if left > DRAIN_MAX_BYTES:
                self.close_connection = True
            else:
                self.rfile.read(left)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keep_alive:
            return  # werkzeug's "always close": this handler drains bodies instead
        super().send_header(keyword, value)

    def log_error(self, format: str, *args: Any) -> None:
        if args and isinstance(args[0], TimeoutError):  # an idle kept-alive connection ended
            self.log("debug", format, *args)
        else:
            super().log_error(format, *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.access_log:
            super().log_request(code, size)
        elif logging.getLogger("werkzeug").isEnabledFor(logging.DEBUG):
            self.log("debug", '"%s" %s %s', self.requestline, code, size)


def request_handler(access_log: bool) -> type[WSGIRequestHandler]:
    """The request handler of the runtime's servers for the ``ACCESS_LOG`` setting."""
    return type("RequestHandler", (QuietRequestHandler,), {"access_log": access_log})


def manifests_dir(settings: Settings) -> Path:
    """``KNATIVE_DIR`` when set, else the bundled manifests."""
    return settings.knative_dir or KNATIVE_DIR


def _json(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", JSON_CONTENT_TYPE), ("Content-Length", str(len(data)))]
    )
    return [data]


class LocalRuntime:
    """Start with :meth:`start`, stop with :meth:`stop` (or use ``with``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        services: Iterable[str] = FUNCTIONS,
        relay_interval: float = 1.0,
        settings: Settings | None = None,
        workers: int | None = None,
        **broker_options: Any,
    ) -> None:
        """``settings``: the configuration (default: ``Settings.from_env()`` at :meth:`start`);
        the runtime completes it and installs it for the functions it hosts. ``workers``:
        worker processes per function (default: the settings' ``LOCAL_WORKERS``); 0 hosts every
        function in this process."""
        self.host = host
        self.port = port
        self.services = tuple(services)
        self.relay_interval = relay_interval
        self.broker_options = broker_options
        self.settings = settings
        self.routes: tuple[PublicRoute, ...] = ()
        self.workers = workers
        #: the functions' apps, when they run in this process (``workers`` 0)
        self.apps: dict[str, Any] = {}
        #: the functions' processes, when they run in their own
        self.functions: FunctionProcesses | None = None
        self.broker: Any = None
        self.server: BaseWSGIServer | None = None
        self.internal_server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_port}"

    @property
    def internal_url(self) -> str:
        """The cluster-local side (broker ingress, functions by name): 127.0.0.1 only."""
        assert self.internal_server is not None
        return f"http://127.0.0.1:{self.internal_server.server_port}"

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The public port: the public routes, /healthz and /readyz; everything else is 404."""
        if (refused := read_chunked_body(environ, start_response)) is not None:
            return refused
        path = environ.get("PATH_INFO") or "/"
        route = route_for(self.routes, path)
        if route is not None:
            return self._call_function(route.service, environ, start_response)
        if path == health.LIVENESS_PATH:
            return _json(start_response, "200 OK", health.liveness_body()[1])
        if path == health.READINESS_PATH:
            status, body = health.readiness_body(self.readiness())
            return _json(
                start_response, "200 OK" if status == 200 else "503 Service Unavailable", body
            )
        return _json(start_response, "404 Not Found", {"status": 404, "title": "Not found"})

    def readiness(self) -> dict[str, str]:
        """The runtime's readiness checks: database, document store, broker consumers."""
        broker, functions = self.broker, self.functions
        checks = {"broker": lambda: broker is not None and bool(broker.healthy())}
        if functions is not None:
            checks["functions"] = functions.healthy
        return health.readiness(None, checks)

    def internal_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The internal port: the broker ingress and the functions by name."""
        if (refused := read_chunked_body(environ, start_response)) is not None:
            return refused
        path = environ.get("PATH_INFO") or "/"
        if path == "/_broker" or path.startswith("/_broker/"):
            return self.broker.wsgi_app(environ, start_response)
        if path.startswith("/_functions/"):
            service = path[len("/_functions/") :].partition("/")[0]
            if service not in self.services:
                return _json(start_response, "404 Not Found", {"title": "no such function"})
            # the function's app answers under its service_path (workers.MountedAt)
            return self._call_function(service, environ, start_response)
        return _json(start_response, "404 Not Found", {"status": 404, "title": "Not found"})

    def _call_function(self, service: str, environ: dict[str, Any], start_response: Any) -> Any:
        """The function's answer: its app called here, or its workers' through the proxy."""
        if self.functions is not None:
            return self.functions.proxy.forward(service, environ, start_response)
        return self.apps[service](environ, start_response)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        headers.install()  # this process's header blocks without the email package (see there)
        settings = self.settings or Settings.from_env()
        handler = request_handler(settings.access_log)
        self.server = make_server(
            self.host, self.port, self, threaded=True, request_handler=handler
        )
        self.internal_server = make_server(
            "127.0.0.1", 0, self.internal_app, threaded=True, request_handler=handler
        )
        try:
            return self._start(settings)
        except BaseException:
            self._close_servers()
            if self.functions is not None:
                self.functions.stop()
            raise

    def _start(self, settings: Settings) -> LocalRuntime:
        assert self.server is not None and self.internal_server is not None
        decided: dict[str, Any] = {"k_sink": f"{self.internal_url}/_broker"}
        if settings.public_base_url == PUBLIC_BASE_URL_DEFAULT:
            decided["public_base_url"] = self.url
        if settings.jwt_secret is None and settings.jwt_public_key is None:
            decided["jwt_secret"] = secrets.token_urlsafe(48)
            log.info("JWT_SECRET not set: generated one for this run (tokens die with it)")
        settings = dataclasses.replace(settings, **decided)
        knative = manifests_dir(settings)
        self.routes = load_public_routes(knative)
        triggers = load_triggers(knative)
        ctx = use_settings(settings)
        applied = ctx.repo.migrate()
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        if ctx.repo.dialect == "sqlite":
            # a SQLite file is this process's alone: claims in it belong to a dead process
            released = ctx.repo.release_outbox_claims(None)
            if released:
                log.info("outbox: %d events claimed by a previous process released", released)
        try:  # a missing MongoDB is found now, not by the first upload
            ctx.docs.ping(health.CHECK_TIMEOUT)
        except Unavailable as exc:
            raise Unavailable(f"the document store is not reachable: {exc.detail}") from exc
        self._start_functions(settings, knative)
        options = dict(self.broker_options)
        if not settings.rabbitmq_url:  # the in-process broker keeps its queue in the database
            options.setdefault("store", ctx.repo)  # (RabbitMQ keeps its own)
        self.broker = make_broker(
            triggers, self.resolve, rabbitmq_url=settings.rabbitmq_url, **options
        )
        self.broker.start()
        self._spawn("http", self.server.serve_forever)
        self._spawn("http-internal", self.internal_server.serve_forever)
        self._spawn("outbox-relay", self._relay_loop)
        log.info(
            "local runtime on %s (%s broker, %d triggers from %s; internal side on %s)",
            self.url,
            "RabbitMQ" if settings.rabbitmq_url else "in-process",
            len(triggers),
            knative,
            self.internal_url,
        )
        return self

    def _start_functions(self, settings: Settings, knative: Path) -> None:
        """Each function in its own processes (``workers`` per function), or, with 0 workers
        (or where gunicorn cannot run: Windows), every function's app in this process."""
        workers = self.workers if self.workers is not None else worker_count(settings.local_workers)
        if workers and os.name == "nt":
            log.info("LOCAL_WORKERS: gunicorn does not run on Windows; functions in process")
            workers = 0
        if not workers:
            for service in self.services:
                app = create_function_app(service)
                self.apps[service] = MountedAt(app, service_path(service))
            return
        sizes = load_service_sizes(knative)
        self.functions = FunctionProcesses(self.services, settings, workers, sizes)
        try:
            self.functions.start()
        except RuntimeError as exc:
            self.functions.stop()
            raise Unavailable(str(exc)) from exc
        log.info("functions in their own processes: %d worker(s) each (LOCAL_WORKERS)", workers)

    def resolve(self, service: str) -> str:
        """Where the broker delivers to ``service``: its workers' socket, or the internal
        port's route to its in-process app."""
        if service not in self.services:
            raise LookupError(f"no function named {service!r} in the local runtime")
        base = self.functions.functions[service].url if self.functions else self.internal_url
        return base + service_path(service)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=f"invoiceflow-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _relay_loop(self) -> None:
        """Relay every ``relay_interval``; while the broker refuses events, back off (doubling,
        at most :data:`RELAY_BACKOFF_MAX`) with one warning a try that says when the next is."""
        failures = 0
        wait = self.relay_interval
        while not self._stopping.wait(wait):
            try:
                relay(get_context(), raise_failure=True)
            except InvoiceflowError as exc:
                failures, wait = self._relay_backoff(failures)
                log.warning("outbox relay: %s; next try in %.0f s", exc, wait)
            except Exception:
                failures, wait = self._relay_backoff(failures)
                log.exception("outbox relay failed; next try in %.0f s", wait)
            else:
                failures, wait = 0, self.relay_interval

    def _relay_backoff(self, failures: int) -> tuple[int, float]:
        """One more failure, and the wait before the next try (doubling, capped)."""
        failures += 1
        return failures, min(RELAY_BACKOFF_MAX, self.relay_interval * 2.0**failures)

    def stop(self) -> None:
        self._stopping.set()
        if self.broker is not None:
            self.broker.stop()
        for server in (self.server, self.internal_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.functions is not None:
            self.functions.stop()
        events.close_sessions()  # the functions' kept-alive connections to the broker
        reset_context()

    def _close_servers(self) -> None:
        for server in (self.server, self.internal_server):
            if server is not None:
                server.server_close()
        self.server = self.internal_server = None

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def example_invoice() -> Path:
    """An invoice file the banner's upload command can name: the checkout's example when run
    from the checkout, else the bundled demo invoice."""
    return CHECKOUT_EXAMPLE if CHECKOUT_EXAMPLE.is_file() else DEMO_INVOICE


def banner(runtime: LocalRuntime, data_dir: Path) -> str:
    """What ``invoiceflow dev`` prints at start: where it runs, its data and how to try it."""
    return (
        f"invoiceflow is running on {runtime.url}  (Ctrl-C stops it)\n"
        f"data folder: {data_dir}  (DATA_DIR; invoiceflow users add uses the same)\n"
        f'try it in another shell (README.md, "Run it yourself", has the whole flow):\n'
        f"  invoiceflow users add you@example.com      # once\n"
        f"  TOKEN=$(curl -s -X POST {runtime.url}/login -u you@example.com:PASSWORD | "
        f"python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')\n"
        f"  curl -X POST -F 'file=@{example_invoice()}' -H \"Authorization: Bearer $TOKEN\" "
        f"{runtime.url}/upload       # answers the invoice_id\n"
        f'  curl -o invoice.pdf -H "Authorization: Bearer $TOKEN" '
        f"{naming.invoice_url(runtime.url, 'INVOICE_ID', 'pdf')}\n"
        f"broker ingress, this machine only (signed invoice.requested events: "
        f"events/README.md): {runtime.internal_url}/_broker"
    )


def serve(host: str = "127.0.0.1", port: int = 8080) -> int:
    settings = Settings.from_env()
    configure(settings.log_level)
    runtime = LocalRuntime(host, port, settings=settings).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C sets the same event (a KeyboardInterrupt could land anywhere, even before the
    # wait below); a second Ctrl-C while stopping interrupts the stop
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(banner(runtime, settings.data_dir), flush=True)
    while not stop.wait(0.5):
        pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("stopping...", flush=True)
    runtime.stop()
    return 0
