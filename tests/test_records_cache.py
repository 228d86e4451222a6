"""The compiled ``__init__`` of records is kept beside the module's bytecode
(invoiceflow.records: ``__pycache__/<module>.<tag>.records``), used when its generated source
is the same, and never trusted when it is of another interpreter, format or damaged."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from invoiceflow import records

ROOT = Path(__file__).resolve().parents[1]

MODULE = '''
from dataclasses import field
from invoiceflow.records import record


@record
class Point:
    """A point."""

    x: int
    y: int = 0


@record
class Tagged:
    name: str
    tags: list[str] = field(default_factory=list)
'''

# counts the compilations records makes, then uses the module's records
PROBE = """
import inspect, json, sys
import invoiceflow.records as records
made = []
real = compile
def counting(*args, **kwargs):
    made.append(args[1])
    return real(*args, **kwargs)
records.compile = counting
import probe_records as m
p, t = m.Point(1), m.Tagged("a")
print(json.dumps({
    "compiled": made,
    "point": [p.x, p.y, p == m.Point(1, 0), repr(p)],
    "tagged": [t.tags, repr(m.Tagged("b", ["c"]))],
    "signature": str(inspect.signature(m.Tagged)),
    "code": [m.Point.__init__.__code__.co_code.hex(), repr(m.Tagged.__init__.__code__.co_consts)],
    "missing": str(records.cache_path(m)) if not records.cache_path(m).exists() else None,
}))
"""


def _env(path: Path, *, bytecode: bool) -> dict[str, str]:
    """This environment with ``path`` and the package first on the path, bytecode written
    (or not) into each module's own ``__pycache__``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT / "functions")])}
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(tmp_path: Path, *, bytecode: bool = True, code: str = PROBE) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tmp_path, bytecode=bytecode),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def _cache(tmp_path: Path) -> Path:
    tag = sys.implementation.cache_tag
    return tmp_path / "__pycache__" / f"probe_records.{tag}.records"


@pytest.fixture
def module(tmp_path: Path) -> Path:
    (tmp_path / "probe_records.py").write_text(MODULE)
    return tmp_path


def test_a_second_process_compiles_nothing_and_its_records_behave_the_same(module: Path) -> None:
    first = _run(module)
    assert first["compiled"] == ["<record Point>", "<record Tagged>"]
    cache = _cache(module)
    assert cache.exists() and first["missing"] is None
    assert stat.S_IMODE(cache.stat().st_mode) == 0o644  # readable by another user (a pod)
    assert cache.read_bytes().startswith(importlib.util.MAGIC_NUMBER)
    second = _run(module)
    assert second["compiled"] == []
    for key in ("point", "tagged", "signature", "code"):  # the same code, not compiled again
        assert second[key] == first[key]
    assert second["point"] == [1, 0, True, "Point(x=1, y=0)"]
    assert second["tagged"] == [[], "Tagged(name='b', tags=['c'])"]
    assert second["signature"] == "(name: str, tags: list[str] = <factory>) -> None"


def test_a_changed_record_is_compiled_again_and_kept_with_the_others(module: Path) -> None:
    _run(module)
    source = module / "probe_records.py"
    source.write_text(MODULE.replace("    y: int = 0\n", "    y: int = 0\n    z: int = 5\n"))
    changed = _run(module, code=PROBE.replace("p.x, p.y,", "p.x, p.y, p.z,"))
    assert changed["compiled"] == ["<record Point>"]  # Tagged's source is the same
    assert changed["point"][:3] == [1, 0, 5]
    again = _run(module, code=PROBE.replace("p.x, p.y,", "p.x, p.y, p.z,"))
    assert again["compiled"] == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        b"\x00\x00\r\n" + b"\x01" + b"\x00" * 20,  # another interpreter's magic number
        importlib.util.MAGIC_NUMBER + bytes([records.CODE_CACHE_FORMAT + 1]) + b"{}",
        importlib.util.MAGIC_NUMBER + bytes([records.CODE_CACHE_FORMAT]) + b"\xff\x00",
        # well-formed marshal, but not {source: code}
        importlib.util.MAGIC_NUMBER
        + bytes([records.CODE_CACHE_FORMAT])
        + __import__("marshal").dumps({"<record Point>\nx": "not code"}),
    ],
    ids=["empty", "garbage", "other-magic", "other-format", "damaged", "wrong-types"],
)
def test_a_file_that_is_not_ours_is_not_used_and_is_rewritten(module: Path, content: bytes) -> None:
    cache = _cache(module)
    cache.parent.mkdir()
    cache.write_bytes(content)
    run = _run(module)
    assert run["compiled"] == ["<record Point>", "<record Tagged>"]
    assert run["point"] == [1, 0, True, "Point(x=1, y=0)"]
    assert _run(module)["compiled"] == []  # rewritten with both


def test_no_file_when_python_writes_no_bytecode(module: Path) -> None:
    run = _run(module, bytecode=False)
    assert run["compiled"] == ["<record Point>", "<record Tagged>"]
    assert run["missing"] == str(_cache(module))
    assert not _cache(module).exists()


def test_an_unwritable_path_is_skipped(module: Path) -> None:
    """Where the file cannot be made (here __pycache__ is a file: as a read-only directory,
    which root, running the suite in CI, could still write), records still work."""
    (module / "__pycache__").write_text("not a directory")
    run = _run(module)
    assert run["compiled"] == ["<record Point>", "<record Tagged>"]
    assert run["point"] == [1, 0, True, "Point(x=1, y=0)"]


def _package(tmp_path: Path, **modules: str) -> Path:
    """A package ``probepkg`` in ``tmp_path``: each keyword a module's dotted path under it
    (``sub.two``; its packages made) and its source."""
    package = tmp_path / "probepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in modules.items():
        *packages, module = name.split(".")
        directory = package.joinpath(*packages)
        if packages and not directory.exists():
            directory.mkdir(parents=True)
            (directory / "__init__.py").write_text("")
        (directory / f"{module}.py").write_text(source)
    return package


def _command(package: Path) -> subprocess.CompletedProcess[str]:
    """``python -m invoiceflow.records probepkg``, with PYTHONDONTWRITEBYTECODE set."""
    return subprocess.run(
        [sys.executable, "-m", "invoiceflow.records", package.name],
        env=_env(package.parent, bytecode=False),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_writes_the_packages_files_even_without_bytecode(tmp_path: Path) -> None:
    """``python -m invoiceflow.records`` (the image's build step) writes a file for every
    module of the package with records, with PYTHONDONTWRITEBYTECODE set, and prints them."""
    package = _package(
        tmp_path,
        one=MODULE,
        **{"sub.two": MODULE.replace("class Point", "class Other")},
        plain="X = 1\n",  # no records: no file
        broken="raise RuntimeError('needs a server')\n",
    )
    done = _command(package)
    assert done.returncode == 0, done.stderr
    tag = sys.implementation.cache_tag
    assert done.stdout.splitlines() == [
        str(package / "__pycache__" / f"one.{tag}.records"),
        str(package / "sub" / "__pycache__" / f"two.{tag}.records"),
    ]
    assert "probepkg.broken: not imported (RuntimeError)" in done.stderr
    assert not list(package.glob("__pycache__/*.pyc"))  # bytecode itself was not written


def test_the_command_keeps_only_the_records_there_are(tmp_path: Path) -> None:
    """A record changed since the file was written: the command writes the file with the
    records the module makes now (the old entry goes)."""
    package = _package(tmp_path, one=MODULE)
    assert _command(package).returncode == 0
    (package / "one.py").write_text(MODULE.replace("    y: int = 0\n", ""))
    assert _command(package).returncode == 0
    cache = package / "__pycache__" / f"one.{sys.implementation.cache_tag}.records"
    keys = __import__("marshal").loads(cache.read_bytes()[len(importlib.util.MAGIC_NUMBER) + 1 :])
    assert sorted(k.split("\n", 1)[0] for k in keys) == ["<record Point>", "<record Tagged>"]
    assert all("y=" not in k for k in keys)  # the old Point's entry went


def test_the_command_fails_when_it_writes_nothing(tmp_path: Path) -> None:
    """A build step that should write the files fails loudly when none was written: a
    package without records, or one whose subpackage cannot even be walked."""
    package = _package(tmp_path, plain="X = 1\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("raise ValueError('broken package')\n")
    done = _command(package)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "probepkg.sub: not imported (ValueError)" in done.stderr  # reported, not raised
