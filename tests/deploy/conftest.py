"""Fixtures of the deployment tests (Dockerfile, knative/, Helm_charts/).

Nothing here talks to a cluster: manifests are parsed, validated against the real Knative CRD
schemas (``../shared/knative-crds``) and the Kubernetes API schemas (``kubernetes-validate``),
and cross-checked. The charts are linted and rendered with the real ``helm`` (4.x), which
``scripts/install-helm.sh`` puts in ``.tools/bin``. A missing tool or input skips these tests,
except under ``CI``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.services import fail_or_skip

REPO = Path(__file__).resolve().parents[2]
KNATIVE = REPO / "knative"
CHARTS = REPO / "Helm_charts"
CRD_DIR = REPO.parent / "shared" / "knative-crds"

#: The Kubernetes version the core objects are validated against (kubernetes-validate ships it).
KUBERNETES_VERSION = "1.33"
#: API groups kubernetes-validate knows (the core of Kubernetes).
CORE_GROUPS = frozenset(
    {"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io"}
)
#: Knative's groups: every object of theirs must match a CRD of ../shared/knative-crds.
KNATIVE_GROUPS = frozenset({"serving.knative.dev", "eventing.knative.dev", "sources.knative.dev"})
#: Other kinds the manifests may hold, checked only by the cross-reference tests.
OTHER_KINDS = frozenset(
    {
        ("kustomize.config.k8s.io", "Kustomization"),
        ("kustomize.config.k8s.io", "Component"),
        ("rabbitmq.com", "RabbitmqCluster"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("gateway.networking.k8s.io", "ReferenceGrant"),
    }
)


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


@dataclass(frozen=True)
class Doc:
    """One YAML document of a manifest file."""

    path: Path
    index: int
    obj: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}#{self.index}"

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind"))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name"))

    @property
    def group(self) -> str:
        return group_of(str(self.obj.get("apiVersion", "")))


def load_docs(path: Path) -> list[Doc]:
    text = path.read_text(encoding="utf-8")
    return [Doc(path, i, d) for i, d in enumerate(yaml.safe_load_all(text)) if d is not None]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def manifest_files() -> list[Path]:
    """Every YAML file under knative/ (subfolders included)."""
    files = sorted(p for p in KNATIVE.rglob("*") if p.suffix in (".yaml", ".yml"))
    assert files, "knative/ holds no manifests"
    return files


@pytest.fixture(scope="session")
def applied_docs() -> list[Doc]:
    """The objects `kubectl apply -k knative/` applies: the kustomization's resources."""
    kustomization = yaml.safe_load((KNATIVE / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for resource in kustomization["resources"]:
        docs += load_docs(KNATIVE / resource)
    return docs


@pytest.fixture(scope="session")
def by_kind(applied_docs: list[Doc]) -> Callable[[str], dict[str, Doc]]:
    """by_kind("Service") -> {name: Doc} of the applied objects (Knative Services: "KService")."""

    def select(kind: str) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        for doc in applied_docs:
            doc_kind = doc.kind
            if doc_kind == "Service" and doc.group == "serving.knative.dev":
                doc_kind = "KService"
            if doc_kind == kind:
                assert doc.name not in found, f"two {kind} objects named {doc.name}"
                found[doc.name] = doc
        return found

    return select


@pytest.fixture(scope="session")
def workload_pods(by_kind: Callable[[str], dict[str, Doc]]) -> list[dict[str, Any]]:
    """The pod specs of every applied workload: Knative Services, Jobs and CronJobs."""
    pods = [
        d.obj["spec"]["template"]["spec"]
        for d in [*by_kind("KService").values(), *by_kind("Job").values()]
    ]
    pods += [
        d.obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        for d in by_kind("CronJob").values()
    ]
    return pods


# --- Kubernetes API schemas --------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_validate() -> Callable[[dict[str, Any], str], None]:
    """kube_validate(obj, where): strict validation against the Kubernetes API schema."""
    import kubernetes_validate

    def check(obj: dict[str, Any], where: str) -> None:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where}: {obj.get('kind')} {path}: {exc.message}", pytrace=False)
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{where}: {exc.message}", pytrace=False)

    return check


# --- Knative CRD schemas -----------------------------------------------------------------------


def closed_schema(root: dict[str, Any]) -> dict[str, Any]:
    """A CRD's openAPIV3Schema as JSON Schema, judged as the API server judges it.

    The ``x-kubernetes-*`` keys are dropped, and an object schema listing ``properties`` without
    ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``: the API server
    prunes (and ``kubectl apply``'s strict field validation rejects) unknown fields there.
    apiVersion, kind and metadata are always allowed at the root (the server adds them).
    """
    schema: dict[str, Any] = _closed(root)
    schema["properties"] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        **schema.get("properties", {}),
    }
    return schema


def _closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: _closed(value)
        for key, value in node.items()
        if not (isinstance(key, str) and key.startswith("x-kubernetes-"))
    }
    if (
        "properties" in node
        and isinstance(node["properties"], dict)
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
    ):
        out["additionalProperties"] = False
    return out


def feature_gated_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields used in ``obj`` whose CRD description says they sit behind a feature flag."""
    found: list[str] = []
    if isinstance(obj, dict):
        properties = schema.get("properties") or {}
        for key, value in obj.items():
            sub = properties.get(key)
            if not isinstance(sub, dict):
                continue
            if "behind a feature flag" in str(sub.get("description", "")):
                found.append(f"{path}.{key}: {sub['description'].strip()}")
            found += feature_gated_fields(value, sub, f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += feature_gated_fields(item, schema["items"], f"{path}[{i}]")
    return found


@pytest.fixture(scope="session")
def knative_crds() -> dict[tuple[str, str], dict[str, Any]]:
    """{(apiVersion, kind): openAPIV3Schema} of the CRDs in ../shared/knative-crds."""
    if not CRD_DIR.is_dir():
        fail_or_skip(f"the Knative CRDs are not at {CRD_DIR} (shared/ beside the repository)")
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    assert schemas, f"no CustomResourceDefinition in {CRD_DIR}"
    return schemas


# --- rendering the charts ----------------------------------------------------------------------

Renderer = Callable[..., str]


def helm_binary() -> str | None:
    """The real helm: $INVOICEFLOW_HELM, .tools/bin/helm (scripts/install-helm.sh), or PATH."""
    for candidate in (os.environ.get("INVOICEFLOW_HELM"), str(REPO / ".tools" / "bin" / "helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("helm")


class RenderError(Exception):
    """A chart that does not render (a `required`, a `fail`, a template error)."""


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the real helm binary (fails under CI, skips elsewhere, when there is none)."""
    found = helm_binary()
    if found is None:
        fail_or_skip("helm is not installed: bash scripts/install-helm.sh puts it in .tools/bin")
    return found


@pytest.fixture(scope="session")
def helm_render(helm: str) -> Renderer:
    """helm_render(chart_dir, release, namespace, values_files, notes=False) -> YAML text.

    `helm template` renders the manifests; with notes=True, `helm install --dry-run=client`
    (no cluster involved) renders NOTES.txt, whose text is returned. Raises RenderError when
    the chart does not render (e.g. a `required` or `fail`).
    """

    def render(
        chart: Path,
        release: str,
        namespace: str,
        values: tuple[Path, ...] | list[Path] = (),
        notes: bool = False,
    ) -> str:
        flags = [arg for v in values for arg in ("-f", str(v))]
        if notes:
            command = [
                helm,
                "install",
                release,
                str(chart),
                "--dry-run=client",
                "--namespace",
                namespace,
                *flags,
            ]
        else:
            command = [
                helm,
                "template",
                release,
                str(chart),
                "--namespace",
                namespace,
                "--kube-version",
                KUBERNETES_VERSION,
                *flags,
            ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RenderError(result.stderr.strip())
        if notes:
            return result.stdout.partition("\nNOTES:\n")[2]
        return result.stdout

    return render


def chart_dirs() -> list[Path]:
    return sorted(p for p in CHARTS.iterdir() if (p / "Chart.yaml").exists())


def merged_values(chart: Path, values: tuple[Path, ...] | list[Path]) -> dict[str, Any]:
    """values.yaml with the given files over it, merged as Helm merges them."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            elif isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    result = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for path in values:
        result = merge(result, yaml.safe_load(path.read_text()) or {})
    return result


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`chart_case`: (chart dir, values files) for each chart's defaults and ci/*.yaml files."""
    if "chart_case" in metafunc.fixturenames:
        cases = []
        for chart in chart_dirs():
            cases.append(pytest.param((chart, ()), id=f"{chart.name}-defaults"))
            for values in sorted((chart / "ci").glob("*.yaml")):
                cases.append(pytest.param((chart, (values,)), id=f"{chart.name}-{values.stem}"))
        metafunc.parametrize("chart_case", cases)


@pytest.fixture(scope="session")
def deploy() -> types.SimpleNamespace:
    """The helpers and constants above, for the test modules (conftest is not importable)."""
    return types.SimpleNamespace(
        REPO=REPO,
        KNATIVE=KNATIVE,
        CHARTS=CHARTS,
        CRD_DIR=CRD_DIR,
        KUBERNETES_VERSION=KUBERNETES_VERSION,
        CORE_GROUPS=CORE_GROUPS,
        KNATIVE_GROUPS=KNATIVE_GROUPS,
        OTHER_KINDS=OTHER_KINDS,
        Doc=Doc,
        RenderError=RenderError,
        load_docs=load_docs,
        group_of=group_of,
        fail_or_skip=fail_or_skip,
        closed_schema=closed_schema,
        feature_gated_fields=feature_gated_fields,
        chart_dirs=chart_dirs,
        merged_values=merged_values,
    )
