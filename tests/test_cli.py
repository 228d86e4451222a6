"""The ``invoiceflow`` command line: render, users, db migrate; dev and demo from the local
runtime's package."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from support.api import EXAMPLES

CLI = str(Path(sys.executable).parent / "invoiceflow")


def run(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The installed ``invoiceflow`` script with this checkout's code (PYTHONPATH), stdin a
    pipe (never the terminal) and no controlling terminal."""
    if env is not None:
        env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), **env}
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        input=stdin or "",
        cwd=cwd,
        start_new_session=True,
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


def test_render_e_invoices_and_report_broken_rules_by_id(tmp_path: Path) -> None:
    import dataclasses

    from invoiceflow.domain import to_json
    from support.einvoice_samples import german_b2b

    good = tmp_path / "good.json"
    good.write_text(json.dumps(to_json(german_b2b())))
    inv = german_b2b(number="RE-2026-0043")
    seller = dataclasses.replace(inv.seller, vat_id=None, tax_id=None)
    breaks = tmp_path / "breaks.json"
    breaks.write_text(json.dumps(to_json(dataclasses.replace(inv, seller=seller))))
    out = tmp_path / "out"
    result = run(
        "render", str(good), str(breaks), "--out", str(out), "--format", "facturx,ubl,cii", "-q"
    )
    assert result.returncode == 1, result.stderr  # as for any other invalid document
    # nothing of the broken document is written; the files named by their format's suffix
    assert sorted(p.name for p in out.iterdir()) == [
        "RE-2026-0042-ubl.xml",
        "RE-2026-0042.pdf",
        "RE-2026-0042.xml",
    ]
    assert (out / "RE-2026-0042.pdf").read_bytes().startswith(b"%PDF")
    assert b"CrossIndustryInvoice" in (out / "RE-2026-0042.xml").read_bytes()
    assert b"urn:oasis:names:specification:ubl" in (out / "RE-2026-0042-ubl.xml").read_bytes()
    err = result.stderr
    assert f"{breaks}: " in err and "(rules BR-S-02" in err, err
    assert re.search(r"^  BR-S-02 /seller\S*: \S", err, re.MULTILINE), err
    assert "1 of 2 file(s) had problems" in err
    both = run("render", str(good), "--out", str(out), "--format", "pdf,facturx")
    assert both.returncode == 2
    assert "--format: pdf or facturx, not both" in both.stderr


def test_users_and_migrate(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
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


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """``invoiceflow users list | head -1``: when the output's reader has gone (a closed pipe),
    the command stops quietly with a non-zero status, never a BrokenPipeError traceback."""
    env = {"DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    added = run("users", "add", "ann@example.com", "--password-stdin", env=env, stdin="pw-long-1\n")
    assert added.returncode == 0, added.stderr
    (tmp_path / "out").mkdir()
    for args in (("users", "list"), ("render", str(EXAMPLES / "minimal.json"), "--out", "out")):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader left before the first line
        try:
            result = subprocess.run(
                [CLI, *args],
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=300,
                cwd=tmp_path,
                env={"PYTHONPATH": os.environ.get("PYTHONPATH", ""), **env},
            )
        finally:
            os.close(write_end)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, (
            result.stderr
        )


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


# -- a CLI that explains itself --------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every (sub)command under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _commands(sub)


def test_every_command_explains_itself_in_plain_text() -> None:
    from invoiceflow import cli
    from invoiceflow.settings import ENV_VARS

    names = {var.name for var in ENV_VARS}
    commands = list(_commands(cli.build_parser()))
    assert len(commands) >= 14  # invoiceflow, render, db, migrate, ..., dev, demo
    for parser in commands:
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text, parser.prog  # no reST
        assert parser.description and parser.epilog, f"{parser.prog} has no description"
        assert "example" in parser.epilog, f"{parser.prog} has no example"
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog}: {action.option_strings or action.dest}"
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if leaf:
            assert "environment:" in parser.epilog, parser.prog
            named = re.findall(r"^  ([A-Z][A-Z_]+)  ", parser.epilog, re.M)
            assert set(named) <= names, parser.prog
    by_prog = {p.prog: p.epilog or "" for p in commands}
    assert "DATABASE_URL" in by_prog["invoiceflow users add"]
    assert "EVENT_PRODUCER_KEYS" in by_prog["invoiceflow events sign"]
    assert "DATA_DIR" in by_prog["invoiceflow dev"] and "RABBITMQ_URL" in by_prog["invoiceflow dev"]
    assert "environment: none read" in by_prog["invoiceflow render"]
    # the settings only the local runtime reads are all in its help, with their true defaults
    runtime_only = {var.name for var in ENV_VARS if not var.used_by}
    assert runtime_only <= set(re.findall(r"^  ([A-Z][A-Z_]+)  ", by_prog["invoiceflow dev"], re.M))
    knative_dir = re.search(
        r"^  KNATIVE_DIR .*?(?=^  [A-Z])", by_prog["invoiceflow dev"], re.M | re.S
    )
    assert knative_dir and "bundled" in knative_dir[0] and "gateway-api.yaml" in knative_dir[0]
    render = next(p for p in commands if p.prog == "invoiceflow render").format_help()
    assert "a folder: its *.json files" in render and "--out DIR" in render


def test_help_and_version_from_the_installed_command() -> None:
    import tomllib
    from importlib.metadata import version

    top = run("--help", env={})
    assert top.returncode == 0 and top.stderr == ""
    assert top.stdout.startswith("usage: invoiceflow [-h] [--version] COMMAND")
    for command in ("render", "db", "outbox", "events", "users", "invoices", "dev", "demo"):
        assert f"\n    {command} " in top.stdout, command
    assert "``" not in top.stdout and "examples:" in top.stdout
    add = run("users", "add", "--help", env={})
    assert add.returncode == 0 and "--password-stdin" in add.stdout
    assert "environment:" in add.stdout and "examples:" in add.stdout
    shown = run("--version", env={})
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"invoiceflow {version('invoiceflow')}"
    assert version("invoiceflow") == pyproject["project"]["version"]


@pytest.mark.parametrize(
    ("argv", "status", "says"),
    [
        ([], 2, "invoiceflow: missing COMMAND: one of render, db, outbox, events, users"),
        (["rendr"], 2, "invoiceflow: 'rendr' is not a command; the commands: render, db"),
        (["users"], 2, "invoiceflow users: missing ACTION: one of add, disable, enable"),
        (["users", "add"], 2, "invoiceflow users add: missing: EMAIL"),
        (["render", "x.json"], 2, "invoiceflow render: missing: --out"),
        (["render", "x.json", "--out"], 2, "invoiceflow render: --out needs a value"),
        (
            ["render", "x.json", "--out", "o", "--max-bytes", "lots"],
            2,
            "invoiceflow render: --max-bytes takes a whole number, not 'lots'",
        ),
        (
            ["render", "x.json", "--out", "o", "--format", "doc"],
            2,
            "invoiceflow render: --format: formats are",
        ),
        (["db", "migrate", "--force"], 2, "invoiceflow db migrate: unknown argument(s): --force"),
        (
            ["invoices", "redrive", "--older-than", "0"],
            2,
            "invoiceflow invoices redrive: --older-than must be at least 1, not 0",
        ),
        (
            ["invoices", "redrive", "--older-than", "soon"],
            2,
            "invoiceflow invoices redrive: --older-than takes a whole number, not 'soon'",
        ),
        (
            ["invoices", "redrive"],
            2,
            "invoiceflow invoices redrive: K_SINK is not set: the broker's address is needed",
        ),
        (
            ["outbox", "relay"],
            2,
            "invoiceflow outbox relay: K_SINK is not set: the broker's address is needed",
        ),
        (["dev", "--port", "http"], 2, "invoiceflow dev: --port takes a whole number, not 'http'"),
        (
            ["dev", "--port", "70000"],
            2,
            "invoiceflow dev: --port must be from 0 to 65535, not 70000",
        ),
        (
            ["render", "x.json", "--out", "o", "--max-bytes", "0"],
            2,
            "invoiceflow render: --max-bytes must be at least 1, not 0",
        ),
        (
            ["users", "add", "ann@example.com"],
            2,
            "invoiceflow users add: no terminal to ask for the password: "
            "give it on standard input with --password-stdin",
        ),
        (["render", "x.json", "--out", "{file}"], 2, "invoiceflow render: --out {file} is a file"),
        (
            ["events", "sign", "--key-id", "erp", "{missing}"],
            2,
            "invoiceflow events sign: {missing}: cannot read: No such file or directory",
        ),
    ],
)
def test_a_foreseeable_mistake_is_one_line_in_the_users_terms(
    argv: list[str], status: int, says: str, tmp_path: Path
) -> None:
    names = {"file": str(tmp_path / "a-file"), "missing": str(tmp_path / "nope.json")}
    (tmp_path / "a-file").write_text("not a folder")
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path / "data"),
        "EVENT_PRODUCER_KEYS": f"erp:{'k' * 32}",
    }
    result = run(*(a.format(**names) for a in argv), env=env, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(says.format(**names)), result.stderr
    for internal in ("Traceback", "cmd", "required:", "Error:"):
        assert internal not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was stored


def test_render_names_a_missing_file_once_and_expands_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "invoices"
    folder.mkdir()
    (folder / "a.json").write_bytes((EXAMPLES / "minimal.json").read_bytes())
    (folder / "b.json").write_text('{"number": "unterminated')
    (folder / "notes.txt").write_text("not an invoice")
    (tmp_path / "empty").mkdir()
    missing = tmp_path / "missing.json"
    out = tmp_path / "out"
    result = run(
        "render",
        str(folder),
        str(missing),
        str(tmp_path / "empty"),
        "--out",
        str(out),
        "-q",
        env={},
    )
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["MIN-1.pdf", "MIN-1.xlsx"]
    err = result.stderr.splitlines()
    assert [line for line in err if "missing.json" in line] == [
        f"{missing}: cannot read: No such file or directory"
    ]
    assert f"{folder / 'b.json'}: malformed JSON: Unterminated string starting at line 1" in (
        result.stderr
    )
    assert "at at" not in result.stderr
    assert f"{tmp_path / 'empty'}: a folder without .json files" in err
    assert err[-1] == "3 of 4 file(s) had problems; the others were rendered"
    assert "Traceback" not in result.stderr and "notes.txt" not in result.stderr


def test_users_are_stored_in_one_data_folder_whatever_the_current_directory(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}  # no DATA_DIR, no DATABASE_URL
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    added = run(
        "users",
        "add",
        "ann@example.com",
        "--password-stdin",
        env=env,
        stdin="long-enough-pw\n",
        cwd=tmp_path / "one",
    )
    assert added.returncode == 0, added.stderr
    data = home / ".local" / "share" / "invoiceflow"
    assert f"to {data / 'invoiceflow.db'}" in added.stdout
    assert f"data folder: {data}" in added.stdout
    listed = run("users", "list", env=env, cwd=tmp_path / "two")
    assert listed.returncode == 0 and "ann@example.com\tactive" in listed.stdout
    assert not list((tmp_path / "one").iterdir()) and not list((tmp_path / "two").iterdir())
    secret = run(
        "users",
        "add",
        "bob@example.com",
        "--password-stdin",
        env={**env, "DATABASE_URL": "sqlite:///" + str(tmp_path / "x.db")},
        stdin="long-enough-pw\n",
    )
    assert secret.returncode == 0 and str(tmp_path / "x.db") in secret.stdout


def test_the_dev_banner_names_its_data_folder_and_an_invoice_file_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from invoiceflow_local.dev import banner
    from invoiceflow_local.package_data import DEMO_INVOICE

    runtime: Any = SimpleNamespace(url="http://127.0.0.1:8080", internal_url="http://127.0.0.1:5")
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    text = banner(runtime, tmp_path / "data")
    assert f"data folder: {tmp_path / 'data'}" in text
    assert "file=@events/examples/invoices/minimal.json'" in text
    monkeypatch.chdir(tmp_path)
    upload = next(line for line in banner(runtime, tmp_path).splitlines() if "/upload" in line)
    named = Path(upload.split("file=@", 1)[1].split("'", 1)[0])
    assert named == DEMO_INVOICE and named.is_file()


def test_render_says_when_nothing_was_rendered(tmp_path: Path) -> None:
    result = run("render", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "1 of 1 file(s) had problems; none was rendered", result.stderr
    assert "Traceback" not in result.stderr
