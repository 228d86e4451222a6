"""Reproducible installs: the two lock files against pyproject.toml and this environment.

``requirements.lock`` pins the runtime (what the image installs, ``--no-deps``);
``requirements-dev.lock`` pins what pip, setuptools, the test/bench extras and the local runtime
(local/pyproject.toml: invoiceflow-local, with pika) add. Every install
(scripts/install.sh, the Dockerfile) reads them, and scripts/lock.sh regenerates them.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = REPO / "requirements.lock"
DEV_LOCK = REPO / "requirements-dev.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCAL_PYPROJECT = tomllib.loads((REPO / "local" / "pyproject.toml").read_text())
#: The distributions of this repository (installed editable, in no lock).
OWN = {canonicalize_name(PYPROJECT["project"]["name"]), canonicalize_name("invoiceflow-local")}
#: Packages of the build and test tool chain, which have no place in the image.
DEV_ONLY = {
    "pytest",
    "pytest-xdist",
    "mypy",
    "ruff",
    "kubernetes-validate",
    "mongomock",
    "hypothesis",
    "saxonche",
    "lxml",
    "zxing-cpp",
    "pypdfium2",
    "pip",
    "setuptools",
    "wheel",
}
#: The platform the locks are made for (scripts/lock.sh, the image): CPython 3.11 on Linux.
LOCK_PLATFORM: dict[str, str] = {
    # default_environment()'s values are strings, typed as a TypedDict's objects
    **{name: str(value) for name, value in default_environment().items()},
    "python_version": "3.11",
    "python_full_version": "3.11.14",
    "sys_platform": "linux",
    "platform_system": "Linux",
}


@cache
def pins(path: Path) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"{path.name}:{number}: {line!r} is not pinned as name==version"
        name = canonicalize_name(match.group(1))
        assert name not in found, f"{path.name}: {name} is pinned twice"
        found[name] = Version(match.group(2))
    return found


def all_pins() -> dict[str, Version]:
    return {**pins(RUNTIME_LOCK), **pins(DEV_LOCK)}


def declared() -> dict[str, list[str]]:
    """{"runtime": [...], "test": [...], "bench": [...], "build": [...], "local": [...]} from
    pyproject.toml and local/pyproject.toml (but for the repository's own distributions)."""
    project = PYPROJECT["project"]
    return {
        "runtime": project["dependencies"],
        **project["optional-dependencies"],
        "build": PYPROJECT["build-system"]["requires"]
        + LOCAL_PYPROJECT["build-system"]["requires"],
        "local": [
            spec
            for spec in LOCAL_PYPROJECT["project"]["dependencies"]
            if canonicalize_name(Requirement(spec).name) not in OWN
        ],
    }


def test_the_local_pyproject_names_the_own_distribution() -> None:
    assert canonicalize_name(LOCAL_PYPROJECT["project"]["name"]) in OWN


def test_the_two_locks_do_not_overlap() -> None:
    both = set(pins(RUNTIME_LOCK)) & set(pins(DEV_LOCK))
    assert not both, f"pinned in both lock files: {sorted(both)}"


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    problems = []
    for group, specs in declared().items():
        lock = pins(RUNTIME_LOCK) if group == "runtime" else all_pins()
        for spec in specs:
            req = Requirement(spec)
            name = canonicalize_name(req.name)
            if name not in lock:
                where = "requirements.lock" if group == "runtime" else "either lock file"
                problems.append(f"{group}: {req.name} is not pinned in {where}")
            elif not req.specifier.contains(lock[name], prereleases=True):
                problems.append(f"{group}: {req.name}=={lock[name]} does not satisfy {spec!r}")
    assert not problems, "\n".join(problems)


def test_the_runtime_lock_holds_no_development_tools() -> None:
    found = DEV_ONLY & set(pins(RUNTIME_LOCK))
    assert not found, f"dev-only packages in requirements.lock (the image): {sorted(found)}"


def test_the_runtime_lock_holds_nothing_only_the_local_runtime_needs() -> None:
    """pika (the local runtime's RabbitMQ broker) is not in the image."""
    local_only = {canonicalize_name(Requirement(spec).name) for spec in declared()["local"]}
    assert "pika" in local_only
    found = local_only & set(pins(RUNTIME_LOCK))
    assert not found, f"only the local runtime needs {sorted(found)}: not in requirements.lock"


def test_the_locks_are_closed_under_dependencies() -> None:
    """Every requirement of a pinned package (with the extras asked for) is pinned too; the
    runtime's own needs are in the runtime lock. Read from the metadata of the packages installed
    here, whose version is the pinned one (test_this_environment_is_the_locked_one)."""
    runtime, everything = pins(RUNTIME_LOCK), all_pins()
    wanted: list[tuple[str, set[str], dict[str, Version]]] = []
    wanted += [(name, set(), runtime) for name in runtime]
    wanted += [(name, set(), everything) for name in pins(DEV_LOCK)]
    for group, specs in declared().items():
        for spec in specs:
            req = Requirement(spec)
            lock = runtime if group == "runtime" else everything
            wanted.append((canonicalize_name(req.name), set(req.extras), lock))
    missing = []
    for name, extras, lock in wanted:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an extra not installed here (bench): scripts/lock.sh resolved it whole
        assert Version(dist.version) == everything[name], f"{name} {dist.version} is installed"
        for spec in dist.requires or []:
            req = Requirement(spec)
            envs = [dict(LOCK_PLATFORM, extra=extra) for extra in extras | {""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            if canonicalize_name(req.name) not in lock:
                missing.append(f"{name} needs {spec}")
    assert not missing, "the locks are missing:\n" + "\n".join(sorted(set(missing)))


def test_this_environment_is_the_locked_one() -> None:
    """What runs these tests was installed from the locks: every installed distribution is
    pinned and at its pinned version (a newer Babel, say, would change CLDR's output)."""
    locked = all_pins()
    problems = []
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in OWN:
            continue
        if name not in locked:
            problems.append(f"{name} {dist.version} is installed but in no lock file")
        elif Version(dist.version) != locked[name]:
            problems.append(f"{name} {dist.version} is installed, the lock says {locked[name]}")
    assert not problems, "install with bash scripts/install.sh test:\n" + "\n".join(
        sorted(problems)
    )
