"""``invoiceflow dev``: the whole product on one machine.

Two HTTP listeners, as the cluster has a public ingress and a cluster-local network:

* the **public port** (``host``:``port``, 8080 by default) serves only the public paths of the
  HTTP functions: ``/login``, ``/upload``, ``/download``, ``/invoices...``, ``/openapi.json``
  (exactly as in the cluster behind one host), plus ``/healthz`` and ``/readyz`` (database,
  document store, broker consumers). Anything else is a 404;
* the **internal port** (127.0.0.1, a random port, :attr:`LocalRuntime.internal_url`) is the
  cluster-local side that only the runtime itself uses: ``/_broker``, the broker ingress (the
  ``K_SINK`` of every function), and ``/_functions/<service>/...``, every function (Knative
  Service) by name, where the broker delivers events. It is never bound to the public host.

Every function is the real functions-framework app built from ``functions/<step>.py``. Routing
comes only from the Trigger manifests in ``knative/`` (``KNATIVE_DIR``). Backends come from
the environment: SQLite, a files directory and the in-process broker by default;
``DATABASE_URL``, ``MONGODB_URL`` and ``RABBITMQ_URL`` switch to Postgres, GridFS and RabbitMQ.
The in-process broker keeps its queue in the runtime's database (``broker_queue``), so events
accepted before a crash are delivered after the restart. A relay thread sends pending outbox
events every second.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

import invoiceflow
from invoiceflow import health
from invoiceflow.context import get_context, reset_context
from invoiceflow.errors import InvoiceflowError, Unavailable
from invoiceflow.logs import configure
from invoiceflow.outbox import relay
from invoiceflow_local import load_triggers, make_broker
from invoiceflow.settings import FUNCTIONS, Settings

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(invoiceflow.__file__).resolve().parent
FUNCTIONS_DIR = PACKAGE_DIR.parent
CHECKOUT_DIR = FUNCTIONS_DIR.parent

#: public path -> the service that answers it (as knative/ingress/ routes them: exactly, but
#: /invoices and what is below it)
PUBLIC_PATHS = (
    ("/login", "login"),
    ("/upload", "upload"),
    ("/download", "download"),
    ("/invoices", "download"),
    ("/openapi.json", "download"),
)
_PREFIXES = frozenset({"/invoices"})


def function_source(service: str) -> Path:
    return FUNCTIONS_DIR / f"{service.replace('-', '_')}.py"


def _json(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
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
        **broker_options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.services = tuple(services)
        self.relay_interval = relay_interval
        self.broker_options = broker_options
        self.apps: dict[str, Any] = {}
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
        """The public port: the public paths, /healthz and /readyz; everything else is 404."""
        path = environ.get("PATH_INFO") or "/"
        for public, service in PUBLIC_PATHS:
            if path == public or (public in _PREFIXES and path.startswith(public + "/")):
                return self.apps[service](environ, start_response)
        if path == health.LIVENESS_PATH:
            return _json(start_response, "200 OK", health.liveness_body()[1])
        if path == health.READINESS_PATH:
            status, body = health.readiness_body(self.readiness())
            return _json(
                start_response, "200 OK" if status == 200 else "503 Service Unavailable", body
            )
        if path == "/":
            return _json(
                start_response, "200 OK", {"status": "ok", "paths": [p for p, _ in PUBLIC_PATHS]}
            )
        return _json(start_response, "404 Not Found", {"status": 404, "title": "Not found"})

    def readiness(self) -> dict[str, str]:
        """The runtime's readiness checks: database, document store, broker consumers."""
        broker = self.broker
        return health.readiness(
            None, {"broker": lambda: broker is not None and bool(broker.healthy())}
        )

    def internal_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The internal port: the broker ingress and the functions by name."""
        path = environ.get("PATH_INFO") or "/"
        if path == "/_broker" or path.startswith("/_broker/"):
            return self.broker.wsgi_app(environ, start_response)
        if path.startswith("/_functions/"):
            service, _, rest = path[len("/_functions/") :].partition("/")
            app = self.apps.get(service)
            if app is None:
                return _json(start_response, "404 Not Found", {"title": "no such function"})
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/_functions/{service}"
            environ["PATH_INFO"] = "/" + rest
            return app(environ, start_response)
        return _json(start_response, "404 Not Found", {"status": 404, "title": "Not found"})

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        self.server = make_server(self.host, self.port, self, threaded=True)
        self.internal_server = make_server("127.0.0.1", 0, self.internal_app, threaded=True)
        os.environ["K_SINK"] = f"{self.internal_url}/_broker"
        os.environ.setdefault("PUBLIC_BASE_URL", self.url)
        try:
            return self._start()
        except BaseException:
            self._close_servers()
            raise

    def _start(self) -> LocalRuntime:
        from functions_framework import create_app

        assert self.server is not None and self.internal_server is not None
        if not os.environ.get("JWT_SECRET") and not os.environ.get("JWT_PUBLIC_KEY"):
            os.environ["JWT_SECRET"] = secrets.token_urlsafe(48)
            log.warning("JWT_SECRET not set: generated one for this run (tokens die with it)")
        reset_context()
        ctx = get_context()
        settings = ctx.settings
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
        for service in self.services:
            self.apps[service] = create_app(
                service.replace("-", "_"), str(function_source(service))
            )
        knative = settings.knative_dir or CHECKOUT_DIR / "knative"
        triggers = load_triggers(knative)
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

    def resolve(self, service: str) -> str:
        if service not in self.apps:
            raise LookupError(f"no function named {service!r} in the local runtime")
        return f"{self.internal_url}/_functions/{service}"

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=f"invoiceflow-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _relay_loop(self) -> None:
        while not self._stopping.wait(self.relay_interval):
            try:
                relay(get_context())
            except InvoiceflowError as exc:
                log.warning("outbox relay: %s", exc)
            except Exception:
                log.exception("outbox relay failed")

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


def serve(host: str = "127.0.0.1", port: int = 8080) -> int:
    configure(Settings.from_env().log_level)
    runtime = LocalRuntime(host, port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        f"invoiceflow is running on {runtime.url}  (Ctrl-C stops it)\n"
        f"  invoiceflow users add you@example.com      # in another shell, once\n"
        f"  curl -X POST {runtime.url}/login -u you@example.com:PASSWORD\n"
        f"  curl -X POST -F 'file=@invoice_data.json' -H 'Authorization: Bearer TOKEN' "
        f"{runtime.url}/upload\n"
        f"  curl -H 'Authorization: Bearer TOKEN' '{runtime.url}/download?fid=FILE_ID'\n"
        f"broker ingress, this machine only (signed invoice.requested events: "
        f"events/README.md): {runtime.internal_url}/_broker",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("stopping...", flush=True)
    runtime.stop()
    return 0
