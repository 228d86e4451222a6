"""The cold-start processes see the deployed package set (requirements.lock), not the dev
venv's: openpyxl would otherwise import numpy (a dev dependency through matplotlib), which
the image does not have."""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def coldstart() -> Iterator[Any]:
    sys.path.insert(0, str(ROOT))
    try:
        yield importlib.import_module("bench.coldstart")
    finally:
        sys.path.remove(str(ROOT))


def test_dev_only_modules_are_those_the_image_lacks() -> None:
    with coldstart() as cold:
        hidden = set(cold.dev_only_modules())
    import importlib.util

    installed = {"matplotlib"} if importlib.util.find_spec("matplotlib") else set()  # bench plots
    assert {"numpy", "pytz", "pika", "pytest", "invoiceflow_local"} | installed <= hidden
    deployed = {"requests", "babel", "openpyxl", "reportlab", "jwt", "cryptography", "flask"}
    assert not (deployed | {"invoiceflow", "gunicorn", "functions_framework"}) & hidden
    assert "_distutils_hack" not in hidden  # setuptools' .pth imports it at every start
    assert not {m for m in hidden if m.startswith("__editable__")}


def test_render_xlsx_libraries_do_not_import_numpy_behind_the_stubs(tmp_path: Path) -> None:
    with coldstart() as cold:
        stubs = cold.deployed_only_path(tmp_path / "stubs")
    script = (
        "import sys\n"
        "import openpyxl\n"
        "from openpyxl.compat import numbers\n"
        "try:\n"
        "    import numpy\n"
        "except ModuleNotFoundError as exc:\n"
        "    assert exc.name == 'numpy', exc.name\n"
        "print(numbers.NUMPY, 'numpy' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
    assert out.stderr == ""  # no .pth file tripped over a stub


def test_the_package_is_compiled_before_the_processes_start() -> None:
    """As the image's compileall: with PYTHONDONTWRITEBYTECODE=1 and no .pyc, every process
    would compile each module it imports at every start."""
    import importlib.util

    with coldstart() as cold:
        package = cold.compile_package()
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 50
    stale = [
        str(src)
        for src in sources
        if not Path(importlib.util.cache_from_source(str(src))).is_file()
        or Path(importlib.util.cache_from_source(str(src))).stat().st_mtime < src.stat().st_mtime
    ]
    assert stale == []
