"""ReportLab's URI pattern is compiled on first use (invoiceflow.render.platypus_import), and
behaves as the compiled pattern; every other pattern compiles as usual."""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import subprocess
import sys

import pytest

from invoiceflow.render.platypus_import import DEFERRED_PATTERNS, URI_PATTERN_START, LazyPattern
from support.fresh import words_per_mode

FRESH_IMPORT = """
import importlib, json, re
compile_before = re.compile
import invoiceflow.render.pdf
from reportlab.platypus import paragraph
from reportlab.lib import PyFontify, textsplit
from invoiceflow.render.platypus_import import DEFERRED_PATTERNS, LazyPattern

def attribute(name):
    module, attr = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), attr)

deferred = {name: isinstance(attribute(name), LazyPattern) for name in DEFERRED_PATTERNS}
compiled_at_import = [n for n in DEFERRED_PATTERNS if deferred[n] and attribute(n)._compiled]
lazy_in_reportlab = sorted(
    f"{module.__name__}.{attr}"
    for module in list(__import__("sys").modules.values())
    if getattr(module, "__name__", "").startswith("reportlab")
    for attr, value in list(vars(module).items())
    if isinstance(value, LazyPattern)
)
pairs = paragraph._uri_split_pairs("https://example.com/invoices/2026/42")
# (its one user, cjkwrap, cannot run: ReportLab's module does not import reduce)
wrapped = textsplit.rx.sub(r"\\1|", "日本語のテキスト and words")
tags = PyFontify.fontify("def f(x):  # note\\n    return 'a'\\n")
print(json.dumps({
    "deferred": deferred,
    "compiled_at_import": compiled_at_import,
    "lazy_in_reportlab": lazy_in_reportlab,
    "compiled_after_use": [
        n for n in DEFERRED_PATTERNS if deferred[n] and attribute(n)._compiled is not None
    ],
    "compile_restored": re.compile is compile_before,
    "other_patterns": type(paragraph._hy_pfx_pat).__name__,
    "pairs": pairs,
    "wrapped": wrapped,
    "tags": tags,
}))
"""

# the same uses with every pattern compiled eagerly (platypus imported without this module)
EAGER = """
import json
from reportlab.lib import PyFontify, textsplit
print(json.dumps({
    "wrapped": textsplit.rx.sub(r"\\1|", "日本語のテキスト and words"),
    "tags": PyFontify.fontify("def f(x):  # note\\n    return 'a'\\n"),
}))
"""


def test_a_fresh_import_defers_reportlabs_unused_patterns_and_nothing_else() -> None:
    """Fails when a ReportLab release changes one of the patterns: then it is not deferred
    any more (render-pdf's cold start is longer: ~28 ms for the URI pattern); update
    DEFERRED_PATTERNS. Each deferred pattern gives what the eagerly compiled one gives."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORT],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
        timeout=120,
    )
    seen = json.loads(done.stdout)
    assert seen["deferred"] == dict.fromkeys(DEFERRED_PATTERNS, True)
    assert seen["lazy_in_reportlab"] == sorted(DEFERRED_PATTERNS)  # and no other
    assert seen["compiled_at_import"] == []
    # used above: the URI pattern, textsplit's and PyFontify's; safe_eval's by nothing
    assert seen["compiled_after_use"] == [
        "reportlab.platypus.paragraph.uri_pat",
        "reportlab.lib.textsplit.rx",
        "reportlab.lib.PyFontify.matchRE",
    ]
    assert seen["compile_restored"] is True
    assert seen["other_patterns"] == "Pattern"
    # what ReportLab's own eager pattern splits the URI into
    assert seen["pairs"] == [
        ["https://example.com/invoices/2026/", "42"],
        ["https://example.com/invoices/", "2026/42"],
        ["https://example.com/", "invoices/2026/42"],
        ["https://", "example.com/invoices/2026/42"],
    ]
    eager = json.loads(
        subprocess.run(
            [sys.executable, "-c", EAGER],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert seen["wrapped"] == eager["wrapped"] == "日|本|語|の|テ|キ|ス|ト| and words"
    assert seen["tags"] == eager["tags"] and eager["tags"]


def test_a_lazy_pattern_matches_as_the_compiled_one() -> None:
    source = URI_PATTERN_START + r"([a-z.]+)(/\S*)?\Z"
    lazy, eager = LazyPattern(source, re.I), re.compile(source, re.I)
    for text in ("HTTPS://Example.com/a", "ftp://x.org", "no uri here", "mailto:a@b"):
        got, want = lazy.match(text), eager.match(text)
        assert (got and got.groups()) == (want and want.groups())
    assert lazy.pattern == source
    assert lazy.flags == eager.flags
    assert lazy.compiled() is lazy.compiled()


def test_a_lazy_pattern_copied_or_pickled_is_the_compiled_pattern() -> None:
    lazy = LazyPattern(URI_PATTERN_START, re.I)
    pickled = pickle.loads(pickle.dumps(lazy))  # noqa: S301 - our own bytes, just made
    for made in (copy.copy(lazy), copy.deepcopy(lazy), pickled):
        assert made == re.compile(URI_PATTERN_START, re.I)
    with pytest.raises(AttributeError):
        lazy._not_a_pattern_attribute  # noqa: B018 - its own names are not the pattern's


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
    runs = words_per_mode(HARFBUZZ, ("deferred", "loaded-first"))
    deferred, loaded_first = runs["deferred"], runs["loaded-first"]
    # after the import: not loaded, and ReportLab took its "not installed" path
    assert deferred[:2] == ["False", "False"]
    assert loaded_first[:2] == ["True", "True"]
    # a Latin document needs no shaping; the non-Latin one loads HarfBuzz
    assert deferred[2] == "False" and deferred[4] == "True"
    assert deferred[3] == loaded_first[3]  # the same PDFs
    assert deferred[5] == loaded_first[5]
