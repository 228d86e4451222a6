"""Instruction counts of the renderers (``valgrind --tool=callgrind``): a second figure next to
the timings, stable on a shared machine where the milliseconds are not.

For each renderer (PDF, XLSX) at 10 and 1,000 lines, one process under callgrind
(``bench/_callgrind_one.py``) builds the invoice, warms the renderer up on a 10-line invoice,
and makes one render call that is the only thing collected (``--collect-atstart=no
--toggle-collect=sys_call_tracing``: the call goes through ``sys.call_tracing``). The figure
is callgrind's ``Collected`` count: instructions executed by that one render, interpreter
included. One run each (the count barely moves between runs), the processes two at a time;
callgrind is ~50x slower than the code it measures, so this section takes minutes
(5.5 on a busy 2-core machine; each process is bounded by a 900 s timeout).

Skipped cleanly: without ``valgrind`` on ``PATH`` every figure is ``null`` with the note
"not measured: valgrind missing"; in quick mode it is not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import BENCH_DIR, ROOT, log

RENDERERS = ("pdf", "xlsx")
SIZES = (10, 1000)
MISSING = "not measured: valgrind missing"
_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def collected(stderr: str) -> int | None:
    """Callgrind's count of collected instructions (``==PID== Collected : N``)."""
    found = _COLLECTED.findall(stderr)
    return int(found[-1].replace(",", "")) if found else None


def measure(renderer: str, lines: int, valgrind: str, timeout: float = 900) -> dict[str, Any]:
    """Instructions of one ``renderer`` call at ``lines`` lines (one process under callgrind)."""
    env = dict(os.environ)
    paths = [str(ROOT / "functions"), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [
        valgrind,
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=sys_call_tracing",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(BENCH_DIR / "_callgrind_one.py"),
        renderer,
        str(lines),
    ]
    row: dict[str, Any] = {"renderer": renderer, "lines": lines, "instructions": None}
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        row["error"] = f"timed out after {timeout:.0f} s"
        return row
    count = collected(proc.stderr)
    if proc.returncode != 0:
        row["error"] = f"exit {proc.returncode}: {proc.stderr[-400:]}"
    elif not count:  # the toggle never fired: no sys_call_tracing symbol in this Python
        row["error"] = "nothing collected (is sys_call_tracing in the Python's symbols?)"
    else:
        row["instructions"] = count
    return row


def run(quick: bool, workers: int = 2) -> dict[str, Any]:
    if quick:
        return {"status": "skipped", "reason": "not run in quick mode (it takes minutes)"}
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        log(f"callgrind: {MISSING}")
        return {
            "status": "unavailable",
            "reason": MISSING,
            "results": [
                {"renderer": r, "lines": n, "instructions": None, "error": MISSING}
                for r in RENDERERS
                for n in SIZES
            ],
        }
    jobs = [(r, n) for n in SIZES for r in RENDERERS]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: measure(job[0], job[1], valgrind), jobs))
    for row in results:
        log(
            f"callgrind {row['renderer']} {row['lines']:>5} lines: "
            f"{row['instructions'] or row.get('error')}"
            + (" instructions" if row["instructions"] else "")
        )
    return {
        "status": "ok" if all(r["instructions"] for r in results) else "partial",
        "tool": "valgrind --tool=callgrind --toggle-collect=sys_call_tracing",
        "results": results,
    }
