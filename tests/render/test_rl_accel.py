"""ReportLab's C accelerator (the ``rl-accel`` dependency, imported as ``_rl_accel``): used when
installed, and the PDF bytes are the same with it and with ReportLab's pure-Python fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "events" / "examples" / "invoices"
#: every script the PDF draws (CJK, Arabic, Hebrew, ...), wrapped lines, many pages, QR codes
SAMPLES = ("non-latin.json", "long-300-lines.json", "ch-qr-bill.json", "de-facturx-b2b.json")

RENDER = """
import hashlib, json, sys
if sys.argv[1] == "python":
    sys.modules["_rl_accel"] = None  # ReportLab falls back to its Python functions
from reportlab.lib import rl_accel
from invoiceflow.domain import parse_invoice
from invoiceflow.render.pdf import render_pdf
digests = {}
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        pdf = render_pdf(parse_invoice(f.read()).invoice)
    digests[path] = [hashlib.sha256(pdf).hexdigest(), len(pdf)]
print(json.dumps({"c": sorted(rl_accel._c_funcs), "pdfs": digests}))
"""


def render(mode: str) -> dict[str, object]:
    paths = [str(EXAMPLES / name) for name in SAMPLES]
    done = subprocess.run(
        [sys.executable, "-c", RENDER, mode, *paths],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
        timeout=300,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_reportlab_uses_the_c_accelerator() -> None:
    import _rl_accel
    from reportlab.lib import rl_accel
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfgen import canvas
    from reportlab.platypus import paragraph

    assert sorted(rl_accel._c_funcs) == sorted(rl_accel.__all__)
    for name in rl_accel.__all__:
        assert getattr(rl_accel, name) is getattr(_rl_accel, name), name
    # the modules the renderer draws with took the C functions at import
    assert canvas.fp_str is _rl_accel.fp_str
    assert canvas.escapePDF is _rl_accel.escapePDF
    assert paragraph.sameFrag is _rl_accel.sameFrag
    assert pdfmetrics.instanceStringWidthT1 is _rl_accel.instanceStringWidthT1


def test_the_pdf_is_byte_identical_with_and_without_the_accelerator() -> None:
    accelerated, fallback = render("c"), render("python")
    assert accelerated["c"] and not fallback["c"]  # each run used what it says
    assert accelerated["pdfs"] == fallback["pdfs"]
