"""Shared pieces of the harness: paths, machine facts, statistics, invoice documents, target
verdicts, a tiny event sink, and /proc readings (resident memory of a process tree)."""

from __future__ import annotations

import copy
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
EXAMPLES = ROOT / "events" / "examples" / "invoices"
BENCH_DIR = ROOT / "bench"
#: the venv's bin directory (functions-framework, invoiceflow)
VENV_BIN = Path(sys.executable).parent
#: a 40+ character HS256 secret for the functions the harness starts
JWT_SECRET = "bench-secret-" + "x" * 40
PASSWORD = "bench password that is long enough"
EMAIL = "bench@example.com"

_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr (stdout is the JSON report)."""
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100), linear between closest ranks."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def rnd(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# ----------------------------------------------------------------------------- the machine


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "loadavg_at_start": loadavg(),
        "cpu_model": cpu,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": package_versions(),
    }


def loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in (
        "invoiceflow",
        "reportlab",
        "openpyxl",
        "weasyprint",
        "functions-framework",
        "gunicorn",
        "flask",
        "babel",
        "psycopg2-binary",
        "pika",
        "matplotlib",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git(*args: str) -> str:
    import subprocess

    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


#: what the measured code is made of (a commit that changes only docs does not count)
CODE_PATHS = ("functions", "knative", "bench", "requirements.lock")


def git_changes(start: str | None) -> dict[str, Any]:
    """The commit at the end of a run, and whether the measured code changed since ``start``
    (someone committed while the harness ran)."""
    end = _git("rev-parse", "HEAD") or None
    changed = bool(
        start
        and end
        and start != end
        and _git("diff", "--name-only", start, end, "--", *CODE_PATHS)
    )
    return {"commit_at_end": end, "code_changed_during_run": changed}


def git_info() -> dict[str, Any]:
    git = _git
    commit = git("rev-parse", "HEAD")
    return {
        "commit": commit or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


# ----------------------------------------------------------------------------- documents


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return document


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.json"))


def invoice_document(lines: int, number: str = "BENCH-1") -> dict[str, Any]:
    """A realistic invoice with ``lines`` items: ``long-300-lines.json`` (GBP, en-GB; SKU,
    unit, tax rate; some descriptions long enough to wrap) with its items cycled."""
    doc = example("long-300-lines.json")
    items = doc["items"]
    doc = copy.deepcopy(doc)
    doc["number"] = number
    doc["items"] = [dict(items[i % len(items)]) for i in range(lines)]
    return doc


def parse(doc: dict[str, Any]) -> Any:
    from invoiceflow.domain import parse_invoice

    return parse_invoice(json.dumps(doc).encode(), max_bytes=1 << 40).invoice


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    id: str
    section: str
    description: str
    #: "<=" or ">=" (measured against limit)
    op: str
    limit: float
    unit: str


def verdict(target: Target, measured: float | None, note: str | None = None) -> dict[str, Any]:
    """A target with its measured figure; ``met`` is None when it could not be measured."""
    met = None
    if measured is not None:
        met = measured <= target.limit if target.op == "<=" else measured >= target.limit
    return {
        "id": target.id,
        "section": target.section,
        "description": target.description,
        "target": f"{target.op} {target.limit:g}{target.unit}",
        "op": target.op,
        "limit": target.limit,
        "unit": target.unit.strip(),
        "measured": None if measured is None else round(measured, 3),
        "met": met,
        "note": note,
    }


# ----------------------------------------------------------------------------- networking


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: Any = None) -> bool:
    """Poll until 127.0.0.1:port accepts a connection (every 2 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.002)
    return False


class Sink:
    """K_SINK for the functions the harness starts: answers 202 to every POST, counts them."""

    def __init__(self) -> None:
        import logging

        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.count = 0
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self._thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="bench-sink"
        )

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        with self._lock:
            self.count += 1
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- /proc


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else round(kb / 1024, 2)


def pss_mb(pid: int) -> float | None:
    """Proportional set size: shared pages split between the processes sharing them (the sum
    over a process tree is what a container's memory accounting sees)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return round(int(line.split()[1]) / 1024, 2)
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, each once. A thread that ends while its ``children`` file
    is read is skipped (a runtime starts and ends a thread per request): falling back to the
    scan of /proc after some tasks were read counted those children twice (a pipeline run
    once reported 3.75 of 2 cores)."""
    kids: set[int] = set()
    readable = False
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        tasks = []
    for task in tasks:
        try:
            text = (task / "children").read_text().split()
        except OSError:
            continue  # the thread ended, or no /proc/PID/task/TID/children on this kernel
        readable = True
        kids.update(int(x) for x in text)
    if readable:
        return sorted(kids)
    for entry in Path("/proc").iterdir():  # no /proc/PID/task/TID/children
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    kids.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return sorted(kids)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants, each once."""
    out = [pid]
    for kid in children(pid):
        out += [p for p in tree(kid) if p not in out]
    return out


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each process (all its threads); a process
    that is gone is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by the processes (all their threads)."""
    return sum(cpu_by_pid(pids).values())


# ----------------------------------------------------------------------------- how busy


def _system_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (``/proc/stat``: everything but idle and
    iowait; steal counts, it is CPU some other guest took)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(x) for x in fields)
    except (OSError, ValueError, IndexError):
        return None
    steal = rest[0] if rest else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process, its live descendants (with the children they reaped) and
    the children it reaped itself."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in tree(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick
        except (OSError, ValueError, IndexError):
            continue
    t = os.times()
    return total + t.children_user + t.children_system


class Load:
    """How busy the machine was with *other* work while a figure was measured.

    The load average alone cannot say it: the harness loads the machine itself (a 1-minute
    load of 2 on 2 cores is expected during a pipeline run). So the harness also counts the
    CPU the whole machine used (``/proc/stat``) minus the CPU of its own process tree, per
    second of wall time: ``other_cores``. A figure is flagged ``busy`` when other work used
    more than :data:`BUSY_FRACTION` of the cores (or, when ``/proc/stat`` is unreadable, when
    the 1-minute load average at its start was above that fraction of the cores)."""

    def __init__(self, cores: int | None = None) -> None:
        if cores is None:
            try:
                cores = len(os.sched_getaffinity(0))
            except AttributeError:
                cores = os.cpu_count() or 1
        self.cores = cores
        self.loadavg_start = loadavg()
        self._sys0 = _system_busy_seconds()
        self._own0 = _own_seconds()
        self._t0 = time.monotonic()

    def done(self) -> dict[str, Any]:
        sys1, own1, t1 = _system_busy_seconds(), _own_seconds(), time.monotonic()
        wall = t1 - self._t0
        other = None
        if self._sys0 is not None and sys1 is not None and wall > 0:
            other = max(0.0, ((sys1 - self._sys0) - (own1 - self._own0)) / wall)
        start = self.loadavg_start
        if other is not None:
            busy = other > BUSY_FRACTION * self.cores
        else:
            busy = start is not None and start[0] > BUSY_FRACTION * self.cores
        return {
            "loadavg_start": start,
            "loadavg_end": loadavg(),
            "other_cores": rnd(other),
            "busy": busy,
        }


#: other work using more than this fraction of the cores makes a figure "busy"
BUSY_FRACTION = 0.25
