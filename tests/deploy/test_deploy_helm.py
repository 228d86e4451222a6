"""Helm_charts/: each chart renders (defaults and every ci/*.yaml) to objects that validate
against the Kubernetes API schema and follow the rules: StatefulSet with volume claims, a
headless and a ClusterIP Service and nothing public, credentials from a Secret, resources,
probes, non-root, pinned official images, a `helm test` pod. And the Knative manifests read the
Secrets these charts make.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "invoiceflow"
#: Official images of each chart, and the ports their ClusterIP Service must offer.
IMAGES = {"postgres": "postgres", "mongodb": "mongo", "rabbitmq": "rabbitmq"}
PORTS = {"postgres": {5432}, "mongodb": {27017}, "rabbitmq": {5672, 15672}}
PINNED_TAG = re.compile(r"\d+\.\d+\.?\d*(-[a-z0-9.-]+)?")
ROOT_KEY = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):(\s|$)")


def chart_name(chart: Path) -> str:
    name: str = yaml.safe_load((chart / "Chart.yaml").read_text())["name"]
    return name


@pytest.fixture(scope="module")
def render(helm_render: Callable[..., str]) -> Callable[..., list[dict[str, Any]]]:
    """render(chart, values) -> objects, for the release named like the chart; cached."""
    cache: dict[tuple[Path, tuple[Path, ...]], list[dict[str, Any]]] = {}

    def objects(chart: Path, values: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
        key = (chart, tuple(values))
        if key not in cache:
            text = helm_render(chart, chart_name(chart), NAMESPACE, values)
            cache[key] = [d for d in yaml.safe_load_all(text) if d]
        return cache[key]

    return objects


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for obj in objects:
        if obj["kind"] == "Pod":
            specs.append((f"Pod {obj['metadata']['name']}", obj["spec"]))
        elif obj["kind"] in ("StatefulSet", "Deployment", "Job"):
            specs.append(
                (f"{obj['kind']} {obj['metadata']['name']}", obj["spec"]["template"]["spec"])
            )
    return specs


# --- chart layout and values -------------------------------------------------------------------


def test_the_three_charts_are_there(deploy: Any) -> None:
    assert {c.name for c in deploy.chart_dirs()} == {"Postgres", "MongoDB", "RabbitMQ"}


@pytest.mark.parametrize("chart", ["Postgres", "MongoDB", "RabbitMQ"])
def test_chart_layout(chart: str, deploy: Any) -> None:
    root = deploy.CHARTS / chart
    meta = yaml.safe_load((root / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["name"] in IMAGES and meta.get("description") and meta.get("appVersion")
    for path in (
        "values.yaml",
        "values.schema.json",
        "templates/_helpers.tpl",
        "templates/NOTES.txt",
        ".helmignore",
    ):
        assert (root / path).is_file(), f"{chart}: {path}"
    assert list((root / "templates" / "tests").glob("*.yaml")), f"{chart}: a helm test pod"
    assert list((root / "ci").glob("*.yaml")), f"{chart}: ci/*.yaml values to render in tests"


@pytest.mark.parametrize("chart", ["Postgres", "MongoDB", "RabbitMQ"])
def test_every_value_is_documented(chart: str, deploy: Any) -> None:
    """Each key of values.yaml has its own comment on the line above it."""
    lines = (deploy.CHARTS / chart / "values.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        match = ROOT_KEY.match(line)
        if not match or line.lstrip().startswith("- "):
            continue
        above = lines[i - 1].strip() if i else ""
        if not above.startswith("#"):
            undocumented.append(f"line {i + 1}: {match.group(2)}")
    assert not undocumented, f"{chart}/values.yaml: " + ", ".join(undocumented)


def test_values_validate_against_the_schema(chart_case: Any, deploy: Any) -> None:
    chart, values = chart_case
    schema = json.loads((chart / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(deploy.merged_values(chart, values))


@pytest.mark.parametrize("chart", ["Postgres", "MongoDB", "RabbitMQ"])
def test_schema_refuses_unpinned_images_root_and_unknown_values(chart: str, deploy: Any) -> None:
    root = deploy.CHARTS / chart
    validator = jsonschema.Draft7Validator(json.loads((root / "values.schema.json").read_text()))
    values = deploy.merged_values(root, ())
    for change in (
        {"image": {**values["image"], "tag": "latest"}},
        {"podSecurityContext": {**values["podSecurityContext"], "runAsNonRoot": False}},
        {"service": {**values["service"], "type": "NodePort"}},
        {"replicas": 3},
    ):
        assert list(validator.iter_errors({**values, **change})), change


@pytest.mark.parametrize("chart", ["Postgres", "MongoDB", "RabbitMQ"])
def test_schema_refuses_probe_values_the_api_server_refuses(chart: str, deploy: Any) -> None:
    """A liveness probe's successThreshold must be 1 (the API server refuses the StatefulSet
    otherwise: "must be 1"); helm lint and kubernetes-validate let it through, so the schema
    must not."""
    root = deploy.CHARTS / chart
    validator = jsonschema.Draft7Validator(json.loads((root / "values.schema.json").read_text()))
    values = deploy.merged_values(root, ())
    liveness = values["livenessProbe"]
    assert not list(
        validator.iter_errors({**values, "livenessProbe": {**liveness, "successThreshold": 1}})
    )
    for threshold in (2, 3):
        changed = {**values, "livenessProbe": {**liveness, "successThreshold": threshold}}
        assert list(validator.iter_errors(changed)), threshold
    readiness = {**values["readinessProbe"], "successThreshold": 2}
    assert not list(validator.iter_errors({**values, "readinessProbe": readiness}))


def test_mongodb_schema_refuses_a_database_name_mongodb_refuses(deploy: Any) -> None:
    """MongoDB database names cannot hold '.' (nor / \\ " $ or a space): the init script's
    createUser would fail on the first start, and the Secret's uri would name that database."""
    root = deploy.CHARTS / "MongoDB"
    validator = jsonschema.Draft7Validator(json.loads((root / "values.schema.json").read_text()))
    values = deploy.merged_values(root, ())
    for name in ("invoice.files", "invoice files", "a$b", "a/b"):
        changed = {**values, "auth": {**values["auth"], "database": name}}
        assert list(validator.iter_errors(changed)), name
    for name in ("invoiceflow", "invoice_files", "invoice-files"):
        changed = {**values, "auth": {**values["auth"], "database": name}}
        assert not list(validator.iter_errors(changed)), name


# --- rendered objects --------------------------------------------------------------------------


def test_rendered_objects_validate_against_the_kubernetes_schema(
    chart_case: Any, render: Any, kube_validate: Any
) -> None:
    chart, values = chart_case
    objects = render(chart, values)
    assert objects
    for obj in objects:
        kube_validate(obj, f"{chart.name} {[v.name for v in values]}")


def test_rendered_objects_follow_the_rules(chart_case: Any, render: Any, deploy: Any) -> None:
    chart, values = chart_case
    name = chart_name(chart)
    settings = deploy.merged_values(chart, values)
    objects = render(chart, values)
    kinds = {o["kind"] for o in objects}
    assert kinds <= {"StatefulSet", "Service", "Secret", "ConfigMap", "Pod"}, (
        f"{chart.name}: unexpected kinds {kinds} (no Ingress, no Job: migrations are the product's)"
    )

    (sts,) = of_kind(objects, "StatefulSet")
    selector = sts["spec"]["selector"]["matchLabels"]
    assert sts["spec"]["volumeClaimTemplates"], "persistent volume claims"
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    headless = services[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    cluster_ip = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
    assert len(cluster_ip) == 1
    for service in services.values():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "nothing exposed"
        assert service["spec"]["selector"] == selector
        assert not any("nodePort" in p for p in service["spec"]["ports"])
    assert {p["port"] for p in cluster_ip[0]["spec"]["ports"]} == PORTS[name]

    template = sts["spec"]["template"]
    assert selector.items() <= template["metadata"]["labels"].items()
    (server,) = template["spec"]["containers"]
    assert server.get("readinessProbe") and server.get("livenessProbe")
    container_ports = {p["name"] for p in server["ports"]}
    for service in services.values():
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports

    for where, spec in pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] != 0, where
        assert not spec.get("hostNetwork") and spec.get("automountServiceAccountToken") is False
        for c in spec["containers"]:
            repository, _, tag = c["image"].split("@")[0].partition(":")
            assert repository == IMAGES[name], f"{where}: official image {IMAGES[name]}"
            assert PINNED_TAG.fullmatch(tag), f"{where}: {c['image']} is not pinned"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{where}: {bound}"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert "ALL" in c["securityContext"]["capabilities"]["drop"], where
            assert not any("hostPort" in p for p in c.get("ports", [])), where

    # Credentials: the generated Secret, or the existing one; every reference names it.
    existing = settings["auth"]["existingSecret"]
    secrets = of_kind(objects, "Secret")
    expected = existing or sts["metadata"]["name"]
    if existing:
        assert not secrets
    else:
        (secret,) = secrets
        assert secret["metadata"]["name"] == expected
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for _, spec in pod_specs(objects)
        for c in spec["containers"]
        for e in c.get("env", [])
        if "valueFrom" in e
    ]
    assert refs, "credentials come from a Secret"
    for ref in refs:
        assert ref["name"] == expected
        if secrets:
            assert ref["key"] in secret_data(secrets[0])
    for _, spec in pod_specs(objects):
        for c in spec["containers"]:
            for e in c.get("env", []):
                if "value" in e and re.search("PASS", e["name"]):
                    pytest.fail(f"{e['name']} is a literal value, not from the Secret")

    tests = [
        p
        for p in of_kind(objects, "Pod")
        if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    assert len(tests) == (1 if settings["tests"]["enabled"] else 0)


def test_connection_uris_carry_the_credentials(chart_case: Any, render: Any, deploy: Any) -> None:
    chart, values = chart_case
    name = chart_name(chart)
    settings = deploy.merged_values(chart, values)
    objects = render(chart, values)
    if settings["auth"]["existingSecret"]:
        # the operator's Secret carries the credentials: the chart makes none of its own
        assert of_kind(objects, "Secret") == []
        return
    (secret,) = of_kind(objects, "Secret")
    data = secret_data(secret)
    (service,) = [s for s in of_kind(objects, "Service") if s["spec"].get("clusterIP") != "None"]
    host = f"{service['metadata']['name']}.{NAMESPACE}.svc.{settings['clusterDomain']}"
    uri = urlsplit(data["uri"])
    assert uri.hostname == host
    if settings["auth"].get("password"):
        assert data["password"] == settings["auth"]["password"]
    else:
        assert len(data["password"]) >= 24, "a generated password"
    if name == "rabbitmq":
        # The broker's connection secret: the management API's URL, and the AMQP port.
        assert uri.scheme == "http" and uri.port == settings["service"]["managementPort"]
        assert data["port"] == str(settings["service"]["amqpPort"])
        assert data["username"] == settings["auth"]["username"]
        return
    assert uri.scheme == {"postgres": "postgresql", "mongodb": "mongodb"}[name]
    assert uri.username is not None and uri.password is not None, "credentials in the URI"
    assert unquote(uri.username) == settings["auth"]["username"]
    assert unquote(uri.password) == data["password"]
    assert uri.port == settings["service"]["port"]
    assert uri.path == "/" + settings["auth"]["database"]


@pytest.mark.parametrize("chart", ["Postgres", "MongoDB", "RabbitMQ"])
def test_notes_render(chart: str, helm_render: Any, deploy: Any) -> None:
    root = deploy.CHARTS / chart
    notes = helm_render(root, chart_name(root), NAMESPACE, (), notes=True)
    assert chart_name(root) in notes and "helm test" in notes


def test_a_failing_template_fails_the_render(helm_render: Any, deploy: Any, tmp_path: Path) -> None:
    """The renderer reports errors: RabbitMQ without its management plugin is refused."""
    values = tmp_path / "no-management.yaml"
    values.write_text("plugins: [rabbitmq_prometheus]\n")
    with pytest.raises(deploy.RenderError, match="rabbitmq_management"):
        helm_render(deploy.CHARTS / "RabbitMQ", "rabbitmq", NAMESPACE, (values,))


@pytest.mark.parametrize("chart", ["Postgres", "MongoDB", "RabbitMQ"])
def test_a_missing_required_value_fails_the_render(
    chart: str, helm_render: Any, deploy: Any, tmp_path: Path
) -> None:
    values = tmp_path / "no-username.yaml"
    values.write_text("auth:\n  username: ''\n")
    with pytest.raises(deploy.RenderError, match="username"):
        helm_render(deploy.CHARTS / chart, chart.lower(), NAMESPACE, (values,))


def test_tpl_renders_in_the_rabbitmq_configuration(render: Any, deploy: Any) -> None:
    root = deploy.CHARTS / "RabbitMQ"
    objects = render(root, (root / "ci" / "custom-values.yaml",))
    (config,) = of_kind(objects, "ConfigMap")
    assert "cluster_name = rabbitmq" in config["data"]["90-invoiceflow.conf"]
    assert (
        config["data"]["enabled_plugins"].strip()
        == "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_shovel]."
    )


def test_helm_lint_strict(chart_case: Any, helm: str) -> None:
    chart, values = chart_case
    flags = [arg for v in values for arg in ("-f", str(v))]
    result = subprocess.run(
        [helm, "lint", "--strict", str(chart), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Knative manifests read these charts' Secrets ------------------------------------------


def test_knative_manifests_read_the_secrets_the_charts_make(
    render: Any, by_kind: Any, workload_pods: Any, deploy: Any
) -> None:
    made: dict[str, set[str]] = {}
    for chart in deploy.chart_dirs():
        for secret in of_kind(render(chart), "Secret"):
            assert secret["metadata"]["namespace"] == NAMESPACE
            made[secret["metadata"]["name"]] = set(secret_data(secret))
    wanted = {"DATABASE_URL": "postgres", "MONGODB_URL": "mongodb"}
    seen = set()
    for pod in workload_pods:
        for entry in pod["containers"][0].get("env", []):
            if entry["name"] in wanted:
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] == wanted[entry["name"]], entry
                assert ref["key"] in made[ref["name"]], entry
                seen.add(entry["name"])
    assert seen == set(wanted)
    for doc in by_kind("RabbitmqBrokerConfig").values():
        secret = doc.obj["spec"]["rabbitmqClusterReference"]["connectionSecret"]["name"]
        assert {"uri", "username", "password", "port"} <= made[secret]
