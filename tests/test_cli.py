"""The ``invoiceflow`` command line: render, users, db migrate; dev and demo from the local
runtime's package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from support.api import EXAMPLES

CLI = str(Path(sys.executable).parent / "invoiceflow")


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=300, env=env, input=stdin
    )


def test_render_batch_renders_the_valid_files_and_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    doc = json.loads((EXAMPLES / "minimal.json").read_text())
    doc["currency"] = "ZZZ"
    doc["items"][0]["quantity"] = "-1"
    bad.write_text(json.dumps(doc))
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    out = tmp_path / "out"
    files = [
        str(EXAMPLES / "legacy-flat.json"),
        str(bad),
        str(EXAMPLES / "jpy-no-decimals.json"),
        str(broken),
        str(tmp_path / "missing.json"),
    ]
    result = run("render", *files, "--out", str(out))
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "INV-2026-001.pdf",
        "INV-2026-001.xlsx",
        "JP-2026-0815.pdf",
        "JP-2026-0815.xlsx",
    ]
    err = result.stderr
    assert f"{bad}: 2 problems" in err and "/currency" in err and "/items/0/quantity" in err
    assert f"{broken}: malformed JSON" in err
    assert "missing.json: cannot read" in err
    assert "3 of 5 file(s) had problems" in err
    assert "invoice/s" in err or "invoice]" in err or "%|" in err  # the progress bar
    text = PdfReader(out / "INV-2026-001.pdf").pages[0].extract_text()
    assert "INV-2026-001" in text and "3,677.66" in text


def test_render_one_format_and_exit_zero(tmp_path: Path) -> None:
    result = run(
        "render", str(EXAMPLES / "minimal.json"), "--out", str(tmp_path), "--format", "xlsx"
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["MIN-1.xlsx"]
    assert run("render", "x.json", "--out", str(tmp_path), "--format", "doc").returncode == 2


def test_users_and_migrate(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "PATH": "/usr/bin:/bin"}
    first = run("db", "migrate", env=env)
    assert first.returncode == 0 and "0001" in first.stdout
    again = run("db", "migrate", env=env)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert (
        run(
            "users", "add", "ann@example.com", "--password-stdin", env=env, stdin="long-enough-pw\n"
        ).returncode
        == 0
    )
    dup = run(
        "users", "add", "ANN@example.com", "--password-stdin", env=env, stdin="long-enough-pw\n"
    )
    assert dup.returncode == 2 and "already exists" in dup.stderr
    assert (
        run(
            "users", "add", "x@example.com", "--password-stdin", env=env, stdin="short\n"
        ).returncode
        != 0
    )
    assert run("users", "disable", "ann@example.com", env=env).returncode == 0
    listing = run("users", "list", env=env).stdout
    assert "ann@example.com\tdisabled" in listing
    assert run("users", "disable", "nobody@example.com", env=env).returncode == 2
    bad = run("db", "migrate", env={**env, "DATABASE_URL": "mysql://x", "JWT_SECRET": "short"})
    assert bad.returncode == 2
    assert "/DATABASE_URL" in bad.stderr and "/JWT_SECRET" in bad.stderr  # all at once


def test_users_unlock_ends_a_login_lockout(tmp_path: Path) -> None:
    from invoiceflow.accounts import account_key
    from invoiceflow.stores import open_repository
    from invoiceflow.stores.protocols import LoginPolicy

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    policy = LoginPolicy(free_failures=1, base_delay=600)
    with open_repository(url) as repo:
        repo.migrate()
        repo.reserve_login_attempt(account_key("Ann@Example.com"), None, policy)
        assert repo.reserve_login_attempt(account_key("ann@example.com"), None, policy) > 0
    env = {
        "DATABASE_URL": url,
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    result = run("users", "unlock", " ANN@example.com", env=env)
    assert result.returncode == 0 and "unlocked" in result.stdout, result.stderr
    with open_repository(url) as repo:
        assert repo.reserve_login_attempt(account_key("ann@example.com"), None, policy) == 0
    assert "no failed logins" in run("users", "unlock", "bob@example.com", env=env).stdout


def test_render_never_overwrites_a_file_of_the_same_batch(tmp_path: Path) -> None:
    result = run(
        "render",
        str(EXAMPLES / "minimal.json"),
        str(EXAMPLES / "minimal.json"),
        "--out",
        str(tmp_path),
        "-q",
    )
    assert result.returncode == 1
    assert "MIN-1.pdf was not overwritten" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MIN-1.pdf", "MIN-1.xlsx"]


def test_dev_and_demo_come_from_the_local_package_loaded_only_for_the_parser() -> None:
    script = (
        "import sys\n"
        "import invoiceflow.cli as cli\n"
        "assert not [m for m in sys.modules if m.startswith('invoiceflow_local')]\n"
        "parser = cli.build_parser()\n"
        "heavy = [m for m in ('invoiceflow_local.dev', 'invoiceflow_local.broker', 'pika')"
        " if m in sys.modules]\n"
        "args = parser.parse_args(['dev', '--port', '9'])\n"
        "print(args.func.__module__, args.port, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["invoiceflow_local.commands", "9", "[]"]


def test_without_the_local_package_dev_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from invoiceflow import cli

    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    for argv in (["dev", "--port", "8080"], ["demo"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"invoiceflow {argv[0]} is part of the local runtime" in err
        assert "pip install -e . -e ./local" in err and "Traceback" not in err
    assert cli.build_parser().parse_args(["db", "migrate"]).func is cli.cmd_db_migrate
