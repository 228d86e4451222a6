"""The code stays clean: ruff (config in pyproject.toml) and mypy over the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    paths = [p for p in ("functions", "local", "tests", "bench") if (ROOT / p).is_dir()]
    out = subprocess.run(
        [str(BIN / "ruff"), "check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_applied() -> None:
    paths = [p for p in ("functions", "local", "tests", "bench", "scripts") if (ROOT / p).is_dir()]
    out = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, "run `ruff format`:\n" + out.stdout + out.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    out = subprocess.run([str(BIN / "mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cloudevents_is_imported_in_one_module_only() -> None:
    users = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "functions").rglob("*.py")
        if "import cloudevents" in p.read_text() or "from cloudevents" in p.read_text()
    )
    assert users == ["functions/invoiceflow/events.py"]


def test_functions_that_never_render_never_load_the_renderers() -> None:
    from invoiceflow.settings import FUNCTIONS

    never_render = [f.replace("-", "_") for f in FUNCTIONS if not f.startswith("render-")]
    assert never_render
    script = (
        "import sys\n"
        "from functions_framework import create_app\n"
        f"for name in {never_render!r}:\n"
        "    create_app(name, f'functions/{name}.py')\n"
        "heavy = sorted(m for m in ('reportlab', 'openpyxl', 'pika', 'pymongo', 'PIL', 'argon2')"
        " if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_event_steps_know_no_http() -> None:
    """Only the edge (invoiceflow.edge) meets Flask: the steps and all they import, intake's
    late imports included, load neither Flask nor werkzeug."""
    script = (
        "import sys\n"
        "import invoiceflow.steps, invoiceflow.acceptance, invoiceflow.signing\n"
        "import invoiceflow.domain, invoiceflow.emails, invoiceflow.naming\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug'))\n"
        "print(','.join(web))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_pre_commit_runs_the_checks_of_this_suite() -> None:
    """.pre-commit-config.yaml is valid and runs ruff, ruff format and mypy from the venv (the
    locked versions this suite runs)."""
    import yaml

    config = ROOT / ".pre-commit-config.yaml"
    out = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    hooks = {
        hook["id"]: hook["entry"]
        for repo in yaml.safe_load(config.read_text())["repos"]
        for hook in repo["hooks"]
    }
    assert hooks == {
        "ruff": ".venv/bin/ruff check --force-exclude",
        "ruff-format": ".venv/bin/ruff format --force-exclude",
        "mypy": ".venv/bin/mypy",
    }
