"""The container image: Dockerfile, .dockerignore, and the entry points the Knative Services
name (FUNCTION_SOURCE / FUNCTION_TARGET). The lock files are checked in tests/test_lock.py.

No image is built here (no daemon, no registry): the Dockerfile is parsed and every path and
name it depends on is checked.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|build-essential|make|cmake|clang|python3-dev|"
    r"libpq-dev|apt-get\s+install)\b"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # -1 before the first FROM

    def flags_and_words(self) -> tuple[dict[str, str], list[str]]:
        """COPY/ADD: (--flags, [sources..., destination]), shell or JSON form."""
        words = json.loads(self.args) if self.args.startswith("[") else shlex.split(self.args)
        flags = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        return flags, words


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    stage = -1
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, args = logical.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued line"
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile((REPO / "Dockerfile").read_text(encoding="utf-8"))


def copies(instructions: list[Instruction]) -> list[tuple[Instruction, list[str], str]]:
    """(instruction, sources, destination) of each COPY/ADD from the build context."""
    found = []
    for ins in instructions:
        if ins.keyword in ("COPY", "ADD"):
            flags, words = ins.flags_and_words()
            if "from" not in flags:
                found.append((ins, words[:-1], words[-1]))
    return found


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) of each .dockerignore line, in order (Docker's matching rules)."""
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            elif line[i] == "[":
                end = line.index("]", i)
                regex += line[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(line[i])
                i += 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def is_ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negated, regex in patterns:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def context_matches(source: str) -> list[Path]:
    source = source.rstrip("/") or "."
    if any(ch in source for ch in "*?["):
        return sorted(REPO.glob(source))
    path = REPO / source
    return [path] if path.exists() else []


def test_every_path_the_dockerfile_copies_exists_and_is_in_the_context(
    dockerfile: list[Instruction],
) -> None:
    patterns = dockerignore_patterns()
    problems = []
    found = copies(dockerfile)
    assert found, "the Dockerfile copies nothing from the build context"
    for ins, sources, _ in found:
        for source in sources:
            matches = context_matches(source)
            if not matches:
                problems.append(f"{ins.keyword} {source}: no such path in the repository")
            for match in matches:
                relative = match.relative_to(REPO).as_posix()
                if is_ignored(relative, patterns):
                    problems.append(
                        f"{ins.keyword} {source}: {relative} is excluded by .dockerignore"
                    )
    assert not problems, "\n".join(problems)


def test_every_link_in_the_package_points_at_something_the_image_gets(
    dockerfile: list[Instruction],
) -> None:
    """The package's invoice schema is a symlink to events/schemas/: the build must copy its
    target too, or the wheel would be built without the schema."""
    patterns = dockerignore_patterns()
    copied = [
        REPO / source.rstrip("/") for _, sources, _ in copies(dockerfile) for source in sources
    ]
    links = [p for p in (REPO / "functions").rglob("*") if p.is_symlink()]
    assert links, "expected the schema link in functions/invoiceflow/domain/"
    for link in links:
        target = link.resolve()
        relative = target.relative_to(REPO).as_posix()
        assert target.exists(), f"{link} is a dangling link"
        assert not is_ignored(relative, patterns), f"{relative} is excluded by .dockerignore"
        assert any(target == c or c in target.parents for c in copied), (
            f"{link} points at {relative}, which the Dockerfile does not copy"
        )


def test_dockerignore_keeps_the_heavy_and_private_paths_out() -> None:
    patterns = dockerignore_patterns()
    for path in (
        ".git",
        ".venv",
        "tests/deploy/conftest.py",
        "functions/__pycache__/x.pyc",
        "functions/invoiceflow/__pycache__/a.cpython-311.pyc",
        "Helm_charts",
        "functions/invoiceflow.egg-info/PKG-INFO",
        ".invoiceflow/invoiceflow.db",
        "local/pyproject.toml",
        "local/invoiceflow_local/dev.py",
    ):
        assert is_ignored(path, patterns), f"{path} would be sent to the build context"
    for path in (
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "functions/login.py",
        "functions/invoiceflow/settings.py",
    ):
        assert not is_ignored(path, patterns), f"{path} is needed by the build"


def test_the_image_ships_no_local_runtime(dockerfile: list[Instruction]) -> None:
    """The local runtime (local/: invoiceflow-local, with pika) is development tooling: the
    image copies none of it, and its install set (requirements.lock) holds neither."""
    sources = [source for _, found, _ in copies(dockerfile) for source in found]
    assert not [s for s in sources if s.startswith("local")], sources
    for ins in dockerfile:
        assert "invoiceflow_local" not in ins.args and "./local" not in ins.args, ins.args
    installed = {
        line.split("==")[0].strip().lower()
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert not installed & {"pika", "invoiceflow-local", "invoiceflow_local"}, installed
    assert not (REPO / "functions" / "invoiceflow" / "runtime").exists()


def test_dockerfile_builds_a_slim_non_root_image_with_cached_dependencies(
    dockerfile: list[Instruction],
) -> None:
    args = {}
    for ins in dockerfile:
        if ins.keyword == "ARG" and ins.stage == -1 and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            args[name] = value
    froms = [ins for ins in dockerfile if ins.keyword == "FROM"]
    assert len(froms) >= 2, "a build stage and a runtime stage"
    for ins in froms:
        image = ins.args.split()[0]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", image), (
            f"FROM {image}: a slim Python 3.11 image pinned to a patch release and a Debian"
        )
    final = froms[-1].stage
    final_stage = [ins for ins in dockerfile if ins.stage == final]
    build_stage = [ins for ins in dockerfile if 0 <= ins.stage < final]

    # The dependencies have their own layer, built from the lock before the code is copied.
    text = [f"{ins.keyword} {ins.args}" for ins in build_stage]
    lock_copy = next(
        i for i, t in enumerate(text) if t.startswith("COPY") and "requirements.lock" in t
    )
    lock_install = next(
        i for i, t in enumerate(text) if t.startswith("RUN") and "requirements.lock" in t
    )
    code_copy = next(i for i, t in enumerate(text) if t.startswith("COPY") and "functions" in t)
    assert lock_copy < lock_install < code_copy
    assert "--only-binary=:all:" in text[lock_install], "wheels only: no compiler needed"

    # The runtime stage: the venv from the build stage, no build tools, a non-root user.
    assert any(
        ins.keyword == "COPY" and "--from=" in ins.args and "/opt/venv" in ins.args
        for ins in final_stage
    )
    for ins in final_stage:
        if ins.keyword == "RUN":
            assert not BUILD_TOOLS.search(ins.args), f"build tools in the final image: {ins.args}"
            assert "pip install" not in ins.args
    users = [ins.args for ins in final_stage if ins.keyword == "USER"]
    assert users, "the final stage sets a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (runAsNonRoot can check it)"
    cmd = [ins for ins in final_stage if ins.keyword in ("CMD", "ENTRYPOINT")][-1]
    assert json.loads(cmd.args)[0] == "functions-framework"


# --- the entry points the Knative Services name ------------------------------------------------


def image_path_to_repo(dockerfile: list[Instruction], image_path: str) -> Path | None:
    """The repository file a path of the final image was copied from (via its COPY lines)."""
    final = max(ins.stage for ins in dockerfile)
    workdir = "/"
    for ins in dockerfile:
        if ins.stage == final and ins.keyword == "WORKDIR":
            workdir = ins.args
    for ins, sources, dest in copies(dockerfile):
        if ins.stage != final:
            continue
        dest_path = dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}"
        if not dest_path.endswith("/") or not image_path.startswith(dest_path):
            continue
        rest = image_path[len(dest_path) :]
        for source in sources:
            if any(ch in source for ch in "*?["):
                candidate = f"{PurePosixPath(source).parent}/{rest}"
                if fnmatch.fnmatch(candidate, source) and (REPO / candidate).is_file():
                    return REPO / candidate
            elif (REPO / source.rstrip("/") / rest).is_file():
                return REPO / source.rstrip("/") / rest
    return None


def function_env(doc: Any) -> dict[str, str]:
    container = doc.obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_the_image_compiles_the_package_then_caches_records_fonts_and_babel_data(
    dockerfile: list[Instruction],
) -> None:
    """A pod's start reads its records' compiled ``__init__`` (invoiceflow/records.py) and
    its first render the fonts' parsed metrics (render/fontcache.py) and Babel's data
    (render/babeldata.py) instead of compiling, parsing and merging them: the build stage
    writes them after installing and compiling the package, into the venv the runtime stage
    copies (the runtime's package directory is read-only)."""
    final = max(ins.stage for ins in dockerfile)
    runs = [ins.args for ins in dockerfile if ins.keyword == "RUN" and 0 <= ins.stage < final]
    install = next(i for i, r in enumerate(runs) if "install --no-deps /src" in r)
    step = runs[install]
    assert (
        step.index("/src")
        < step.index("compileall")
        < step.index("/opt/venv/bin/python -P -m invoiceflow.records")
        < step.index("/opt/venv/bin/python -P -m invoiceflow.render.fontcache")
        < step.index("/opt/venv/bin/python -P -m invoiceflow.render.babeldata")
    )
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert "**/__fontcache__" in ignored  # a checkout's entries never enter the image
    assert "**/__babeldata__" in ignored
    assert "**/__pycache__" in ignored  # nor its bytecode and records' code


def test_every_service_names_a_real_entry_point(
    dockerfile: list[Instruction], by_kind: Any
) -> None:
    services = by_kind("KService")
    assert services
    problems = []
    for name, doc in services.items():
        env = function_env(doc)
        source, target = env.get("FUNCTION_SOURCE"), env.get("FUNCTION_TARGET")
        if not source or not target:
            problems.append(f"{name}: FUNCTION_SOURCE and FUNCTION_TARGET must both be set")
            continue
        path = image_path_to_repo(dockerfile, source)
        if path is None:
            problems.append(
                f"{name}: FUNCTION_SOURCE {source} is not a file the Dockerfile "
                "copies into the image"
            )
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        functions = {
            node.name: node
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if target not in functions:
            problems.append(
                f"{name}: {path.relative_to(REPO)} has no top-level function {target!r}"
            )
            continue
        # No manifest sets FUNCTION_SIGNATURE_TYPE, so the code must declare it.
        decorators = {ast.unparse(d).split("(")[0] for d in functions[target].decorator_list}
        if "FUNCTION_SIGNATURE_TYPE" not in env and not decorators & {
            "functions_framework.http",
            "functions_framework.cloud_event",
            "http",
            "cloud_event",
        }:
            problems.append(
                f"{name}: {target} is not decorated with functions_framework.http "
                "or .cloud_event, and FUNCTION_SIGNATURE_TYPE is not set"
            )
    assert not problems, "\n".join(problems)
