"""The pipeline: uploads over HTTP through the local runtime until every invoice is ``ready``.

The runtime runs in its own process (``bench/_runtime.py``, the same ``LocalRuntime`` as
``invoiceflow dev``); this process is only the client. Per backend:

1. warm-up: a few invoices, one at a time (first renders import ReportLab/openpyxl);
2. **unloaded latency**: invoices uploaded one at a time, each after the previous one is
   ready: upload-to-ready with nothing else in flight;
3. **throughput**: ``N`` uploads from 4 client threads as fast as the runtime accepts them,
   then wait for all to be ready. Completed invoices per second = N / (last ready - first
   upload sent); the upload-to-ready distribution here includes the time spent queued.

Upload-to-ready is measured from the moment the client sends the upload to the invoice's
``updated_at`` when it turned ``ready`` (the database's timestamp, same machine clock). The
harness learns that invoices are done by watching the mail outbox folder (one ``.eml`` per
finished invoice): no polling of the runtime that would steal its CPU.

The **render-only bound** is measured in this process, in the same run: ``cores / (PDF +
XLSX render time)`` of the very document uploaded (parsing and storing excluded): what the
machine could do if it did nothing but render, on every core.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_DIR,
    EMAIL,
    PASSWORD,
    Target,
    cpu_seconds,
    example,
    log,
    median,
    ms,
    parse,
    percentile,
    rnd,
    tree,
    verdict,
)

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
BACKENDS = ("embedded", "postgres+rabbitmq")
DOCUMENT = "eur-two-rates.json"
CLIENTS = 4

TARGETS = {
    "fraction": Target(
        "pipeline.throughput_vs_bound.postgres+rabbitmq",
        "pipeline",
        "Throughput / render-only bound (RabbitMQ + Postgres)",
        ">=",
        0.5,
        "",
    ),
    "p50": Target(
        "pipeline.p50_upload_to_ready_ms.postgres+rabbitmq",
        "pipeline",
        "p50 upload-to-ready, one invoice in flight (RabbitMQ + Postgres)",
        "<=",
        100,
        " ms",
    ),
}


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 3).close()
        return True
    except OSError:
        return False


def render_bound(doc: dict[str, Any], cores: int, reps: int) -> dict[str, Any]:
    from invoiceflow.domain import parse_invoice
    from invoiceflow.render.pdf import render_pdf
    from invoiceflow.render.xlsx import render_xlsx

    raw = json.dumps(doc).encode()
    parse_times = []
    for _ in range(max(reps // 3, 1)):
        t0 = time.perf_counter()
        parse_invoice(raw)
        parse_times.append(time.perf_counter() - t0)
    inv = parse(doc)
    render_pdf(inv)
    render_xlsx(inv)
    pdf, xlsx = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        render_pdf(inv)
        t1 = time.perf_counter()
        render_xlsx(inv)
        t2 = time.perf_counter()
        pdf.append(t1 - t0)
        xlsx.append(t2 - t1)
    per = (median(pdf) or 0) + (median(xlsx) or 0)
    return {
        "document": f"events/examples/invoices/{DOCUMENT}",
        "cores": cores,
        "pdf_ms": ms(median(pdf)),
        "xlsx_ms": ms(median(xlsx)),
        "parse_ms": ms(median(parse_times)),
        "invoices_per_second": rnd(cores / per if per else None, 2),
    }


class _Postgres:
    """A fresh schema in the test database, dropped afterwards."""

    def __init__(self) -> None:
        import psycopg2

        self.schema = f"bench_{uuid.uuid4().hex[:12]}"
        self.admin = psycopg2.connect(POSTGRES_URL, connect_timeout=3)
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{self.schema}"')
        self.url = f"{POSTGRES_URL}?options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        with self.admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        self.admin.close()


class _Runtime:
    def __init__(self, env: dict[str, str], prefix: str | None, log_path: Path) -> None:
        cmd = [sys.executable, str(BENCH_DIR / "_runtime.py")]
        if prefix:
            cmd += ["--prefix", prefix]
        self.log_path = log_path
        with open(log_path, "wb") as errors:  # werkzeug logs every request on stderr
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the local runtime did not start (exit {self.proc.wait()}): {self.log_tail()}"
            )
        info = json.loads(line)
        self.url: str = info["url"]
        self.pid: int = info["pid"]

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def log_errors(self) -> dict[str, int]:
        """Counts of the error kinds the runtime logged (exception lines), most common first."""
        counts: dict[str, int] = {}
        for line in self.log_tail_all().splitlines():
            if (
                line.startswith(
                    (
                        "OSError",
                        "ConnectionError",
                        "sqlite3.",
                        "psycopg2.",
                        "pika.",
                        "invoiceflow.errors.",
                    )
                )
                or " ERROR " in line
            ):
                if " ERROR " in line:  # a log record: count by logger
                    key = "ERROR " + line.split(" ERROR ", 1)[1].split(" ", 1)[0]
                else:  # an exception line: count by type
                    key = line.split(":", 1)[0]
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:10])

    def log_tail_all(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class _Client:
    def __init__(self, base: str, outbox: Path) -> None:
        import requests

        self.base = base
        self.outbox = outbox
        r = requests.post(f"{base}/login", auth=(EMAIL, PASSWORD), timeout=60)
        r.raise_for_status()
        self.auth = {"Authorization": f"Bearer {r.json()['token']}"}
        self.template = example(DOCUMENT)

    def body(self, number: str) -> bytes:
        return json.dumps({**self.template, "number": number}).encode()

    def upload(self, session: Any, number: str) -> tuple[str, float]:
        """(invoice id, wall-clock time the upload was sent)."""
        body = self.body(number)
        sent = time.time()
        r = session.post(
            f"{self.base}/upload",
            headers=self.auth,
            timeout=120,
            files={"file": ("invoice.json", body, "application/json")},
        )
        if r.status_code != 202:
            raise RuntimeError(f"upload answered {r.status_code}: {r.text[:300]}")
        return str(r.json()["invoice_id"]), sent

    def done(self) -> set[str]:
        """Invoices whose email is out (ready or failed): ``<id>-ready.eml``/``-failed.eml``."""
        try:
            names = os.listdir(self.outbox)
        except FileNotFoundError:
            return set()
        return {n.rsplit("-", 1)[0] for n in names if n.endswith(".eml")}

    def wait(self, ids: set[str], timeout: float, stall: float = 60.0) -> bool:
        """True once every invoice in ``ids`` is done; False at ``timeout``, or when none
        has finished for ``stall`` seconds (a runtime that lost events never finishes)."""
        deadline = time.monotonic() + timeout
        progress, last = -1, time.monotonic()
        while time.monotonic() < deadline:
            done = len(ids & self.done())
            if done == len(ids):
                return True
            if done != progress:
                progress, last = done, time.monotonic()
            elif time.monotonic() - last > stall:
                log(
                    f"pipeline: no invoice finished for {stall:.0f} s ({done} of {len(ids)} "
                    "done): giving up"
                )
                return False
            time.sleep(0.005 if len(ids) == 1 else 0.05)
        return False


def _sequential(client: _Client, count: int, tag: str) -> list[tuple[str, float]]:
    import requests

    out = []
    with requests.Session() as s:
        for i in range(count):
            invoice_id, sent = client.upload(s, f"{tag}-{i}")
            if not client.wait({invoice_id}, 60):
                raise RuntimeError(f"invoice {invoice_id} not done within 60 s")
            out.append((invoice_id, sent))
    return out


def _burst(client: _Client, count: int, tag: str) -> tuple[list[tuple[str, float]], float]:
    """Upload ``count`` invoices from CLIENTS threads; (ids with send times, seconds taken)."""
    import requests

    todo: queue.Queue[int] = queue.Queue()
    for i in range(count):
        todo.put(i)
    results: list[tuple[str, float]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        with requests.Session() as s:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    res = client.upload(s, f"{tag}-{i}")
                except BaseException as exc:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    results.append(res)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} upload(s) failed: {errors[0]}")
    return results, time.monotonic() - t0


def _ready_times(database_url: str, ids: list[str]) -> dict[str, tuple[str, float]]:
    """invoice id -> (status, ready time as a Unix timestamp)."""
    from invoiceflow.stores import open_repository

    repo = open_repository(database_url)
    try:
        out: dict[str, tuple[str, float]] = {}
        for invoice_id in ids:
            inv = repo.get_invoice(invoice_id)
            if inv is not None:
                updated: datetime = inv.updated_at
                out[invoice_id] = (inv.status, updated.timestamp())
        return out
    finally:
        repo.close()


def _latencies(
    sent: list[tuple[str, float]], ready: dict[str, tuple[str, float]]
) -> tuple[list[float], int]:
    lat, failed = [], 0
    for invoice_id, t in sent:
        status, when = ready.get(invoice_id, ("missing", 0.0))
        if status == "ready":
            lat.append((when - t) * 1000)
        else:
            failed += 1
    return lat, failed


def _dist(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": rnd(percentile(values, 50)),
        "p95_ms": rnd(percentile(values, 95)),
        "p99_ms": rnd(percentile(values, 99)),
        "max_ms": rnd(max(values) if values else None),
        "mean_ms": rnd(sum(values) / len(values) if values else None),
        "samples_ms": [round(v, 2) for v in sorted(values)],
    }


def run_backend(name: str, n: int, sequential: int, bound: float | None) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": name, "status": "ok", "reason": None, "n": n}
    if name == "postgres+rabbitmq":
        missing = [
            f"{what} (127.0.0.1:{port})"
            for what, port in (("PostgreSQL", 5432), ("RabbitMQ", 5672))
            if not _port_open(port)
        ]
        if missing:
            result.update(status="unavailable", reason=f"not reachable: {', '.join(missing)}")
            return result
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-pipeline-{name.replace('+', '-')}-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "MONGODB_URL",
            "RABBITMQ_URL",
            "K_SINK",
            "PUBLIC_BASE_URL",
            "SENDGRID_API_KEY",
            "INVOICE_FORMATS",
            "MAIL_OUTBOX_DIR",
            "KNATIVE_DIR",
        )
    }
    env.update(
        {
            "DATA_DIR": str(tmp),
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": "bench-secret-" + "y" * 40,
            "MAIL_OUTBOX_DIR": str(tmp / "outbox"),
        }
    )
    pg: _Postgres | None = None
    prefix = None
    if name == "postgres+rabbitmq":
        pg = _Postgres()
        env["DATABASE_URL"] = pg.url
        env["RABBITMQ_URL"] = RABBITMQ_URL
        prefix = f"bench-{uuid.uuid4().hex[:8]}."
    database_url = env.get("DATABASE_URL") or f"sqlite:///{tmp / 'invoiceflow.db'}"
    runtime: _Runtime | None = None
    try:
        runtime = _Runtime(env, prefix, tmp / "runtime.log")
        from invoiceflow import accounts
        from invoiceflow.stores import open_repository

        repo = open_repository(database_url)
        try:
            accounts.add_user(repo, EMAIL, PASSWORD)
        finally:
            repo.close()
        client = _Client(runtime.url, tmp / "outbox")
        log(f"pipeline {name}: runtime on {runtime.url}; warm-up")
        _sequential(client, 3, "WARM")
        log(f"pipeline {name}: {sequential} invoices one at a time")
        seq = _sequential(client, sequential, "SEQ")
        log(f"pipeline {name}: {n} uploads from {CLIENTS} clients")
        pids = tree(runtime.pid)
        cpu0, wall0 = cpu_seconds(pids), time.monotonic()
        sent, upload_s = _burst(client, n, "LOAD")
        ids = {i for i, _ in sent}
        finished = client.wait(ids, timeout=max(120.0, n * 1.0))
        cpu1, wall1 = cpu_seconds(tree(runtime.pid)), time.monotonic()
        ready = _ready_times(database_url, [i for i, _ in seq + sent])
        seq_lat, seq_failed = _latencies(seq, ready)
        load_lat, load_failed = _latencies(sent, ready)
        first_sent = min(t for _, t in sent)
        last_ready = max(
            (ready[i][1] for i, _ in sent if i in ready and ready[i][0] == "ready"), default=None
        )
        completed = n - load_failed
        span = (last_ready - first_sent) if last_ready else None
        throughput = completed / span if span else None
        result.update(
            {
                "all_finished": finished,
                "completed": completed,
                "failed": load_failed + seq_failed,
                "upload_seconds": rnd(upload_s, 3),
                "uploads_per_second": rnd(n / upload_s if upload_s else None),
                "seconds": rnd(span, 3),
                "invoices_per_second": rnd(throughput),
                "fraction_of_render_bound": (
                    round(throughput / bound, 3) if throughput and bound else None
                ),
                "runtime_cpu_cores_used": rnd((cpu1 - cpu0) / (wall1 - wall0)),
                "runtime_log_errors": runtime.log_errors(),
                "unloaded": _dist(seq_lat),
                "loaded": _dist(load_lat),
            }
        )
        log(
            f"pipeline {name}: {result['invoices_per_second']} invoices/s "
            f"({result['fraction_of_render_bound']} of the bound), unloaded p50 "
            f"{result['unloaded']['p50_ms']} ms, loaded p50 {result['loaded']['p50_ms']} ms, "
            f"runtime used {result['runtime_cpu_cores_used']} cores"
        )
    except Exception as exc:  # noqa: BLE001 - a failed backend is reported, not fatal
        result.update(status="error", reason=f"{exc.__class__.__name__}: {exc}")
        log(f"pipeline {name}: ERROR {result['reason']}")
    finally:
        if runtime is not None:
            runtime.stop()
        if pg is not None:
            pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def run(quick: bool, n: int, backends: list[str], cores: int) -> dict[str, Any]:
    sequential = 5 if quick else 50
    bound = render_bound(example(DOCUMENT), cores, 3 if quick else 21)
    log(
        f"pipeline: render-only bound {bound['invoices_per_second']} invoices/s "
        f"({cores} cores, pdf {bound['pdf_ms']} ms + xlsx {bound['xlsx_ms']} ms)"
    )
    results = [run_backend(b, n, sequential, bound["invoices_per_second"]) for b in backends]
    by = {r["backend"]: r for r in results}
    pr = by.get("postgres+rabbitmq", {})
    why = None
    if "postgres+rabbitmq" not in by:
        why = "backend not run"
    elif pr.get("status") != "ok":
        why = pr.get("reason")
    targets = [
        verdict(TARGETS["fraction"], pr.get("fraction_of_render_bound"), why),
        verdict(TARGETS["p50"], (pr.get("unloaded") or {}).get("p50_ms"), why),
    ]
    return {
        "status": "ok" if all(r["status"] == "ok" for r in results) else "partial",
        "document": f"events/examples/invoices/{DOCUMENT}",
        "clients": CLIENTS,
        "sequential": sequential,
        "render_bound": bound,
        "backends": results,
        "targets": targets,
    }
