"""Cold start of every function: a fresh process to its first 2xx answer.

Each function is started exactly as deployed, ``functions-framework --source functions/<f>.py
--target <f> --port P`` (gunicorn: a master that loads the app, one forked worker), with the
environment of an embedded setup: SQLite (migrated with ``invoiceflow db migrate``), the files
document store, a JWT secret, and ``K_SINK`` pointing at a local sink that answers 202. The
clock runs from just before the process is spawned until a real first request is answered
2xx (an event function gets a valid binary CloudEvent for an invoice prepared for it; intake
a signed ``invoice.requested`` event; login gets Basic auth of a user made with ``invoiceflow
users add``; upload a document; download a real file). Median of ``ROUNDS`` (15) fresh
processes (1 in quick mode).

The baseline is the smallest functions-framework function (``bench/_hello.py``) started the
same way in the same run, **interleaved in pairs**: in each round every function is started
right after a fresh baseline process of its own, so a slow stretch of the machine (this VM's
start-up times move by a third within seconds) hits both sides of a pair alike. The target is
the ratio: the median over the rounds of (function / the baseline started just before it);
the absolute figures (medians; the baseline's over all its processes) are reported next to
it. Quick mode starts one baseline per round for every function. Login's first request
computes one argon2 hash (it exists to be slow), so its ratio is taken on its time minus that
hash, timed in this process in the same round just before the login process starts
(``argon2_runs_ms``; ``argon2_ms`` is their median).

Memory after the first request: RSS of the gunicorn worker and of the master, and the sum of
both processes' PSS (shared pages split between them), which is what a container is charged.

Modules: each function is also served once by ``bench/_serve.py`` (same app, one process),
which reports ``sys.modules`` after its first request.

The deployed package set: the bench runs from the dev venv (``requirements-dev.lock``), which
holds packages the image does not (``requirements.lock`` only), and some of them change what a
function imports: openpyxl imports numpy whenever it can (~110 ms and ~15 MB of render-xlsx's
cold start), Babel uses pytz for the local time zone when it is there. The functions' (and
the baseline's) processes therefore get, first on ``PYTHONPATH``, a directory of stubs that
raise ``ModuleNotFoundError`` for every top-level module of an installed distribution that
``requirements.lock`` does not pin (:func:`dev_only_modules`, listed in the section as
``not_deployed``): they import what they would import in the image. What this cannot remove
is the dev venv's own start-up cost (the ``.pth`` files of its editable installs run at every
interpreter start, baseline included); the image installs the package normally.

Bytecode: the image compiles its venv (``compileall``), the package included. The harness
compiles ``functions/invoiceflow`` the same way before the rounds (``compiled`` in the
section): with ``PYTHONDONTWRITEBYTECODE=1`` in the environment and no ``__pycache__`` in the
checkout, each process would otherwise compile every module of the package it imports, at
every start. The image then writes the compiled ``__init__`` of the package's records
(:mod:`invoiceflow.records`), the parsed metrics of its fonts
(:mod:`invoiceflow.render.fontcache`) and the part of Babel's data the documents read
(:mod:`invoiceflow.render.babeldata`); so does the harness (``records_cache``: the modules'
files, ``font_cache``: the fonts' entries, ``babel_data``: the locales' and the global one).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_DIR,
    EMAIL,
    FUNCTIONS_DIR,
    JWT_SECRET,
    PASSWORD,
    ROOT,
    VENV_BIN,
    Load,
    Sink,
    Target,
    children,
    example,
    example_names,
    free_port,
    log,
    median,
    pss_mb,
    rnd,
    rss_mb,
    verdict,
    wait_port,
)
from invoiceflow import naming, settings

#: every function of the product (settings.FUNCTIONS), by its entry file's name
FUNCTIONS = tuple(name.replace("-", "_") for name in settings.FUNCTIONS)
#: the key the bench's producer signs its invoice.requested events with (intake)
PRODUCER_KEY_ID = "bench"
PRODUCER_SECRET = "bench-producer-" + "y" * 40
#: top-level packages worth knowing about (heavy, or with a rule attached)
WATCHED = (
    "reportlab",
    "openpyxl",
    "PIL",
    "babel",
    "pika",
    "pymongo",
    "psycopg2",
    "jsonschema",
    "sendgrid",
    "argon2",
    "jwt",
    "cryptography",
    "weasyprint",
    "yaml",
    "numpy",
    "pytz",
)
#: these functions must import neither ReportLab nor openpyxl
NO_RENDER_LIBS = ("notify", "login", "download")
RENDER_LIBS = ("reportlab", "openpyxl")

TIME_TARGET = Target(
    "coldstart.{f}.vs_baseline",
    "coldstart",
    "{f}: process start to first 2xx / an empty function, interleaved",
    "<=",
    1.5,
    "x",
)
MEM_TARGET = Target(
    "coldstart.{f}.mb",
    "coldstart",
    "{f}: memory after the first request (PSS, gunicorn master + worker)",
    "<=",
    80,
    " MB",
)
IMPORT_TARGET = Target(
    "coldstart.{f}.render_libs",
    "coldstart",
    "{f}: imports neither reportlab nor openpyxl (count imported)",
    "<=",
    0,
    "",
)


def _target(t: Target, f: str) -> Target:
    return Target(t.id.format(f=f), t.section, t.description.format(f=f), t.op, t.limit, t.unit)


#: the project's own distribution: the image installs it (the function code)
OWN_DISTRIBUTION = "invoiceflow"


def _lock_names(path: Path) -> set[str]:
    """Normalized distribution names of a lock file (``name==version`` lines)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            names.add(_normalized(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]))
    return names


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_DUNDER_IMPORT = re.compile(r"""__import__\(\s*['"]([\w.]+)['"]""")


def _pth_imports() -> set[str]:
    """Modules the ``.pth`` files of site-packages import at every interpreter start
    (setuptools' ``_distutils_hack``, the editable installs' finders): a stub there would
    print an error at every start, so they stay importable."""
    import site

    names: set[str] = set()
    for directory in site.getsitepackages():
        for pth in Path(directory).glob("*.pth"):
            for line in pth.read_text(errors="replace").splitlines():
                if line.startswith(("import ", "import\t")):
                    names |= {n.split(".")[0] for n in _DUNDER_IMPORT.findall(line)}
                    for statement in line.split(";"):
                        words = statement.strip().split(None, 1)
                        if len(words) == 2 and words[0] == "import":
                            names |= {n.strip().split(".")[0] for n in words[1].split(",")}
    return names


def dev_only_modules() -> list[str]:
    """Top-level modules of every installed distribution that ``requirements.lock`` does not
    pin (the dev lock's numpy, pytz, pika, pytest..., the local runtime, and whatever else was
    installed into the venv, such as py-spy or setproctitle, which gunicorn uses when it can):
    the image has ``requirements.lock`` and the package alone, so a function cannot import
    them there. (openpyxl imports numpy whenever it can: ~110 ms and ~15 MB of render-xlsx's
    cold start that the image does not have; Babel uses pytz, when present, for the local
    zone.)"""
    import importlib.metadata

    prod = _lock_names(ROOT / "requirements.lock") | {OWN_DISTRIBUTION}
    by_dist: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(_normalized(dist), set()).add(module)
    deployed = {m for d in prod for m in by_dist.get(d, ())}
    found = {m for d, modules in by_dist.items() if d not in prod for m in modules}
    keep = deployed | _pth_imports()
    return sorted(m for m in found - keep if m.isidentifier())


def deployed_only_path(directory: Path) -> Path:
    """A directory of stubs, one per :func:`dev_only_modules` module, that raise
    ``ModuleNotFoundError`` as the image would: first on ``PYTHONPATH``, they hide the dev
    venv's extra packages from the functions' processes (and the baseline's)."""
    directory.mkdir(parents=True, exist_ok=True)
    for module in dev_only_modules():
        (directory / f"{module}.py").write_text(
            f"raise ModuleNotFoundError({module!r} + ' is not deployed (requirements.lock)', "
            f"name={module!r})\n"
        )
    return directory


def compile_package() -> Path:
    """Compile the package's modules to bytecode (``__pycache__``, ignored by git), as the
    image does (``compileall`` of its venv): a process started with
    ``PYTHONDONTWRITEBYTECODE=1`` (the image's setting, and often a CI's or a sandbox's) and no
    ``.pyc`` next to the sources would compile every module it imports at every start (~6 ms
    for ``invoiceflow/events.py`` alone, 1 ms from its ``.pyc``), which no deployed function
    does. The entry files (``functions/<f>.py``) stay uncompiled, as in the image (and as the
    empty function's file)."""
    package = FUNCTIONS_DIR / "invoiceflow"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.pop("PYTHONPYCACHEPREFIX", None)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return package


def _write_caches(module: str) -> list[Path]:
    """Run ``python -m <module>`` from the checkout, as the image's build step does, without
    ``PYTHONPYCACHEPREFIX`` (as :func:`compile_package`: the files go where the functions'
    processes look); the paths it prints, one a line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    out = subprocess.run(
        [sys.executable, "-m", module],
        cwd=FUNCTIONS_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return [Path(line) for line in out.stdout.splitlines()]


def warm_babel_data() -> list[Path]:
    """Write the part of Babel's data the documents read (``render/__babeldata__``, ignored by
    git) for every locale of their languages, as the image does after compiling (``python -m
    invoiceflow.render.babeldata``): a first render reads its locale's entry instead of
    unpickling and merging Babel's whole tables for it. The entries there."""
    return _write_caches("invoiceflow.render.babeldata")


def warm_records_cache() -> list[Path]:
    """Write the compiled ``__init__`` of the package's records (``__pycache__/*.records``),
    as the image does after compiling (``python -m invoiceflow.records``): a process then
    reads them instead of compiling ~50 small functions at every start. The files written."""
    return _write_caches("invoiceflow.records")


def warm_font_cache() -> list[Path]:
    """Write the parsed metrics of the shipped fonts (``render/fonts/__fontcache__``, ignored
    by git), as the image does after compiling (``python -m invoiceflow.render.fontcache``):
    a pod's first render reads them instead of parsing its fonts in pure Python. The entries
    there (written now or already current)."""
    return _write_caches("invoiceflow.render.fontcache")


class FunctionEnv:
    """A migrated SQLite database with a user, a files store, a sink: what the functions
    need to answer real requests. Also prepares invoices for the event functions."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-functions-"))
        self.sink = Sink().__enter__()
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("DATABASE_", "MONGODB_", "RABBITMQ_", "JWT_", "SENDGRID_", "K_SINK", "MAIL_")
            )
        }
        self.env = {
            **base,
            "DATABASE_URL": f"sqlite:///{self.tmp / 'invoiceflow.db'}",
            "MONGODB_URL": str(self.tmp / "files"),
            "DATA_DIR": str(self.tmp),
            "JWT_SECRET": JWT_SECRET,
            "K_SINK": self.sink.url,
            "PUBLIC_BASE_URL": "http://invoices.bench",
            "MAIL_OUTBOX_DIR": str(self.tmp / "outbox"),
            "LOG_LEVEL": "WARNING",
            "EVENT_PRODUCER_KEYS": f"{PRODUCER_KEY_ID}:{PRODUCER_SECRET}",
        }
        cli = str(VENV_BIN / "invoiceflow")
        subprocess.run(
            [cli, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [cli, "users", "add", EMAIL, "--password-stdin"],
            env=self.env,
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=120,
        )
        from invoiceflow import accounts
        from invoiceflow.context import Context
        from invoiceflow.settings import Settings

        self.ctx = Context(Settings.from_env(self.env))
        user = self.ctx.repo.get_user_by_email(EMAIL)
        assert user is not None
        self.user = user
        token = accounts.login(self.ctx.settings, self.ctx.repo, EMAIL, PASSWORD).token
        self.bearer = {"Authorization": f"Bearer {token}"}
        self.basic = {
            "Authorization": "Basic " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
        }
        # the functions' processes see the deployed package set only (set after the CLI
        # calls above, which are setup, not measured), compiled as in the image
        self.compiled = compile_package()
        self.records_cache = warm_records_cache()
        self.font_cache = warm_font_cache()
        self.babel_data = warm_babel_data()
        self.env.pop("PYTHONPYCACHEPREFIX", None)  # the .pyc files are in __pycache__
        stubs = deployed_only_path(self.tmp / "not-deployed")
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(stubs), self.env.get("PYTHONPATH", "")) if p
        )
        self._n = 0
        self._docs = [example(name) for name in example_names()]
        self._smallest = min(range(len(self._docs)), key=lambda i: len(json.dumps(self._docs[i])))
        self._download_fid: str | None = None

    def close(self) -> None:
        self.ctx.close()
        self.sink.__exit__()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- invoices -------------------------------------------------------------------------------

    def document(self, i: int | None = None) -> bytes:
        self._n += 1
        doc = self._docs[(self._n if i is None else i) % len(self._docs)]
        # each its own number (a number used twice is a 409); the legacy format's key
        key = "invoice_no" if "invoice_no" in doc else "number"
        return json.dumps({**doc, key: f"BENCH-{self._n}"}).encode()

    def new_invoice(self, i: int | None = None) -> Any:
        from invoiceflow.acceptance import accept_document

        invoice, _ = accept_document(self.ctx, self.user, self.document(i), source="http")
        return invoice

    def einvoice(self) -> Any:
        """An invoice that asks for the XML formats, so render-xml's first request writes CII
        and UBL (an e-invoice example meant for both: its parties have Peppol addresses, which
        the UBL's rules ask for)."""
        from invoiceflow.acceptance import accept_document

        self._n += 1
        doc = {**example("eu-reverse-charge.json"), "number": f"BENCH-{self._n}"}
        invoice, _ = accept_document(
            self.ctx, self.user, json.dumps(doc).encode(), source="http", formats=("cii", "ubl")
        )
        return invoice

    def rendered_invoice(self) -> Any:
        from invoiceflow.steps import render_document

        invoice = self.new_invoice(0)
        for fmt in ("pdf", "xlsx"):
            render_document(self.ctx, invoice, fmt)
        return invoice

    def uploaded_event(self, invoice: Any, **extensions: str) -> tuple[dict[str, str], bytes]:
        from invoiceflow.events import INVOICE_UPLOADED, make_event, to_http

        return to_http(
            make_event(
                INVOICE_UPLOADED,
                naming.UPLOAD_SOURCE,
                subject=invoice.id,
                data={"invoice_id": invoice.id, "owner_id": invoice.owner_id},
                extensions=extensions or None,
            )
        )

    # -- the first request of each function -----------------------------------------------------

    def request_for(self, function: str) -> tuple[str, str, dict[str, str], bytes]:
        """(method, path, headers, body) of a real first request for ``function``."""
        from invoiceflow.events import INVOICE_RENDERED, make_event, to_http

        if function == "hello":
            return "GET", "/", {}, b""
        if function == "login":
            return "POST", "/login", self.basic, b""
        if function == "upload":
            boundary = "benchboundary"
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="invoice.json"\r\nContent-Type: application/json\r\n\r\n'
                ).encode()
                + self.document()
                + f"\r\n--{boundary}--\r\n".encode()
            )
            headers = {**self.bearer, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            return "POST", "/upload", headers, body
        if function == "download":
            if self._download_fid is None:
                invoice = self.rendered_invoice()
                artifact = self.ctx.repo.get_artifact(invoice.id, "pdf")
                assert artifact is not None
                self._download_fid = artifact.file_id
            return "GET", naming.download_url("", self._download_fid), self.bearer, b""
        if function == "intake":
            from invoiceflow.events import INVOICE_REQUESTED
            from invoiceflow.signing import sign_event

            requested = make_event(
                INVOICE_REQUESTED,
                "/bench/orders",
                # an event's data is bounded (events.MAX_DATA_BYTES): the smallest example
                {"owner_email": EMAIL, "invoice": json.loads(self.document(self._smallest))},
            )
            headers, body = to_http(sign_event(requested, PRODUCER_KEY_ID, PRODUCER_SECRET))
            return "POST", "/", headers, body
        if function in ("render_pdf", "render_xlsx", "render_xml"):
            invoice = self.einvoice() if function == "render_xml" else self.new_invoice()
            headers, body = self.uploaded_event(invoice)
            return "POST", "/", headers, body
        if function == "notify":
            invoice = self.rendered_invoice()
            artifact = self.ctx.repo.get_artifact(invoice.id, "pdf")
            assert artifact is not None
            headers, body = to_http(
                make_event(
                    INVOICE_RENDERED,
                    naming.step_source("render-pdf"),
                    subject=invoice.id,
                    id=naming.rendered_event_id(invoice.id, "pdf"),
                    data={
                        "invoice_id": invoice.id,
                        "owner_id": invoice.owner_id,
                        "format": "pdf",
                        "file_id": artifact.file_id,
                        "size": artifact.size,
                        "sha256": artifact.sha256,
                    },
                )
            )
            return "POST", "/", headers, body
        if function == "dead_letter":
            error = base64.b64encode(
                json.dumps({"title": "Unprocessable", "detail": "bench"}).encode()
            ).decode()
            headers, body = self.uploaded_event(
                self.new_invoice(),
                knativeerrorcode="422",
                knativeerrordest="http://render-pdf.invoiceflow.svc.cluster.local",
                knativeerrordata=error,
            )
            return "POST", "/", headers, body
        raise ValueError(function)


def _source(function: str) -> Path:
    return BENCH_DIR / "_hello.py" if function == "hello" else FUNCTIONS_DIR / f"{function}.py"


def _send(
    port: int, request: tuple[str, str, dict[str, str], bytes], deadline: float
) -> tuple[int, str]:
    """(status, the start of the body when it is not 2xx)."""
    import requests

    method, path, headers, body = request
    while True:
        try:
            r = requests.request(
                method, f"http://127.0.0.1:{port}{path}", headers=headers, data=body, timeout=60
            )
            return r.status_code, "" if r.ok else r.text[:300]
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_function(env: FunctionEnv, function: str, port: int) -> subprocess.Popen[Any]:
    return subprocess.Popen(
        [
            str(VENV_BIN / "functions-framework"),
            "--source",
            str(_source(function)),
            "--target",
            function,
            "--port",
            str(port),
        ],
        env=env.env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def worker_pid(master: int, timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(master)
        if kids:
            return kids[0]
        time.sleep(0.01)
    return None


def one_start(env: FunctionEnv, function: str) -> dict[str, Any]:
    """Start the function under the CLI, send its first request; figures of that process."""
    request = env.request_for(function)  # prepared before the clock starts
    port = free_port()
    t0 = time.perf_counter()
    proc = start_function(env, function, port)
    try:
        wait_port(port, 60, proc)
        status, answer = _send(port, request, time.monotonic() + 60)
        elapsed = time.perf_counter() - t0
        worker = worker_pid(proc.pid)
        master_rss, master_pss = rss_mb(proc.pid), pss_mb(proc.pid)
        worker_rss = rss_mb(worker) if worker else None
        worker_pss = pss_mb(worker) if worker else None
    finally:
        _stop(proc)
    total_pss = (master_pss or 0) + (worker_pss or 0) if master_pss is not None else None
    return {
        "status": status,
        "answer": answer,
        "seconds": elapsed,
        "worker_rss_mb": worker_rss,
        "master_rss_mb": master_rss,
        "pss_mb": rnd(total_pss),
    }


def _bench_modules(port: int) -> list[str]:
    """The function's ``sys.modules`` (bench/_serve.py), asked without proxies; a busy machine
    can drop the answer, so it is asked up to three times, and a wrong answer is reported."""
    import requests

    answer = "no answer"
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(3):
            try:
                r = session.get(f"http://127.0.0.1:{port}/__bench/modules", timeout=30)
            except requests.RequestException as exc:
                answer = repr(exc)
                time.sleep(0.5)
                continue
            if r.status_code == 200 and r.headers.get("Content-Type") == "application/json":
                names: list[str] = r.json()
                return names
            answer = f"{r.status_code} {r.headers.get('Content-Type')} {r.text[:200]!r}"
            time.sleep(0.5)
    raise RuntimeError(f"/__bench/modules on port {port} answered {answer}")


def modules_of(env: FunctionEnv, function: str) -> dict[str, Any]:
    """sys.modules of the function after its first request (bench/_serve.py)."""
    request = env.request_for(function)
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(BENCH_DIR / "_serve.py"),
            "--source",
            str(_source(function)),
            "--target",
            function,
            "--port",
            str(port),
        ],
        env=env.env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, 60, proc)
        status, answer = _send(port, request, time.monotonic() + 60)
        elapsed = time.perf_counter() - t0
        rss, pss = rss_mb(proc.pid), pss_mb(proc.pid)
        if proc.poll() is not None:  # another process answered on its port
            raise RuntimeError(f"the {function} process exited ({proc.returncode}) on {port}")
        modules = _bench_modules(port)
    finally:
        _stop(proc)
    top = {m.split(".")[0] for m in modules}
    return {
        "status": status,
        "answer": answer,
        "seconds": elapsed,
        "rss_mb": rss,
        "pss_mb": pss,
        "count": len(modules),
        "watched": sorted(p for p in WATCHED if p in top),
    }


def argon2_ms(reps: int = 3) -> float | None:
    """Median time of the argon2 verification a login computes (the product's parameters)."""
    from invoiceflow.passwords import hash_password, verify_password

    stored = hash_password(PASSWORD)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        verify_password(stored, PASSWORD)
        times.append(time.perf_counter() - t0)
    middle = median(times)
    return None if middle is None else round(middle * 1000, 1)


def _row(function: str, processes: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    bad = [f"{r['status']} {r['answer']}" for r in runs if not 200 <= r["status"] < 300]
    secs = [r["seconds"] for r in runs]
    row: dict[str, Any] = {
        "function": function,
        "processes": processes,
        "statuses": sorted({r["status"] for r in runs}),
        "ms": rnd(None if (middle := median(secs)) is None else middle * 1000, 1),
        "runs_ms": [round(s * 1000, 1) for s in secs],
        "worker_rss_mb": rnd(
            median([r["worker_rss_mb"] for r in runs if r["worker_rss_mb"] is not None])
        ),
        "master_rss_mb": rnd(
            median([r["master_rss_mb"] for r in runs if r["master_rss_mb"] is not None])
        ),
        "pss_mb": rnd(median([r["pss_mb"] for r in runs if r["pss_mb"] is not None])),
    }
    if bad:
        row["error"] = f"non-2xx first answers: {bad}"
    return row


#: rounds of a full run: each starts every function once, each after its own baseline. A
#: start on this shared 2-core VM moves by a fifth between rounds (notify's nine starts in one
#: run: 231-326 ms), so a median of nine put the borderline functions on either side of the
#: target from run to run; fifteen (~11 s a round) narrow the median's spread by a quarter
ROUNDS = 15


def run(quick: bool) -> dict[str, Any]:
    processes = 1 if quick else ROUNDS
    env = FunctionEnv()
    load = Load()
    results = []
    targets = []
    names = ("hello", *FUNCTIONS)
    runs: dict[str, list[dict[str, Any]]] = {f: [] for f in names}
    mods_of: dict[str, dict[str, Any]] = {}
    # each function's baseline processes, one per round (full mode); quick mode pairs every
    # function with the round's one baseline
    paired: dict[str, list[dict[str, Any]]] = {f: [] for f in FUNCTIONS}
    try:
        hashes: list[float] = []  # the argon2 verification, timed in every round
        for round_ in range(processes):  # interleaved: the baseline, then every function
            for function in names:
                if function == "login":
                    hashes.append(argon2_ms(1) or 0.0)
                if quick:  # one process each: the one that also reports its modules
                    mods = mods_of[function] = modules_of(env, function)
                    runs[function].append(
                        {
                            "status": mods["status"],
                            "answer": mods["answer"],
                            "seconds": mods["seconds"],
                            "worker_rss_mb": mods["rss_mb"],
                            "master_rss_mb": None,
                            "pss_mb": mods["pss_mb"],
                        }
                    )
                else:
                    if function != "hello":  # its own baseline, started just before it
                        paired[function].append(one_start(env, "hello"))
                        runs["hello"].append(paired[function][-1])
                    runs[function].append(one_start(env, function))
            log(
                f"coldstart round {round_ + 1}/{processes}: "
                + ", ".join(f"{f} {runs[f][-1]['seconds'] * 1000:.0f}" for f in names)
                + " ms"
            )
        if not quick:
            for function in FUNCTIONS:
                mods_of[function] = modules_of(env, function)
        baseline = _row("hello", len(runs["hello"]), runs["hello"])
        hash_ms = rnd(median(hashes), 1)
        for function in FUNCTIONS:
            row = _row(function, processes, runs[function])
            compared = row["ms"]
            if function == "login":
                row["argon2_ms"] = hash_ms
                row["argon2_runs_ms"] = [round(h, 1) for h in hashes]
                compared = (
                    round(row["ms"] - hash_ms, 1) if row["ms"] and hash_ms is not None else None
                )
                row["ms_excluding_hash"] = compared
            # per round (the function against the empty function started just before it),
            # then the median: a slow stretch of the machine hits both sides of a pair
            hash_s = [h / 1000 if function == "login" else 0.0 for h in hashes]
            base_runs = paired[function] or runs["hello"]
            pairs = [
                (r["seconds"] - h) / b["seconds"]
                for r, b, h in zip(runs[function], base_runs, hash_s, strict=True)
                if b["seconds"] > 0
            ]
            row["vs_baseline"] = rnd(median(pairs), 2) if compared else None
            mods = mods_of[function]
            row["modules"] = mods
            render_libs = [p for p in RENDER_LIBS if p in mods["watched"]]
            targets.append(
                verdict(_target(TIME_TARGET, function), row["vs_baseline"], row.get("error"))
            )
            targets.append(verdict(_target(MEM_TARGET, function), row["pss_mb"]))
            if function in NO_RENDER_LIBS:
                targets.append(
                    verdict(
                        _target(IMPORT_TARGET, function),
                        len(render_libs),
                        ", ".join(render_libs) or None,
                    )
                )
            results.append(row)
            log(
                f"coldstart {function:<12} {row['ms']} ms ({row['vs_baseline']}x the empty "
                f"function; runs {row['runs_ms']}), worker RSS {row['worker_rss_mb']} MB, PSS "
                f"{row['pss_mb']} MB, imports {mods['watched']}"
            )
    finally:
        env.close()
    command = (
        "python bench/_serve.py --source functions/<f>.py --target <f> --port P "
        "(quick mode: one werkzeug process, not gunicorn)"
        if quick
        else "functions-framework --source functions/<f>.py --target <f> --port P"
    )
    return {
        "status": "ok" if all("error" not in r for r in results) else "partial",
        "command": command,
        # "pairs": each function after its own baseline process; True: one baseline per round
        "interleaved": True if quick else "pairs",
        "not_deployed": dev_only_modules(),
        "compiled": str(env.compiled.relative_to(ROOT)),
        "records_cache": len(env.records_cache),
        "font_cache": len(env.font_cache),
        "babel_data": len(env.babel_data),
        "load": load.done(),
        "baseline": baseline,
        "functions": results,
        "targets": targets,
    }
