"""Issue 15: every command block of README.md and docs/*.md runs as written. Each ```bash and
```python block either runs, in order, in one ``bash -euo pipefail`` session per document,
against a started ``invoiceflow dev``, or is marked ``<!-- not run: REASON -->`` on the line
before it. The session runs in a temp directory holding what the commands read from the
checkout (the examples, the generator configuration, the venv), so nothing lands in the repo;
the placeholders the document defines (``BASE=``, ``BROKER=``) are set to the started runtime."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from support.devprocess import Dev, embedded_env

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = ("bash", "sh", "shell")
LANGUAGES = (*SHELL, "python")
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (\S.*\S) -->$")
#: the checkout's files the commands read, copied into the session's directory
NEEDED = ("events", "tests/fixtures/openapi-python-client.yaml")
#: what the README's flow writes, with the bytes each file starts with
DOWNLOADS = {"invoice.pdf": b"%PDF-", "invoice.xlsx": b"PK\x03\x04", "client.xlsx": b"PK\x03\x04"}
EMAIL, PASSWORD = "you@example.com", "a-long-password"


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason, when marked

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document`` (every language), with their not-run marks."""
    found: list[Block] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        mark = NOT_RUN.match(lines[i - 1]) if i else None
        found.append(
            Block(
                document,
                i + 1,
                match.group(1),
                "\n".join(lines[i + 1 : end]) + "\n",
                mark.group(1) if mark else None,
            )
        )
        i = end + 1
    return found


def runnable(document: Path) -> list[Block]:
    return [b for b in blocks(document) if b.language in LANGUAGES and b.not_run is None]


def test_every_command_block_runs_or_says_why_not() -> None:
    """A mark stands right before a command block (so none is skipped by mistake), the README
    keeps its not-run blocks few, and its commands find the runtime only through ``BASE``."""
    for document in DOCUMENTS:
        lines = document.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if "not run" in line:
                assert NOT_RUN.match(line), f"{document.name}:{n + 1}: {line}"
                fence = FENCE.match(lines[n + 1])
                assert fence and fence.group(1) in LANGUAGES, f"{document.name}:{n + 1}"
    readme = blocks(ROOT / "README.md")
    assert len([b for b in readme if b.not_run]) <= 5
    assert {b.language for b in runnable(ROOT / "README.md")} == {"bash", "python"}
    text = "".join(b.code for b in runnable(ROOT / "README.md"))
    assert re.findall(r"^BASE=.*$", text, re.M) == ["BASE=http://127.0.0.1:8080"]
    assert text.count("8080") == 1, "a command names the port instead of $BASE"
    assert "invoice_data.json" not in text  # issue 15: a file no checkout has


def _producer_keys() -> str:
    """The producer key the README starts ``invoiceflow dev`` with (its CloudEvents block
    signs with it)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    keys: set[str] = set(re.findall(r"^export EVENT_PRODUCER_KEYS=(\S+)", text, re.M))
    assert len(keys) == 1, keys
    return keys.pop()


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    """A working directory with what the commands read from the checkout, and the venv."""
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    for name in NEEDED:
        source, target = ROOT / name, cwd / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    (cwd / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return cwd


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[Dev, dict[str, str]]]:
    # none of the caller's servers, mail keys or links: the README runs on the embedded defaults
    env = embedded_env(tmp_path / "data", EVENT_PRODUCER_KEYS=_producer_keys())
    env.pop("JWT_SECRET")  # as a reader's shell: dev makes a development key
    runtime = Dev(env, tmp_path / "dev.log", cwd=tmp_path).start()
    try:
        yield runtime, env
    finally:
        runtime.stop()


def _script(document: Path, dev: Dev, broker: str, into: Path) -> Path:
    """The document's runnable blocks as one bash script, the placeholders set, a line of
    output after each block."""
    into.mkdir()
    parts = []
    for n, block in enumerate(runnable(document)):
        code = re.sub(r"^BASE=\S+", f"BASE={dev.url}", block.code, flags=re.M)
        code = re.sub(r"^BROKER=\S+", f"BROKER={broker}", code, flags=re.M)
        path = into / f"{n}.{'py' if block.language == 'python' else 'sh'}"
        path.write_text(code, encoding="utf-8")
        run = f"python - < {path}" if block.language == "python" else f"source {path}"
        parts.append(f"{run}\necho '== ran {block}'\n")
    script = into / "session.sh"
    script.write_text("".join(parts), encoding="utf-8")
    return script


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_the_commands_run_as_written(
    document: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The document's runnable blocks, in order, in one session: each exits 0. The docs'
    blocks all need a cluster today (each says so); one that does not runs here too."""
    if not runnable(document):
        assert document.name != "README.md"
        return
    runtime, env = request.getfixturevalue("dev")
    cwd = request.getfixturevalue("session_dir")
    # the runtime answers /readyz before it prints its banner: wait for the banner's line
    deadline = time.monotonic() + 30
    while not (broker := re.search(r"http://127\.0\.0\.1:\d+/_broker", runtime.log.read_text())):
        assert time.monotonic() < deadline, runtime.log.read_text()
        time.sleep(0.1)
    script = _script(document, runtime, broker.group(0), tmp_path / "blocks")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    ran = re.findall(r"^== ran (\S+)$", result.stdout, re.M)
    expected = [str(b) for b in runnable(document)]
    assert result.returncode == 0 and ran == expected, (
        f"ran {ran} of {expected}\n{result.stdout}\n{result.stderr}"
    )
    if document.name == "README.md":
        for name, magic in DOWNLOADS.items():
            assert (cwd / name).read_bytes().startswith(magic), name
        assert list((cwd / "out").glob("*.pdf")), "invoiceflow render wrote no PDF"
        assert _requested_invoice_arrives(runtime.url, cwd / "requested.json")


def _requested_invoice_arrives(url: str, event: Path) -> bool:
    """The signed event the README sent created its invoice in the README's account."""
    number = json.loads(event.read_text())["data"]["invoice"]["number"]
    token = requests.post(f"{url}/login", auth=(EMAIL, PASSWORD), timeout=30).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = requests.get(f"{url}/invoices", headers=auth, timeout=30).json()
        if any(item["number"] == number for item in page["items"]):
            return True
        time.sleep(0.3)
    return False


def test_the_docs_name_the_helm_the_charts_are_tested_with() -> None:
    """Every "helm (N.x)" / "helm N.x" of the docs is the major version scripts/install-helm.sh
    pins, the helm the chart tests run."""
    pinned = re.search(
        r"^HELM_VERSION=v(\d+)\.", (ROOT / "scripts/install-helm.sh").read_text(), re.M
    )
    assert pinned is not None
    named = [
        (document.name, major)
        for document in (ROOT / "CONTRIBUTING.md", *DOCUMENTS)
        for major in re.findall(r"`?helm`? \(?v?(\d+)\.(?:x|\d)", document.read_text("utf-8"))
    ]
    assert named, "the docs no longer name a helm version: drop this test"
    assert [n for n in named if n[1] != pinned.group(1)] == []
