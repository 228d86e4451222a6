"""The pipeline: uploads over HTTP through the local runtime until every invoice is ``ready``.

The runtime runs in its own process (``bench/_runtime.py``, the same ``LocalRuntime`` as
``invoiceflow dev``, its functions in their own processes: ``LOCAL_WORKERS``, one worker per
core by default); this process is only the client. The runtime's CPU is its whole process
tree's (the runtime, every function's gunicorn master and workers). The uploads cycle through every
example document (``events/examples/invoices/*.json``, each with a fresh number), not one
document over and over. Per backend:

1. warm-up: one invoice of each example, one at a time (first renders import the libraries);
2. **one in flight**: invoices uploaded one at a time, each after the previous one is ready:
   upload-to-ready with nothing else in flight, and the runtime's CPU per invoice;
3. **16 in flight**: ``N`` invoices from a closed loop of 16 clients (each uploads, waits until
   its invoice is ready, uploads the next), so exactly 16 are in the pipeline: throughput
   (completed / (last ready - first upload sent)), upload-to-ready p50/p95 and CPU per invoice.

Upload-to-ready is measured from the moment the client sends the upload to the invoice's
``updated_at`` when it turned ``ready`` (the database's timestamp, same machine clock). The
harness learns that invoices are done by watching the mail outbox folder (one ``.eml`` per
finished invoice, read by one watcher thread): no polling of the runtime that would steal its
CPU.

The **render-only bound** is measured in this process's pool, **interleaved** with the runs:
a round, before the warm-up, between the phases and after the last one while the runtime is
idle, renders every example once in this process (each document's own render time: the
one-in-flight latency is divided by it, invoice by invoice; its CPU time is the renderers'
CPU per invoice for one in flight) and once in each of ``cores`` pool processes at the same
time. Bound = the invoices those parallel passes render per second: what the machine could
do if it did nothing but render the same mix of documents on every core (``cores`` / one
render alone is reported too: it overstates the machine where the cores slow each other down,
as two vCPUs of one physical core do). The pool's CPU per render is the renderers' CPU per
invoice for 16 in flight: the runtime's CPU per invoice minus it is the CPU spent outside rendering.

**Where the CPU goes**: the same CPU per invoice, per process group: each function's gunicorn
master with its workers (by Knative service name: ``render-pdf``, ``upload``, ...) and
``runtime``, the runtime's own process (proxy, broker, outbox relay). ``bench/_runtime.py``
names each function's master at start; at each measurement the harness reads the runtime's
children again and sums every master's whole tree then (a worker gunicorn replaced is counted;
a master the runtime restarted is recognised by the listening socket's descriptor number on its
command line, which the runtime keeps across restarts). A process that exited during a phase
is missing from its group (its CPU is not readable any more).

**The data directory**: each backend's runs keep their files in a fresh ``tempfile``
directory; before them the harness measures the CPU of making one new fsync'ed file there
(:func:`new_file_cpu_ms`, ``new_file_cpu_ms``), a figure of the filesystem that about five
files an invoice pay (the submitted and completed documents, two renders, the email).
"""

from __future__ import annotations

import json
import os
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
    Load,
    Target,
    children,
    cpu_by_pid,
    example,
    example_names,
    log,
    median,
    ms,
    percentile,
    rnd,
    tree,
    verdict,
)
from invoiceflow.settings import FUNCTIONS

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
BACKENDS = ("embedded", "postgres+rabbitmq")
#: invoices in the pipeline at once in the throughput phase (the issue's figure)
IN_FLIGHT = 16
#: the loaded CPU per invoice may exceed the one-in-flight one by this factor ("not growing":
#: the harness's tolerance for noise, a choice, not the issue's number)
GROWTH_LIMIT = 1.2
#: the process group of the runtime's own process (proxy, broker, outbox relay) in
#: ``cpu_ms_per_invoice_by_process``; the other groups are the functions' service names
RUNTIME_GROUP = "runtime"
#: the functions whose processes do the rendering
RENDER_FUNCTIONS = ("render-pdf", "render-xlsx")
#: the module a function's gunicorn master runs (``python -m MODULE LISTENER_FD STARTED_FD``)
MASTER_MODULE = "invoiceflow_local.workers"

#: CPU seconds so far of a process tree, by group and pid (``_Runtime.snapshot``)
Snapshot = dict[str, dict[int, float]]


def _targets(backend: str) -> dict[str, Target]:
    return {
        "fraction": Target(
            f"pipeline.throughput_vs_bound.{backend}",
            "pipeline",
            f"Throughput at {IN_FLIGHT} in flight / render-only bound ({backend})",
            ">=",
            0.5,
            "",
        ),
        "p50": Target(
            f"pipeline.p50_vs_render.{backend}",
            "pipeline",
            f"p50 of upload-to-ready / that invoice's render time, one in flight ({backend})",
            "<=",
            2.0,
            "x",
        ),
        "outside": Target(
            f"pipeline.cpu_outside_render_vs_render.{backend}",
            "pipeline",
            f"CPU per invoice outside rendering / renderers' CPU, {IN_FLIGHT} in flight "
            f"({backend})",
            "<=",
            0.5,
            "",
        ),
        "growth": Target(
            f"pipeline.cpu_per_invoice_growth.{backend}",
            "pipeline",
            f"CPU per invoice at {IN_FLIGHT} in flight / at one in flight ({backend})",
            "<=",
            GROWTH_LIMIT,
            "x",
        ),
    }


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 3).close()
        return True
    except OSError:
        return False


_POOL_INVOICES: list[Any] = []


def _pool_init(raw: list[bytes]) -> None:
    """A render-pool process: parse the examples and render each once (imports, fonts)."""
    from invoiceflow.domain import parse_invoice
    from invoiceflow.render.pdf import render_pdf
    from invoiceflow.render.xlsx import render_xlsx

    _POOL_INVOICES[:] = [parse_invoice(r, max_bytes=1 << 40).invoice for r in raw]
    for inv in _POOL_INVOICES:
        render_pdf(inv)
        render_xlsx(inv)


def _pool_pass(barrier: Any) -> tuple[float, float, float, int]:
    """One pass over the examples (PDF + XLSX each), started together with the other pool
    processes: (start, end, CPU seconds, invoices)."""
    from invoiceflow.render.pdf import render_pdf
    from invoiceflow.render.xlsx import render_xlsx

    barrier.wait(120)
    start, cpu = time.monotonic(), time.process_time()
    for inv in _POOL_INVOICES:
        render_pdf(inv)
        render_xlsx(inv)
    return start, time.monotonic(), time.process_time() - cpu, len(_POOL_INVOICES)


class RenderTimes:
    """Render times of every example, sampled in rounds interleaved with the pipeline runs.

    Each round renders every example once in this process (each document's own PDF and XLSX
    time: the one-in-flight latency is divided by it) and, with a ``pool`` of ``cores``
    processes, once in every pool process at the same time: the **render-only bound** is that
    parallel throughput (invoices rendered / wall time of the pass), i.e. what the machine
    does when it renders on every core at once, with whatever the cores share (on a VM two
    vCPUs may be one physical core's two threads, where two renders at once are each slower
    than one alone)."""

    def __init__(self, names: list[str], pool: Any = None, cores: int = 1) -> None:
        from invoiceflow.domain import parse_invoice

        self.names = names
        self.raw = [json.dumps(example(n)).encode() for n in names]
        self.invoices = [parse_invoice(raw, max_bytes=1 << 40).invoice for raw in self.raw]
        self.pdf: list[list[float]] = [[] for _ in names]
        self.xlsx: list[list[float]] = [[] for _ in names]
        self.parse: list[list[float]] = [[] for _ in names]
        #: CPU seconds (this thread) of PDF + XLSX: on a busy machine wall time includes
        #: waiting for a core, CPU time does not
        self.cpu: list[list[float]] = [[] for _ in names]
        #: parallel passes: (invoices rendered, wall seconds, CPU seconds)
        self.parallel: list[tuple[int, float, float]] = []
        self.pool, self.cores = pool, cores
        self.rounds = 0
        self._warm = False

    def sample(self, rounds: int = 1) -> None:
        from invoiceflow.domain import parse_invoice
        from invoiceflow.render.pdf import render_pdf
        from invoiceflow.render.xlsx import render_xlsx

        if not self._warm:
            for inv in self.invoices:
                render_pdf(inv)
                render_xlsx(inv)
            self._warm = True
        for _ in range(rounds):
            for i, inv in enumerate(self.invoices):
                t0 = time.perf_counter()
                parse_invoice(self.raw[i], max_bytes=1 << 40)
                t1 = time.perf_counter()
                c1 = time.thread_time()
                render_pdf(inv)
                t2 = time.perf_counter()
                render_xlsx(inv)
                t3 = time.perf_counter()
                self.cpu[i].append(time.thread_time() - c1)
                self.parse[i].append(t1 - t0)
                self.pdf[i].append(t2 - t1)
                self.xlsx[i].append(t3 - t2)
            if self.pool is not None:
                self.parallel.append(self._parallel_pass())
            self.rounds += 1

    def _parallel_pass(self) -> tuple[int, float, float]:
        import multiprocessing

        with multiprocessing.Manager() as manager:
            barrier = manager.Barrier(self.cores)
            passes = [
                f.result(300)
                for f in [self.pool.submit(_pool_pass, barrier) for _ in range(self.cores)]
            ]
        wall = max(p[1] for p in passes) - min(p[0] for p in passes)
        return sum(p[3] for p in passes), wall, sum(p[2] for p in passes)

    def parallel_per_second(self) -> float | None:
        """Invoices per second when every core renders (all parallel passes)."""
        done, wall = sum(p[0] for p in self.parallel), sum(p[1] for p in self.parallel)
        return done / wall if wall else None

    def parallel_cpu_s(self) -> float | None:
        """The renderers' CPU per invoice while every core renders."""
        done, cpu = sum(p[0] for p in self.parallel), sum(p[2] for p in self.parallel)
        return cpu / done if done else None

    def render_s(self, i: int) -> float:
        """Median PDF + XLSX seconds of document ``i``."""
        return (median(self.pdf[i]) or 0.0) + (median(self.xlsx[i]) or 0.0)

    def mean_render_s(self) -> float:
        return sum(self.render_s(i) for i in range(len(self.names))) / len(self.names)

    def mean_render_cpu_s(self) -> float:
        """The renderers' CPU per invoice of the cycled mix (median per document, mean)."""
        return sum(median(v) or 0.0 for v in self.cpu) / len(self.names)

    def figures(self, cores: int) -> dict[str, Any]:
        k = len(self.names)
        per = self.mean_render_s()
        sequential = cores / per if per else None
        parallel = self.parallel_per_second()
        return {
            "documents": k,
            "rounds": self.rounds,
            "cores": cores,
            "pdf_ms": ms(sum(median(v) or 0.0 for v in self.pdf) / k),
            "xlsx_ms": ms(sum(median(v) or 0.0 for v in self.xlsx) / k),
            "parse_ms": ms(sum(median(v) or 0.0 for v in self.parse) / k),
            "render_cpu_ms": ms(self.mean_render_cpu_s()),
            "parallel_render_cpu_ms": ms(self.parallel_cpu_s()),
            # the bound: renders on every core at once (cores / one render alone without a pool)
            "invoices_per_second": rnd(parallel if parallel is not None else sequential, 2),
            "bound_method": "parallel" if parallel is not None else "cores / one render",
            "cores_over_one_render_per_second": rnd(sequential, 2),
            "per_document_ms": {
                name: {
                    "pdf": ms(median(self.pdf[i])),
                    "xlsx": ms(median(self.xlsx[i])),
                    "parse": ms(median(self.parse[i])),
                }
                for i, name in enumerate(self.names)
            },
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


def _master_listener_fd(pid: int) -> str | None:
    """The listening socket's descriptor number on the command line of a function's master
    (``python -m invoiceflow_local.workers LISTENER_FD STARTED_FD``), None for any other
    process. The runtime keeps each function's socket, and so its number, across restarts
    of the master: the number names the function."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in raw.split(b"\0")]
    if MASTER_MODULE not in args:
        return None
    i = args.index(MASTER_MODULE)
    return args[i + 1] if i + 1 < len(args) else None


def _cpu_by_group(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each group used between two snapshots: each process's CPU at the end minus
    its CPU at the start (all of it when it started since). A process that exited in between
    is not counted."""
    start = {pid: cpu for pids in before.values() for pid, cpu in pids.items()}
    groups = {group: 0.0 for group in [*before, *after]}
    for group, pids in after.items():
        groups[group] += sum(cpu - start.get(pid, 0.0) for pid, cpu in pids.items())
    return groups


def _by_process_ms(cpu: dict[str, float], count: int) -> dict[str, float | None]:
    """CPU ms per invoice of each group: the runtime first, then the functions in
    ``settings.FUNCTIONS`` order (any other group last)."""
    order = [RUNTIME_GROUP, *FUNCTIONS]
    names = sorted(cpu, key=lambda g: (order.index(g) if g in order else len(order), g))
    return {g: ms(cpu[g] / count) if count else None for g in names}


def _outside_render_functions(cpu: dict[str, float]) -> float | None:
    """(CPU of every group but the render functions) / (CPU of the render functions)."""
    render = sum(cpu.get(g, 0.0) for g in RENDER_FUNCTIONS)
    if not render or not any(g in cpu for g in RENDER_FUNCTIONS):
        return None
    return rnd((sum(cpu.values()) - render) / render, 3)


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
        #: each function's gunicorn master at start, by service name
        self.masters: dict[str, int] = dict(info.get("functions") or {})
        self._by_fd = {
            fd: service
            for service, pid in self.masters.items()
            if (fd := _master_listener_fd(pid)) is not None
        }

    def groups(self) -> dict[str, list[int]]:
        """The runtime's process tree now, by group: each function's master with all its
        descendants (a master the runtime restarted is known by its listener descriptor),
        and ``runtime``: the runtime's process and any other child's tree."""
        out: dict[str, list[int]] = {RUNTIME_GROUP: [self.pid]}
        known = {pid: service for service, pid in self.masters.items()}
        for kid in children(self.pid):
            fd = _master_listener_fd(kid)
            service = self._by_fd.get(fd) if fd is not None else known.get(kid)
            out.setdefault(service or RUNTIME_GROUP, []).extend(tree(kid))
        for service in self.masters:
            out.setdefault(service, [])
        return out

    def snapshot(self) -> Snapshot:
        """CPU seconds so far of every process of the runtime's tree, by group."""
        return {group: cpu_by_pid(pids) for group, pids in self.groups().items()}

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
    def __init__(self, base: str, outbox: Path, names: list[str]) -> None:
        import requests

        self.base = base
        self.outbox = outbox
        r = requests.post(f"{base}/login", auth=(EMAIL, PASSWORD), timeout=60)
        r.raise_for_status()
        self.auth = {"Authorization": f"Bearer {r.json()['token']}"}
        self.templates = [example(n) for n in names]
        self._done: set[str] = set()
        self._waiters: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="bench-outbox")
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        self._watcher.join(5)

    def body(self, number: str, doc: int) -> bytes:
        template = self.templates[doc % len(self.templates)]
        key = "invoice_no" if "invoice_no" in template else "number"  # the legacy dialect
        return json.dumps({**template, key: number}).encode()

    def upload(self, session: Any, number: str, doc: int) -> tuple[str, float]:
        """(invoice id, wall-clock time the upload was sent)."""
        body = self.body(number, doc)
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

    def _watch(self) -> None:
        """One thread reads the outbox (``<id>-ready.eml``/``-failed.eml``: the invoice is
        done) and wakes whoever waits for those invoices. It lists the folder only when the
        folder's modification time changed, or every 100 ms in case two files came within one
        tick of the file system's clock: listing a folder of 1,000 files every 3 ms took the
        harness a good part of a core, which the runtime then lacked on a 2-core machine."""
        seen_mtime, listed_at = -1, 0.0
        while not self._stop.is_set():
            try:
                mtime = os.stat(self.outbox).st_mtime_ns
            except FileNotFoundError:
                mtime = -1
            now = time.monotonic()
            if mtime == seen_mtime and now - listed_at < 0.1:
                time.sleep(0.003)
                continue
            seen_mtime, listed_at = mtime, now
            try:
                names = os.listdir(self.outbox)
            except FileNotFoundError:
                names = []
            with self._lock:
                for n in names:
                    if n.endswith(".eml"):
                        invoice_id = n.rsplit("-", 1)[0]
                        if invoice_id not in self._done:
                            self._done.add(invoice_id)
                            event = self._waiters.pop(invoice_id, None)
                            if event is not None:
                                event.set()
            time.sleep(0.003)

    def done_count(self, ids: set[str]) -> int:
        with self._lock:
            return len(ids & self._done)

    def wait_one(self, invoice_id: str, timeout: float) -> bool:
        with self._lock:
            if invoice_id in self._done:
                return True
            event = self._waiters.setdefault(invoice_id, threading.Event())
        return event.wait(timeout)


def _sequential(client: _Client, count: int, tag: str) -> list[tuple[str, float, int]]:
    """``count`` invoices one at a time: (id, send time, document index)."""
    import requests

    out = []
    with requests.Session() as s:
        s.trust_env = False
        for i in range(count):
            invoice_id, sent = client.upload(s, f"{tag}-{i}", i)
            if not client.wait_one(invoice_id, 60):
                raise RuntimeError(f"invoice {invoice_id} not done within 60 s")
            out.append((invoice_id, sent, i))
    return out


def _closed_loop(
    client: _Client, count: int, in_flight: int, tag: str, stall: float = 60.0
) -> tuple[list[tuple[str, float, int]], bool]:
    """``count`` invoices with ``in_flight`` of them in the pipeline at any time: each client
    thread uploads one, waits until it is done, uploads the next. (sent, all finished)."""
    import requests

    counter = iter(range(count))
    results: list[tuple[str, float, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        with requests.Session() as s:
            s.trust_env = False
            while True:
                with lock:
                    if errors:
                        return
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    invoice_id, sent = client.upload(s, f"{tag}-{i}", i)
                    with lock:
                        results.append((invoice_id, sent, i))
                    if not client.wait_one(invoice_id, stall):
                        raise RuntimeError(f"invoice {invoice_id} not done within {stall:.0f} s")
                except BaseException as exc:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(exc)
                    return

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        log(f"pipeline: {len(errors)} client(s) stopped: {errors[0]}")
    return results, not errors


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


#: the stages of one invoice at one in flight, from the database's own timestamps
STAGES = ("upload_to_accepted", "accepted_to_pdf", "accepted_to_xlsx", "last_file_to_ready")


def _stages(database_url: str, sent: list[tuple[str, float, int]]) -> dict[str, float | None]:
    """Where an invoice's time goes with nothing else in flight (medians, ms): the upload sent
    to the invoice recorded (``created_at``), recorded to each file recorded (the delivery of
    ``uploaded``, the render, storing the file), the last file to ``ready`` (the ``rendered``
    event through the broker to notify, which marks it ready before it sends the email)."""
    from invoiceflow.stores import open_repository

    got: dict[str, list[float]] = {stage: [] for stage in STAGES}
    repo = open_repository(database_url)
    try:
        for invoice_id, t, _ in sent:
            inv = repo.get_invoice(invoice_id)
            if inv is None or inv.status != "ready":
                continue
            files = {a.format: a.created_at.timestamp() for a in repo.list_artifacts(invoice_id)}
            created = inv.created_at.timestamp()
            got["upload_to_accepted"].append((created - t) * 1000)
            for fmt in ("pdf", "xlsx"):
                if fmt in files:
                    got[f"accepted_to_{fmt}"].append((files[fmt] - created) * 1000)
            if files:
                got["last_file_to_ready"].append(
                    (inv.updated_at.timestamp() - max(files.values())) * 1000
                )
    finally:
        repo.close()
    return {stage: rnd(median(values)) for stage, values in got.items()}


def _ready_pairs(
    sent: list[tuple[str, float, int]], ready: dict[str, tuple[str, float]]
) -> list[tuple[tuple[str, float, int], float]]:
    """(upload, upload-to-ready ms) of the uploads that became ready."""
    out = []
    for upload in sent:
        status, when = ready.get(upload[0], ("missing", 0.0))
        if status == "ready":
            out.append((upload, (when - upload[1]) * 1000))
    return out


def _latencies(
    sent: list[tuple[str, float, int]], ready: dict[str, tuple[str, float]]
) -> tuple[list[float], int]:
    lat, failed = [], 0
    for invoice_id, t, _ in sent:
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


def _total(snapshot: Snapshot) -> float:
    """CPU seconds so far of the whole tree (the totals: ``cpu_ms_per_invoice``)."""
    return sum(cpu for pids in snapshot.values() for cpu in pids.values())


def run_backend(
    name: str, n: int, sequential: int, times: RenderTimes, rounds: int, cores: int
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "backend": name,
        "status": "ok",
        "reason": None,
        "n": n,
        "in_flight": IN_FLIGHT,
    }
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
    result["new_file_cpu_ms"] = rnd(new_file_cpu_ms(tmp), 3)
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
    client: _Client | None = None
    load = Load(cores)
    # this backend's own bound: only the rounds sampled next to its runs
    own = RenderTimes(times.names, times.pool, times.cores)
    own.invoices, own.raw = times.invoices, times.raw
    try:
        runtime = _Runtime(env, prefix, tmp / "runtime.log")
        from invoiceflow import accounts
        from invoiceflow.stores import open_repository

        repo = open_repository(database_url)
        try:
            accounts.add_user(repo, EMAIL, PASSWORD)
        finally:
            repo.close()
        client = _Client(runtime.url, tmp / "outbox", times.names)
        own.sample(rounds)
        log(f"pipeline {name}: runtime on {runtime.url}; warm-up")
        _sequential(client, len(times.names), "WARM")
        own.sample(rounds)
        log(f"pipeline {name}: {sequential} invoices one at a time")
        snap0 = runtime.snapshot()
        seq = _sequential(client, sequential, "SEQ")
        snap1 = runtime.snapshot()
        seq_cpu = _total(snap1) - _total(snap0)
        seq_groups = _cpu_by_group(snap0, snap1)
        own.sample(rounds)
        log(f"pipeline {name}: {n} invoices, {IN_FLIGHT} in flight")
        snap0 = runtime.snapshot()
        wall0, client0 = time.monotonic(), time.process_time()
        sent, finished = _closed_loop(client, n, IN_FLIGHT, "LOAD")
        snap1, wall1 = runtime.snapshot(), time.monotonic()
        cpu0, cpu1 = _total(snap0), _total(snap1)
        load_groups = _cpu_by_group(snap0, snap1)
        client_cores = (time.process_time() - client0) / (wall1 - wall0)
        own.sample(rounds)
        for src, dst in (
            (own.pdf, times.pdf),
            (own.xlsx, times.xlsx),
            (own.parse, times.parse),
            (own.cpu, times.cpu),
        ):
            for i, v in enumerate(src):
                dst[i] += v
        times.rounds += own.rounds
        times.parallel += own.parallel
        ready = _ready_times(database_url, [i for i, _, _ in seq + sent])
        seq_lat, seq_failed = _latencies(seq, ready)
        load_lat, load_failed = _latencies(sent, ready)
        per_invoice = [
            lat / 1000 / own.render_s(doc % len(own.names))
            for (invoice_id, t, doc), lat in _ready_pairs(seq, ready)
        ]
        first_sent = min((t for _, t, _ in sent), default=None)
        last_ready = max(
            (ready[i][1] for i, _, _ in sent if i in ready and ready[i][0] == "ready"),
            default=None,
        )
        completed = len(sent) - load_failed
        span = (last_ready - first_sent) if last_ready and first_sent else None
        throughput = completed / span if span else None
        bound = own.figures(cores)
        # the renderers' CPU per invoice of this mix: one render alone (one in flight), and
        # while every core renders (16 in flight keeps every core busy)
        render_cpu = own.mean_render_cpu_s()
        render_cpu_loaded = own.parallel_cpu_s() or render_cpu
        cpu_seq = seq_cpu / sequential
        cpu_load = (cpu1 - cpu0) / completed if completed else None

        def outside(cpu: float | None, render: float) -> float | None:
            return rnd((cpu - render) / render, 3) if cpu and render else None

        result.update(
            {
                "all_finished": finished and completed == n,
                "completed": completed,
                "failed": load_failed + seq_failed,
                "seconds": rnd(span, 3),
                "invoices_per_second": rnd(throughput),
                "render_bound": bound,
                "fraction_of_render_bound": (
                    round(throughput / bound["invoices_per_second"], 3)
                    if throughput and bound["invoices_per_second"]
                    else None
                ),
                "runtime_cpu_cores_used": rnd((cpu1 - cpu0) / (wall1 - wall0)),
                # the load generator (this process) shares the machine with the runtime
                "client_cpu_cores_used": rnd(client_cores),
                "render_cpu_ms_per_invoice": ms(render_cpu),
                "render_cpu_ms_per_invoice_loaded": ms(render_cpu_loaded),
                "cpu_ms_per_invoice": {"unloaded": ms(cpu_seq), "loaded": ms(cpu_load)},
                "cpu_outside_render_vs_render": {
                    "unloaded": outside(cpu_seq, render_cpu),
                    "loaded": outside(cpu_load, render_cpu_loaded),
                },
                "cpu_ms_per_invoice_by_process": {
                    "unloaded": _by_process_ms(seq_groups, sequential),
                    "loaded": _by_process_ms(load_groups, completed),
                },
                # informative, no target: the render functions' processes do more than render
                "cpu_outside_render_functions_vs_render_functions": {
                    "unloaded": _outside_render_functions(seq_groups),
                    "loaded": _outside_render_functions(load_groups),
                },
                "cpu_per_invoice_growth": (
                    rnd(cpu_load / cpu_seq, 3) if cpu_load and cpu_seq else None
                ),
                "p50_vs_render": rnd(percentile(per_invoice, 50), 3),
                "runtime_log_errors": runtime.log_errors(),
                "unloaded": _dist(seq_lat),
                "unloaded_stages_ms": _stages(database_url, seq),
                "loaded": _dist(load_lat),
            }
        )
        log(
            f"pipeline {name}: {result['invoices_per_second']} invoices/s "
            f"({result['fraction_of_render_bound']} of the bound "
            f"{bound['invoices_per_second']}), unloaded p50 {result['unloaded']['p50_ms']} ms "
            f"({result['p50_vs_render']}x render), loaded p50/p95 {result['loaded']['p50_ms']}/"
            f"{result['loaded']['p95_ms']} ms, CPU/invoice {result['cpu_ms_per_invoice']} ms "
            f"(render {result['render_cpu_ms_per_invoice']} ms), runtime used "
            f"{result['runtime_cpu_cores_used']} cores"
        )
    except Exception as exc:  # noqa: BLE001 - a failed backend is reported, not fatal
        result.update(status="error", reason=f"{exc.__class__.__name__}: {exc}")
        log(f"pipeline {name}: ERROR {result['reason']}")
    finally:
        if client is not None:
            client.close()
        if runtime is not None:
            runtime.stop()
        if pg is not None:
            pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    result["load"] = load.done()
    return result


#: files the data directory probe creates (each fsync'ed, as the stores write theirs)
PROBE_FILES = 50


def new_file_cpu_ms(directory: Path, files: int = PROBE_FILES, size: int = 20_000) -> float:
    """CPU (user + system, this process) to create, write, fsync and rename one file of
    ``size`` bytes in a fresh subdirectory of ``directory``, as the files store and the
    mail outbox store each document and email: a figure of the machine's filesystem where
    the pipeline keeps its data (on this project's VM it was 0.03-0.1 ms in some directories
    and 0.3-0.9 ms in others of the same ext4 filesystem, bench/analysis.md), reported with
    each backend since about five files are made per invoice. The files are removed."""
    probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=directory))
    data = os.urandom(size)
    try:
        start = time.process_time()
        for i in range(files):
            tmp = probe / f".tmp-{i}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, probe / f"{i}.stored")
        return (time.process_time() - start) / files * 1000
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _workers_per_function() -> int:
    """The runtime's worker processes per function (``LOCAL_WORKERS`` of this environment,
    which the runtime inherits; 0: every function inside the runtime's process)."""
    from invoiceflow.settings import Settings
    from invoiceflow_local.workers import worker_count

    return worker_count(Settings.from_env().local_workers)


def run(quick: bool, n: int, backends: list[str], cores: int) -> dict[str, Any]:
    sequential = 5 if quick else 48
    rounds = 1 if quick else 2
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    names = example_names()
    raw = [json.dumps(example(name)).encode() for name in names]
    with ProcessPoolExecutor(
        cores, mp_context=get_context("spawn"), initializer=_pool_init, initargs=(raw,)
    ) as pool:
        times = RenderTimes(names, pool, cores)
        results = [run_backend(b, n, sequential, times, rounds, cores) for b in backends]
    targets = []
    for backend in backends:
        r = next(x for x in results if x["backend"] == backend)
        why = None if r["status"] == "ok" else r.get("reason") or r["status"]
        t = _targets(backend)
        targets += [
            verdict(t["fraction"], r.get("fraction_of_render_bound"), why),
            verdict(t["p50"], r.get("p50_vs_render"), why),
            verdict(t["outside"], (r.get("cpu_outside_render_vs_render") or {}).get("loaded"), why),
            verdict(t["growth"], r.get("cpu_per_invoice_growth"), why),
        ]
    return {
        "status": "ok" if all(r["status"] == "ok" for r in results) else "partial",
        "documents": f"events/examples/invoices/*.json ({len(times.names)}, cycled)",
        "in_flight": IN_FLIGHT,
        "sequential": sequential,
        "workers_per_function": _workers_per_function(),
        "render_bound": times.figures(cores),
        "backends": results,
        "targets": targets,
    }
