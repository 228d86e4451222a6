"""openpyxl is imported without Pillow (invoiceflow.render.openpyxl_import) and the
workbooks are the same bytes; invoiceflow.render.hidden_imports.hidden hides a module only
while its block runs."""

from __future__ import annotations

import sys
import threading

import pytest

from invoiceflow.render.hidden_imports import hidden
from support.fresh import words_per_mode

WORKBOOKS = """
import hashlib, sys
if sys.argv[1] == "loaded-first":
    import PIL.Image
import invoiceflow.render.xlsx
from openpyxl.drawing import image
seen = ["PIL" in sys.modules, image.PILImage is not False]
from invoiceflow.domain import parse_invoice
from invoiceflow.render.xlsx import render_xlsx
for name in ("minimal.json", "de-facturx-b2b.json", "non-latin.json", "long-300-lines.json"):
    data = open(f"events/examples/invoices/{name}", "rb").read()
    seen.append(hashlib.sha256(render_xlsx(parse_invoice(data).invoice)).hexdigest())
seen.append("PIL" in sys.modules)
print(" ".join(map(str, seen)))
"""


def test_openpyxl_does_not_load_pillow_and_the_workbooks_are_the_same() -> None:
    """In a fresh process the renderer's openpyxl takes its "Pillow not installed" path and
    rendering never loads Pillow; the workbooks are the bytes they are when Pillow was loaded
    before openpyxl (nothing hidden)."""
    runs = words_per_mode(WORKBOOKS, ("hidden", "loaded-first"))
    hidden_run, loaded_first = runs["hidden"], runs["loaded-first"]
    assert hidden_run[:2] == ["False", "False"]  # not loaded; openpyxl without pictures
    assert hidden_run[-1] == "False"  # and rendering did not load it
    assert loaded_first[:2] == ["True", "True"]  # loaded before: nothing hidden
    assert hidden_run[2:-1] == loaded_first[2:-1]  # the same workbooks


def test_hidden_makes_a_module_unimportable_only_inside_the_block() -> None:
    name = "invoiceflow_hidden_probe"
    assert name not in sys.modules
    with hidden(name, "sys") as hid:
        assert hid == [name]  # sys is loaded: left alone
        with pytest.raises(ImportError):
            __import__(name)
        assert sys.modules["sys"] is sys
    assert name not in sys.modules  # importable again (not installed: its own error)
    with pytest.raises(ModuleNotFoundError, match="No module named"):
        __import__(name)


def test_hidden_leaves_a_module_that_was_imported_inside_the_block() -> None:
    """Something in the block may import the module for real (it replaced the None): it stays."""
    name = "json.tool"
    sys.modules.pop(name, None)
    try:
        with hidden(name):
            del sys.modules[name]  # as if the import system put the real module in
            import json.tool
        assert sys.modules[name] is json.tool
    finally:
        sys.modules.pop(name, None)


def test_hiding_is_one_block_at_a_time() -> None:
    """While one thread hides a module (importing a library), another thread's block waits:
    its library never meets the first one's hidden module (ReportLab needs Pillow, which
    openpyxl is imported without)."""
    entered = threading.Event()

    def other_block() -> None:
        with hidden("invoiceflow_hidden_probe_2"):
            entered.set()

    with hidden("invoiceflow_hidden_probe"):
        waiter = threading.Thread(target=other_block)
        waiter.start()
        assert not entered.wait(0.2)  # blocked while this block runs
    assert entered.wait(10)
    waiter.join(10)
