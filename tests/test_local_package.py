"""The local runtime is its own distribution (local/: invoiceflow-local): the core package never
imports it (nor pika), its wheel holds none of it, and the two wheels, installed, run
``invoiceflow dev`` away from the checkout (the manifests, the entry files and the demo invoice
are package data)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests

from support.api import EXAMPLES
from support.devprocess import Dev, embedded_env, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "local"
CORE_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCAL_PYPROJECT = tomllib.loads((LOCAL / "pyproject.toml").read_text())
#: what only the local runtime may import
LOCAL_ONLY = ("invoiceflow_local", "pika")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_never_imports_the_local_runtime_or_pika() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported(path) & set(LOCAL_ONLY))
        for path in (ROOT / "functions").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert not (ROOT / "functions" / "invoiceflow" / "runtime").exists()


def test_the_local_package_has_the_core_version_and_depends_on_it() -> None:
    version = CORE_PYPROJECT["project"]["version"]
    assert LOCAL_PYPROJECT["project"]["version"] == version
    assert f"invoiceflow=={version}" in LOCAL_PYPROJECT["project"]["dependencies"]
    core_deps = " ".join(CORE_PYPROJECT["project"]["dependencies"])
    assert "pika" not in core_deps


def test_the_package_data_are_links_to_the_one_copy_in_the_repository() -> None:
    bundled = LOCAL / "invoiceflow_local" / "bundled"
    assert (bundled / "knative").resolve() == ROOT / "knative"
    assert (bundled / "functions").resolve() == ROOT / "functions"
    assert (bundled / "demo-invoice.json").resolve() == EXAMPLES / "eur-two-rates.json"


def _wheel(source: Path, out: Path) -> Path:
    before = set(out.glob("*.whl"))
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--disable-pip-version-check", "-w", str(out), str(source)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


#: What the two wheels are built from: the packages and what their links point at.
SOURCES = ("pyproject.toml", "README.md", "functions", "events", "knative", "local")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The core's wheel and the local runtime's, built from a copy of the checkout's sources
    (links kept as links), so no build/ directory of the checkout (stale files, another
    worker's build) gets into them."""
    tree = tmp_path_factory.mktemp("source")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "node_modules")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tree / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(ROOT / name, tree / name)
    out = tmp_path_factory.mktemp("wheels")
    return _wheel(tree, out), _wheel(tree / "local", out)


@pytest.mark.slow
def test_the_core_wheel_holds_no_local_runtime(wheels: tuple[Path, Path]) -> None:
    core, _ = wheels
    with zipfile.ZipFile(core) as wheel:
        names = wheel.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line
            for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert [n for n in names if n.startswith("invoiceflow_local")] == []
    assert [n for n in names if n.startswith("invoiceflow/runtime")] == []
    assert not any("pika" in line for line in requires), requires


@pytest.mark.slow
def test_the_local_wheel_holds_the_files_its_links_point_at(wheels: tuple[Path, Path]) -> None:
    _, local = wheels
    with zipfile.ZipFile(local) as wheel:
        infos = {info.filename: info for info in wheel.infolist()}
        bundled = "invoiceflow_local/bundled/"
        for name in ("knative/50-triggers.yaml", "knative/ingress/gateway-api.yaml"):
            assert wheel.read(bundled + name) == (ROOT / name).read_bytes()
        entry_files = {n[len(bundled + "functions/") :] for n in infos if "/functions/" in n}
        assert entry_files == {p.name for p in (ROOT / "functions").glob("*.py")}
        demo = wheel.read(bundled + "demo-invoice.json")
        assert demo == (EXAMPLES / "eur-two-rates.json").read_bytes()
        # real files, not links (a link's mode has S_IFLNK in the high bits)
        assert all((info.external_attr >> 28) != 0o12 for info in infos.values())


@pytest.mark.slow
def test_invoiceflow_dev_runs_from_the_installed_wheels(
    wheels: tuple[Path, Path], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"),
            *("--disable-pip-version-check", "--target", str(site), *map(str, wheels)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"  # no knative/, no functions/ here
    elsewhere.mkdir()
    # not the checkout's functions/ or tests/
    env = embedded_env(tmp_path / "data", PYTHONPATH=str(site))
    # both packages come from the installed wheels, not from the checkout
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import invoiceflow as c, invoiceflow_local as l\nprint(c.__file__); print(l.__file__)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    files = where.stdout.split()
    assert len(files) == 2, where.stdout
    for line in files:
        assert Path(line).is_relative_to(site), where.stdout
    cli = [sys.executable, "-m", "invoiceflow.cli"]
    added = subprocess.run(
        [*cli, "users", "add", "wheel@example.com", "--password-stdin"],
        input="s3cret-passw0rd\n",
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    dev = Dev(env, tmp_path / "dev.log", command=cli, cwd=elsewhere).start()
    try:
        r = requests.post(
            f"{dev.url}/login", auth=("wheel@example.com", "s3cret-passw0rd"), timeout=30
        )
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        r = requests.post(
            f"{dev.url}/upload",
            headers=auth,
            files={"file": ("invoice.json", (EXAMPLES / "minimal.json").read_bytes())},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        assert wait_until_ready(dev.url, auth, [r.json()["invoice_id"]], timeout=60) == {}
    finally:
        dev.stop()
    log = (tmp_path / "dev.log").read_text(errors="replace")
    assert "Traceback" not in log, log
