"""Memory stability of the render functions over many invoices.

Each render function is started as deployed (``functions-framework``, gunicorn master + one
worker, the embedded environment of :mod:`bench.coldstart`) and sent one ``uploaded`` event
after another for 1,000 different invoices (50 in quick mode), cycling through every example
in ``events/examples/invoices/`` (several locales and currencies, logos, CJK text, a 300-line
invoice), each with its own number. The worker's resident memory (VmRSS) is sampled as it
goes. Growth = (RSS at the end - RSS after the warm-up) / RSS after the warm-up, where the
warm-up is the first 10 % of the invoices (every example has been rendered at least once by
then, so caches and lazily imported modules are in place).
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from bench.coldstart import FunctionEnv, _stop, start_function, worker_pid
from bench.common import Load, Target, free_port, log, rnd, rss_mb, verdict, wait_port

#: the functions whose memory is sampled over many invoices: the renderers
RENDER_FUNCTIONS = ("render_pdf", "render_xlsx")
GROWTH = Target(
    "memory.{f}.growth_pct", "memory", "{f}: RSS growth after warm-up over the run", "<=", 10, " %"
)


def run_function(
    env: FunctionEnv, function: str, events: list[tuple[dict[str, str], bytes]]
) -> dict[str, Any]:
    import requests

    count = len(events)
    warmup = max(count // 10, 8)
    port = free_port()
    proc = start_function(env, function, port)
    samples: list[list[float]] = []
    failures = 0
    try:
        if not wait_port(port, 60, proc):
            raise RuntimeError(f"{function} did not start")
        worker = worker_pid(proc.pid)
        if worker is None:
            raise RuntimeError(f"{function}: no gunicorn worker")
        samples.append([0, rss_mb(worker) or 0.0])
        every = max(count // 100, 1)
        t0 = time.monotonic()
        with requests.Session() as s:
            for i, (headers, body) in enumerate(events, 1):
                r = s.post(f"http://127.0.0.1:{port}/", headers=headers, data=body, timeout=120)
                if not 200 <= r.status_code < 300:
                    failures += 1
                if i % every == 0 or i == count:
                    samples.append([i, rss_mb(worker) or 0.0])
        seconds = time.monotonic() - t0
    finally:
        _stop(proc)
    after_warmup = next(rss for i, rss in samples if i >= warmup)
    final = samples[-1][1]
    peak = max(rss for _, rss in samples)
    growth = (final - after_warmup) / after_warmup * 100 if after_warmup else None
    log(
        f"memory {function}: RSS {samples[0][1]} MB at start, {after_warmup} MB after "
        f"{warmup} invoices, {final} MB after {count} (growth {rnd(growth)} %), "
        f"{failures} failures, {seconds:.1f} s"
    )
    return {
        "function": function,
        "invoices": count,
        "warmup": warmup,
        "failures": failures,
        "seconds": rnd(seconds),
        "rss_start_mb": samples[0][1],
        "rss_after_warmup_mb": after_warmup,
        "rss_end_mb": final,
        "rss_max_mb": peak,
        "growth_pct": rnd(growth),
        "samples": samples,
    }


def run(quick: bool) -> dict[str, Any]:
    count = 16 if quick else 1000
    env = FunctionEnv()
    load = Load()
    results, targets = [], []
    try:
        log(f"memory: preparing {count} invoices")
        # the same invoices for both functions: each renders and stores only its own format
        events = [env.uploaded_event(env.new_invoice(i)) for i in range(count)]
        for function in RENDER_FUNCTIONS:
            try:
                row = run_function(env, function, events)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                row = {"function": function, "error": f"{exc.__class__.__name__}: {exc}"}
            results.append(row)
            t = Target(
                GROWTH.id.format(f=function),
                GROWTH.section,
                GROWTH.description.format(f=function),
                GROWTH.op,
                GROWTH.limit,
                GROWTH.unit,
            )
            note = row.get("error") or (
                f"{row['failures']} requests failed" if row.get("failures") else None
            )
            targets.append(verdict(t, row.get("growth_pct"), note))
    finally:
        env.close()
    return {
        "status": "ok"
        if all("error" not in r and not r.get("failures") for r in results)
        else "partial",
        "load": load.done(),
        "functions": results,
        "targets": targets,
    }
