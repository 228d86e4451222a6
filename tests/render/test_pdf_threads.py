"""The PDF renderer in several threads of a fresh process: ReportLab's lazily built tables are
complete before the first render (a worker process takes concurrent requests from its start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_fresh(script: str) -> str:
    """``script`` in a fresh interpreter (nothing imported yet); its standard output."""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT / "functions"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_reportlab_colour_names_are_filled_at_import() -> None:
    """ReportLab fills its colour-name table on first use without a lock; a thread that reads
    it meanwhile finds no "black" (seen as 'Invalid color value' in a fresh worker's first
    concurrent renders). Importing the renderer fills it."""
    script = (
        "import reportlab.lib.colors as c\n"
        "assert c._namedColors is None, 'filled before the renderer was imported'\n"
        "import invoiceflow.render.pdf\n"
        "assert c._namedColors is not None and 'black' in c._namedColors\n"
        "print(len(c._namedColors))\n"
    )
    assert int(_run_fresh(script)) > 100


def test_first_renders_in_parallel_threads_of_a_fresh_process() -> None:
    """Eight threads render at once as the first thing a fresh process does: all succeed."""
    script = (
        "import json, threading\n"
        "from pathlib import Path\n"
        "from invoiceflow.domain import parse_invoice\n"
        "from invoiceflow.render.pdf import render_pdf\n"
        "docs = [parse_invoice(p.read_bytes()).invoice\n"
        "        for p in sorted(Path('events/examples/invoices').glob('*.json'))[:8]]\n"
        "errors = []\n"
        "go = threading.Barrier(len(docs))\n"
        "def run(doc):\n"
        "    go.wait()\n"
        "    try:\n"
        "        assert render_pdf(doc).startswith(b'%PDF')\n"
        "    except BaseException as exc:\n"
        "        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=run, args=(d,)) for d in docs]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert not errors, errors\n"
    )
    _run_fresh(script)
