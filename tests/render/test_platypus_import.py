"""ReportLab's URI pattern is compiled on first use (invoiceflow.render.platypus_import), and
behaves as the compiled pattern; every other pattern compiles as usual."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from invoiceflow.render.platypus_import import URI_PATTERN_START, LazyPattern

ROOT = Path(__file__).resolve().parents[2]

FRESH_IMPORT = """
import json, re
compile_before = re.compile
import invoiceflow.render.pdf
from reportlab.platypus import paragraph
from invoiceflow.render.platypus_import import LazyPattern
deferred = isinstance(paragraph.uri_pat, LazyPattern)
compiled_at_import = deferred and paragraph.uri_pat._compiled is not None
pairs = paragraph._uri_split_pairs("https://example.com/invoices/2026/42")
print(json.dumps({
    "deferred": deferred,
    "compiled_at_import": compiled_at_import,
    "compiled_after_use": paragraph.uri_pat._compiled is not None if deferred else None,
    "compile_restored": re.compile is compile_before,
    "other_patterns": type(paragraph._hy_pfx_pat).__name__,
    "pairs": pairs,
}))
"""


def test_a_fresh_import_defers_reportlabs_uri_pattern_and_nothing_else() -> None:
    """Fails when a ReportLab release changes the pattern: then nothing is deferred any more
    (and render-pdf's cold start is ~28 ms longer); update URI_PATTERN_START."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORT],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
        timeout=120,
    )
    seen = json.loads(done.stdout)
    assert seen["deferred"] is True
    assert seen["compiled_at_import"] is False
    assert seen["compiled_after_use"] is True
    assert seen["compile_restored"] is True
    assert seen["other_patterns"] == "Pattern"
    # what ReportLab's own eager pattern splits the URI into
    assert seen["pairs"] == [
        ["https://example.com/invoices/2026/", "42"],
        ["https://example.com/invoices/", "2026/42"],
        ["https://example.com/", "invoices/2026/42"],
        ["https://", "example.com/invoices/2026/42"],
    ]


def test_a_lazy_pattern_matches_as_the_compiled_one() -> None:
    source = URI_PATTERN_START + r"([a-z.]+)(/\S*)?\Z"
    lazy, eager = LazyPattern(source, re.I), re.compile(source, re.I)
    for text in ("HTTPS://Example.com/a", "ftp://x.org", "no uri here", "mailto:a@b"):
        got, want = lazy.match(text), eager.match(text)
        assert (got and got.groups()) == (want and want.groups())
    assert lazy.pattern == source
    assert lazy.flags == eager.flags
    assert lazy.compiled() is lazy.compiled()


HARFBUZZ = """
import hashlib, sys
if sys.argv[1] == "loaded-first":
    import uharfbuzz
import invoiceflow.render.pdf
from reportlab.pdfbase import ttfonts
seen = ["uharfbuzz" in sys.modules, ttfonts.uharfbuzz is not None]
from invoiceflow.domain import parse_invoice
from invoiceflow.render.pdf import render_pdf
for name in ("minimal.json", "non-latin.json"):
    data = open(f"events/examples/invoices/{name}", "rb").read()
    pdf = render_pdf(parse_invoice(data).invoice)
    seen += ["uharfbuzz" in sys.modules, hashlib.sha256(pdf).hexdigest()]
print(" ".join(map(str, seen)))
"""


def test_reportlab_does_not_load_harfbuzz_and_shaped_text_prints_the_same() -> None:
    """Platypus is imported without HarfBuzz (ReportLab's own shaping is never used); a
    document that needs shaping loads it (invoiceflow.render.scripts), and its PDF is the
    bytes it is when HarfBuzz was loaded before ReportLab (nothing deferred)."""
    runs = {}
    for mode in ("deferred", "loaded-first"):
        done = subprocess.run(
            [sys.executable, "-c", HARFBUZZ, mode],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=120,
        )
        runs[mode] = done.stdout.split()
    deferred, loaded_first = runs["deferred"], runs["loaded-first"]
    # after the import: not loaded, and ReportLab took its "not installed" path
    assert deferred[:2] == ["False", "False"]
    assert loaded_first[:2] == ["True", "True"]
    # a Latin document needs no shaping; the non-Latin one loads HarfBuzz
    assert deferred[2] == "False" and deferred[4] == "True"
    assert deferred[3] == loaded_first[3]  # the same PDFs
    assert deferred[5] == loaded_first[5]
