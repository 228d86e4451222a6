"""knative/: every manifest parses, validates against its schema (the real Knative CRDs, the
Kubernetes API), and refers only to things that exist: Services, Broker, Secrets' keys,
ConfigMap, event types, settings.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from invoiceflow import events, naming, settings
from invoiceflow.steps import ALL_RENDERED
from invoiceflow_local.routes import EXACT, PATH_PREFIX, load_public_routes
from invoiceflow_local.triggers import backoff_delay, load_triggers, parse_duration
from support.services import fail_or_skip

REPO = Path(__file__).resolve().parents[2]
KNATIVE = REPO / "knative"
NAMESPACE = "invoiceflow"
BROKER = "invoiceflow"
#: The routes of the one public host, as the local runtime reads them
#: (knative/ingress/gateway-api.yaml); ingress-nginx.yaml must agree.
PUBLIC_ROUTES = load_public_routes(KNATIVE)
#: Cold start (pod scheduling, image already cached, Python imports) plus the work: the least
#: time a Trigger's delivery timeout must allow.
MIN_DELIVERY_TIMEOUT = 30.0
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def container(doc: Any) -> dict[str, Any]:
    containers: list[dict[str, Any]] = doc.obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{doc.where}: one container per function"
    return containers[0]


def env_entries(doc: Any) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for entry in container(doc).get("env", []):
        assert entry["name"] not in entries, f"{doc.where}: {entry['name']} set twice"
        entries[entry["name"]] = entry
    return entries


def event_types() -> set[str]:
    """The event catalogue: the types the code knows (invoiceflow.events)."""
    return set(events.EVENT_TYPES)


# --- parsing and schemas -----------------------------------------------------------------------


def test_every_yaml_file_parses(manifest_files: list[Path], deploy: Any) -> None:
    others = [
        p for c in deploy.chart_dirs() for p in c.rglob("*.yaml") if "templates" not in p.parts
    ]
    assert others, "no chart values to parse"
    for path in [*manifest_files, *others]:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        assert docs, f"{path.relative_to(REPO)} holds no document"
        for doc in docs:
            assert isinstance(doc, dict), f"{path.relative_to(REPO)}: a document is not a mapping"


def test_every_object_has_a_known_kind_and_a_valid_name(
    manifest_files: list[Path], deploy: Any
) -> None:
    for path in manifest_files:
        for doc in deploy.load_docs(path):
            assert doc.obj.get("apiVersion") and doc.obj.get("kind"), doc.where
            known = (
                doc.group in deploy.CORE_GROUPS
                or doc.group in deploy.KNATIVE_GROUPS
                or (doc.group, doc.kind) in deploy.OTHER_KINDS
            )
            assert known, f"{doc.where}: unexpected {doc.obj['apiVersion']} {doc.kind}"
            if doc.group.startswith("kustomize."):
                continue
            assert DNS_LABEL.fullmatch(doc.name), f"{doc.where}: bad name {doc.name!r}"
            if doc.kind != "Namespace" and path.parent == KNATIVE:
                assert doc.obj["metadata"].get("namespace") == NAMESPACE, (
                    f"{doc.where}: every object lives in namespace {NAMESPACE}"
                )


def test_knative_objects_validate_against_the_crd_schemas(
    manifest_files: list[Path], knative_crds: dict[Any, Any], deploy: Any
) -> None:
    checked = set()
    problems = []
    for path in manifest_files:
        for doc in deploy.load_docs(path):
            if doc.group not in deploy.KNATIVE_GROUPS:
                continue
            key = (doc.obj["apiVersion"], doc.kind)
            if key not in knative_crds:
                problems.append(f"{doc.where}: no CRD for {key} in {deploy.CRD_DIR}")
                continue
            schema = deploy.closed_schema(knative_crds[key])
            validator = jsonschema.Draft7Validator(schema)
            for error in sorted(validator.iter_errors(doc.obj), key=str):
                where = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"{doc.where} {doc.kind} {doc.name}: {where}: {error.message}")
            for field in deploy.feature_gated_fields(doc.obj, knative_crds[key]):
                problems.append(f"{doc.where} {doc.kind} {doc.name}: {field}")
            checked.add(doc.kind)
    assert not problems, "\n".join(problems)
    assert checked >= {"Service", "Broker", "Trigger", "SinkBinding", "RabbitmqBrokerConfig"}


def test_the_crd_check_rejects_what_the_api_server_rejects(
    knative_crds: dict[Any, Any], by_kind: Any, deploy: Any
) -> None:
    """The schema check above can fail: an unknown field and a wrong type are caught."""
    import copy

    doc = by_kind("Trigger")["render-pdf"].obj
    schema = deploy.closed_schema(knative_crds[(doc["apiVersion"], "Trigger")])
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors(doc))
    typo = copy.deepcopy(doc)
    typo["spec"]["subscriber"]["reff"] = typo["spec"]["subscriber"].pop("ref")
    assert list(validator.iter_errors(typo))
    wrong = copy.deepcopy(doc)
    wrong["spec"]["delivery"]["retry"] = "five"
    assert list(validator.iter_errors(wrong))

    service = by_kind("KService")["render-pdf"].obj
    key = (service["apiVersion"], "Service")
    assert not deploy.feature_gated_fields(service, knative_crds[key])
    gated = copy.deepcopy(service)
    gated["spec"]["template"]["spec"]["securityContext"] = {"fsGroup": 1000}
    assert deploy.feature_gated_fields(gated, knative_crds[key]), (
        "a field behind a Knative feature flag (off by default) is reported"
    )


def test_core_objects_validate_with_kubernetes_validate(
    manifest_files: list[Path], kube_validate: Any, deploy: Any
) -> None:
    kinds = set()
    for path in manifest_files:
        for doc in deploy.load_docs(path):
            if doc.group in deploy.CORE_GROUPS:
                kube_validate(doc.obj, doc.where)
                kinds.add(doc.kind)
    assert kinds >= {"Namespace", "ConfigMap", "Job", "CronJob", "Ingress", "Service"}


# --- kustomization -----------------------------------------------------------------------------


def test_kustomization_applies_every_numbered_manifest_in_order() -> None:
    kustomization = yaml.safe_load((KNATIVE / "kustomization.yaml").read_text())
    numbered = sorted(p.name for p in KNATIVE.glob("[0-9][0-9]-*.yaml"))
    assert kustomization["resources"] == numbered, (
        "kubectl apply -k and kubectl apply -f of the numbered files must apply the same objects"
    )
    for component in kustomization.get("components", []):
        assert (KNATIVE / component / "kustomization.yaml").exists()


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        fail_or_skip("kubectl (with its built-in kustomize) is not on PATH")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_kustomize_builds_the_numbered_manifests(applied_docs: list[Any]) -> None:
    built = _kustomize(KNATIVE)
    expected = sorted((d.kind, d.name) for d in applied_docs)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == expected
    images = {
        c["image"]
        for d in built
        for c in (d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []))
    }
    kustomization = yaml.safe_load((KNATIVE / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert images == {f"{image['newName']}:{image['newTag']}"}


def test_rabbitmq_operator_component_swaps_the_connection_secret_for_a_cluster(
    tmp_path: Path, knative_crds: dict[Any, Any], deploy: Any
) -> None:
    component = KNATIVE / "components" / "rabbitmq-operator"
    base = Path(os.path.relpath(KNATIVE, tmp_path))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {"resources": [str(base)], "components": [str(base / component.relative_to(KNATIVE))]}
        )
    )
    built = _kustomize(tmp_path)
    (config,) = [d for d in built if d["kind"] == "RabbitmqBrokerConfig"]
    (cluster,) = [d for d in built if d["kind"] == "RabbitmqCluster"]
    reference = config["spec"]["rabbitmqClusterReference"]
    assert reference == {
        "name": cluster["metadata"]["name"],
        "namespace": cluster["metadata"]["namespace"],
    }
    schema = deploy.closed_schema(knative_crds[(config["apiVersion"], config["kind"])])
    jsonschema.validate(config, schema)


# --- the Services ------------------------------------------------------------------------------


def test_one_knative_service_per_function(by_kind: Any) -> None:
    assert set(by_kind("KService")) == set(settings.FUNCTIONS)


def test_every_output_format_has_one_render_step_deployed_for_the_uploaded_event(
    by_kind: Any,
) -> None:
    from invoiceflow import steps
    from invoiceflow.outputs import OUTPUT_FORMATS

    rendered = [fmt for formats in naming.RENDER_STEP_FORMATS.values() for fmt in formats]
    assert sorted(rendered) == sorted(OUTPUT_FORMATS), "each format by exactly one step"
    services = by_kind("KService")
    triggers = {
        t.obj["spec"]["subscriber"]["ref"]["name"]: t.obj["spec"]["filter"]["attributes"]
        for t in by_kind("Trigger").values()
    }
    for step in naming.RENDER_STEP_FORMATS:
        target = step.replace("-", "_")
        env = env_entries(services[step])
        assert env["FUNCTION_SOURCE"]["value"] == f"/app/functions/{target}.py", step
        assert env["FUNCTION_TARGET"]["value"] == target, step
        assert (REPO / "functions" / f"{target}.py").is_file(), step
        assert getattr(steps, target).accepts == (events.INVOICE_UPLOADED,), step
        # only the uploaded events with work for it: its routing attribute (naming.py)
        assert triggers[step] == {
            "type": events.INVOICE_UPLOADED,
            naming.route_attribute(step): naming.ROUTE,
        }, step
    # the routing attributes the uploads set are those of the steps that render each format
    for step, formats in naming.RENDER_STEP_FORMATS.items():
        for fmt in formats:
            assert naming.uploaded_routes([fmt]) == {naming.route_attribute(step): naming.ROUTE}


def test_services_scale_to_zero_with_bounded_resources(by_kind: Any) -> None:
    for name, doc in by_kind("KService").items():
        template = doc.obj["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["autoscaling.knative.dev/min-scale"] == "0", name
        assert int(annotations["autoscaling.knative.dev/max-scale"]) >= 1, name
        spec = template["spec"]
        concurrency = spec["containerConcurrency"]
        assert isinstance(concurrency, int) and concurrency >= 1, name
        assert 1 <= spec["timeoutSeconds"] <= 600, name
        c = container(doc)
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{name}: {bound}"
        env = env_entries(doc)
        assert env["THREADS"].get("value") == str(concurrency), (
            f"{name}: THREADS must equal containerConcurrency (one worker, that many threads)"
        )
        security = c["securityContext"]
        assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False
        assert "PORT" not in env, f"{name}: Knative sets PORT itself"


def test_renderers_take_one_request_per_pod_and_scale_to_their_triggers(by_kind: Any) -> None:
    """Rendering is CPU work in one interpreter: a second request in the same pod only shares
    its lock (20-30 % more CPU per render); Knative adds pods instead, as many as the
    Trigger's parallelism lets in."""
    services = by_kind("KService")
    triggers = {t.obj["spec"]["subscriber"]["ref"]["name"]: t for t in by_kind("Trigger").values()}
    for name in ("render-pdf", "render-xlsx", "render-xml"):
        template = services[name].obj["spec"]["template"]
        assert template["spec"]["containerConcurrency"] == 1, name
        parallelism = triggers[name].obj["metadata"]["annotations"][
            "rabbitmq.eventing.knative.dev/parallelism"
        ]
        max_scale = template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"]
        assert int(max_scale) >= int(parallelism), name


def test_only_http_functions_are_reachable_from_outside(by_kind: Any) -> None:
    public = {route.service for route in PUBLIC_ROUTES}
    subscribers = {t.obj["spec"]["subscriber"]["ref"]["name"] for t in by_kind("Trigger").values()}
    assert not subscribers & public, "a public Service must never receive events"
    for name, doc in by_kind("KService").items():
        visibility = doc.obj["metadata"].get("labels", {}).get("networking.knative.dev/visibility")
        if name in public:
            assert visibility is None, f"{name} serves public routes and must be public"
        else:
            assert visibility == "cluster-local", f"{name} only receives events"


def test_every_service_has_liveness_and_readiness_probes_the_code_serves(by_kind: Any) -> None:
    from invoiceflow import health

    for name, doc in by_kind("KService").items():
        c = container(doc)
        assert c["readinessProbe"]["httpGet"]["path"] == health.READINESS_PATH, name
        assert c["livenessProbe"]["httpGet"]["path"] == health.LIVENESS_PATH, name
        # the readiness check may wait CHECK_TIMEOUT for MongoDB: the probe must wait longer
        # (Kubernetes' default timeoutSeconds is 1)
        assert c["readinessProbe"].get("timeoutSeconds", 1) > health.CHECK_TIMEOUT, name
        for probe in ("readinessProbe", "livenessProbe"):
            # Knative probes the one container port itself: a port here must be that one
            assert c[probe]["httpGet"].get("port") in (None, c["ports"][0]["containerPort"])
        source = REPO / "functions" / f"{name.replace('-', '_')}.py"
        assert f'@probed("{name}")' in source.read_text(), (
            f"{source.name}: the entry point must answer the probes"
        )


def test_every_service_and_job_runs_the_same_image(by_kind: Any) -> None:
    images = {container(d)["image"] for d in by_kind("KService").values()}
    for job in by_kind("Job").values():
        images.add(job.obj["spec"]["template"]["spec"]["containers"][0]["image"])
    for cron in by_kind("CronJob").values():
        pod = cron.obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        images.add(pod["containers"][0]["image"])
    assert len(images) == 1, f"one image for the functions, migrations and relay: {images}"
    kustomization = yaml.safe_load((KNATIVE / "kustomization.yaml").read_text())
    assert any(images.pop().startswith(i["name"] + ":") for i in kustomization["images"])


def test_migrations_run_from_the_product_image(by_kind: Any) -> None:
    (job,) = by_kind("Job").values()
    spec = job.obj["spec"]["template"]["spec"]
    command = spec["containers"][0]["command"]
    assert command == ["invoiceflow", "db", "migrate"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "invoiceflow" in scripts, "the image's `invoiceflow` command comes from pyproject"
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_every_setting_a_function_reads_is_provided_and_secrets_only_from_secrets(
    by_kind: Any,
) -> None:
    config_maps = {name: doc.obj.get("data", {}) for name, doc in by_kind("ConfigMap").items()}
    bound = {doc.obj["spec"]["subject"].get("name") for doc in by_kind("SinkBinding").values()}
    known = {var.name: var for var in settings.ENV_VARS}
    problems = []
    for name, data in config_maps.items():
        for key in data:
            if key in known and known[key].secret:
                problems.append(f"ConfigMap {name}: {key} is a secret")
            elif key not in known:
                problems.append(f"ConfigMap {name}: {key} is not a setting (ENV_VARS)")
    for service, doc in by_kind("KService").items():
        env = env_entries(doc)
        provided: dict[str, str] = {}
        for source in container(doc).get("envFrom", []):
            if "configMapRef" in source:
                ref = source["configMapRef"]["name"]
                assert ref in config_maps, f"{service}: envFrom ConfigMap {ref} does not exist"
                provided.update(dict.fromkeys(config_maps[ref], f"ConfigMap {ref}"))
            else:
                problems.append(
                    f"{service}: envFrom {source}: only ConfigMaps (a Secret's keys "
                    "cannot be checked here; use secretKeyRef)"
                )
        for var_name, entry in env.items():
            var = known.get(var_name)
            value_from = entry.get("valueFrom", {})
            if var is not None and var.secret:
                if "secretKeyRef" not in value_from:
                    problems.append(f"{service}: secret {var_name} not from a Secret")
                if service not in var.used_by:
                    problems.append(f"{service}: gets secret {var_name} it does not read")
            elif "secretKeyRef" in value_from and var is not None:
                problems.append(f"{service}: {var_name} is no secret; put it in the ConfigMap")
            if "configMapKeyRef" in value_from:
                ref = value_from["configMapKeyRef"]
                assert ref["key"] in config_maps.get(ref["name"], {}), f"{service}: {ref}"
            provided[var_name] = "env"
        if service in bound:
            provided["K_SINK"] = "SinkBinding"
        for var in settings.ENV_VARS:
            if service in var.used_by and var.name not in provided:
                problems.append(f"{service} reads {var.name} but its Service does not set it")
        if "K_SINK" in env:
            problems.append(f"{service}: K_SINK is the SinkBinding's to set")
    assert not problems, "\n".join(problems)


def test_secret_references_name_the_secrets_the_operator_guide_creates(workload_pods: Any) -> None:
    """Every Secret a manifest reads is created by a chart or by a command in the guide."""
    guide = (REPO / "docs" / "operations.md").read_text()
    referenced = set()
    for pod in workload_pods:
        for entry in pod["containers"][0].get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                referenced.add((ref["name"], ref["key"]))
    assert referenced
    for name, key in sorted(referenced):
        assert name in guide and key in guide, (
            f"docs/operations.md does not tell how to make Secret {name} (key {key})"
        )


def test_a_secret_whose_absence_the_guide_allows_is_optional(by_kind: Any) -> None:
    """docs/operations.md ("The secrets you create"): without EVENT_PRODUCER_KEYS every
    invoice.requested event is refused (the setting's "unset"), without SENDGRID_API_KEY notify
    writes .eml files, JWT_PRIVATE_KEY is for RS256/EdDSA only. A secretKeyRef that is not
    optional keeps the pod from starting instead (CreateContainerConfigError: the Secret or
    its key is missing), so these must be `optional: true`; the others must not be."""
    optional = {"EVENT_PRODUCER_KEYS", "SENDGRID_API_KEY", "JWT_PRIVATE_KEY"}
    guide = (REPO / "docs" / "operations.md").read_text()
    assert "Without the Secret's key every invoice.requested event is refused" in guide
    problems = []
    for service, doc in by_kind("KService").items():
        for name, entry in env_entries(doc).items():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            if bool(ref.get("optional")) != (name in optional):
                problems.append(f"{service}: {name} optional={ref.get('optional', False)}")
    assert not problems, "\n".join(problems)


# --- SinkBindings, Broker, Triggers ------------------------------------------------------------


def test_every_emitter_gets_k_sink_from_a_sinkbinding_to_the_broker(by_kind: Any) -> None:
    emitters = next(v.used_by for v in settings.ENV_VARS if v.name == "K_SINK")
    by_name = []
    cron_jobs = by_kind("CronJob")
    for doc in by_kind("SinkBinding").values():
        spec = doc.obj["spec"]
        assert spec["sink"]["ref"] == {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "name": BROKER,
        }
        subject = spec["subject"]
        if "name" in subject:
            assert (subject["apiVersion"], subject["kind"]) == ("serving.knative.dev/v1", "Service")
            by_name.append(subject["name"])
            continue
        # By label: the Jobs a CronJob creates (the outbox relay).
        assert (subject["apiVersion"], subject["kind"]) == ("batch/v1", "Job"), doc.where
        wanted = subject["selector"]["matchLabels"].items()
        matching = [
            c
            for c in cron_jobs.values()
            if wanted <= c.obj["spec"]["jobTemplate"]["metadata"]["labels"].items()
        ]
        assert matching, f"{doc.where}: its selector matches no CronJob's Jobs"
    assert sorted(by_name) == sorted(emitters)
    assert set(by_name) <= set(by_kind("KService"))


def test_the_outbox_relay_cronjob_sends_pending_events(by_kind: Any) -> None:
    (cron,) = by_kind("CronJob").values()
    spec = cron.obj["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (relay,) = pod["containers"]
    assert relay["command"] == ["invoiceflow", "outbox", "relay"]
    env = {e["name"]: e for e in relay["env"]}
    assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]
    assert "K_SINK" not in env, "the SinkBinding sets K_SINK"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_broker_is_a_rabbitmq_broker_with_quorum_queues_and_a_dead_letter_sink(
    by_kind: Any,
) -> None:
    broker = by_kind("Broker")[BROKER].obj
    annotations = broker["metadata"]["annotations"]
    assert annotations["eventing.knative.dev/broker.class"] == "RabbitMQBroker"
    config = broker["spec"]["config"]
    assert config["kind"] == "RabbitmqBrokerConfig"
    rabbit = by_kind("RabbitmqBrokerConfig")[config["name"]].obj
    assert config["apiVersion"] == rabbit["apiVersion"]
    assert rabbit["spec"]["queueType"] == "quorum"
    reference = rabbit["spec"]["rabbitmqClusterReference"]
    assert ("name" in reference) != ("connectionSecret" in reference), (
        "a RabbitmqCluster name or a connection secret, never both"
    )
    sink = broker["spec"]["delivery"]["deadLetterSink"]["ref"]
    assert sink["kind"] == "Service" and sink["name"] in by_kind("KService")


def test_triggers_route_exact_types_to_existing_services_with_their_own_delivery(
    by_kind: Any,
) -> None:
    services = by_kind("KService")
    types = event_types()
    readme = REPO / "events" / "README.md"
    catalogue = readme.read_text() if readme.exists() else None
    triggers = by_kind("Trigger")
    assert triggers
    subscriptions = set()
    problems = []
    for name, doc in triggers.items():
        spec = doc.obj["spec"]
        if spec["broker"] not in by_kind("Broker"):
            problems.append(f"{name}: no Broker {spec['broker']}")
        attributes = spec["filter"]["attributes"]
        if "filters" in spec or "type" not in attributes:
            problems.append(f"{name}: filter on the exact event type")
        extra = {k: v for k, v in attributes.items() if k != "type"}
        routed = attributes.get("type") == events.INVOICE_UPLOADED and extra == {
            naming.route_attribute(spec["subscriber"]["ref"]["name"]): naming.ROUTE
        }
        complete = attributes.get("type") == events.INVOICE_RENDERED and extra == {
            ALL_RENDERED: "true"
        }
        if extra and not (routed or complete):
            problems.append(
                f"{name}: besides the type, only an uploaded event's routing attribute of "
                f"its own render step (naming.uploaded_routes) or a rendered event's "
                f"{ALL_RENDERED}: {sorted(attributes)}"
            )
        event_type = spec["filter"]["attributes"]["type"]
        if event_type not in types:
            problems.append(f"{name}: {event_type} is not in the event catalogue")
        if catalogue is not None and event_type not in catalogue:
            problems.append(f"{name}: {event_type} is not in events/README.md")
        subscriber = spec["subscriber"]["ref"]
        if subscriber["kind"] != "Service" or subscriber["name"] not in services:
            problems.append(f"{name}: subscriber {subscriber} is not a Knative Service here")
            continue
        key = (subscriber["name"], spec["subscriber"].get("uri"), event_type)
        if key in subscriptions:
            problems.append(f"{name}: a second Trigger for {key}")
        subscriptions.add(key)
        delivery = spec.get("delivery") or {}
        dead_letter = (delivery.get("deadLetterSink") or {}).get("ref", {})
        if dead_letter.get("name") not in services:
            problems.append(
                f"{name}: its delivery needs a deadLetterSink Service (a Trigger's "
                "delivery replaces the Broker's)"
            )
        if not (isinstance(delivery.get("retry"), int) and delivery["retry"] >= 1):
            problems.append(f"{name}: retry at least once")
        if delivery.get("backoffPolicy") not in ("exponential", "linear"):
            problems.append(f"{name}: backoffPolicy exponential or linear")
        if parse_duration(delivery.get("backoffDelay", "PT0S")) <= 0:
            problems.append(f"{name}: a backoffDelay")
        timeout = parse_duration(delivery.get("timeout", "PT0S"))
        limit = services[subscriber["name"]].obj["spec"]["template"]["spec"]["timeoutSeconds"]
        if not MIN_DELIVERY_TIMEOUT <= timeout <= limit:
            problems.append(
                f"{name}: timeout {timeout}s must cover a cold start "
                f"(>= {MIN_DELIVERY_TIMEOUT}s) within the subscriber's "
                f"timeoutSeconds ({limit}s)"
            )
        parallelism = (
            doc.obj["metadata"]
            .get("annotations", {})
            .get("rabbitmq.eventing.knative.dev/parallelism")
        )
        if parallelism is not None and not (parallelism.isdigit() and int(parallelism) >= 1):
            problems.append(f"{name}: parallelism must be a whole number as a string")
    assert not problems, "\n".join(problems)
    # invoice.requested goes to intake, a cluster-local Service, and to no public one
    requested = [
        t.obj["spec"]["subscriber"]["ref"]["name"]
        for t in triggers.values()
        if t.obj["spec"]["filter"]["attributes"]["type"] == events.INVOICE_REQUESTED
    ]
    assert requested == ["intake"]


def test_the_local_runtime_reads_the_same_triggers(by_kind: Any) -> None:
    loaded = {t.name: t for t in load_triggers(KNATIVE, broker=BROKER)}
    assert set(loaded) == set(by_kind("Trigger"))
    for name, doc in by_kind("Trigger").items():
        assert dict(loaded[name].filter) == doc.obj["spec"]["filter"]["attributes"]


# --- one public host ---------------------------------------------------------------------------


def _routes_gateway(docs: list[Any]) -> set[tuple[str, str, str]]:
    """(path, match type, upstream host) of the HTTPRoute."""
    (route,) = [d.obj for d in docs if d.kind == "HTTPRoute"]
    routes = set()
    for rule in route["spec"]["rules"]:
        (rewrite,) = [f["urlRewrite"] for f in rule["filters"] if f["type"] == "URLRewrite"]
        for match in rule["matches"]:
            routes.add((match["path"]["value"], match["path"]["type"], rewrite["hostname"]))
    return routes


#: Ingress pathType -> the HTTPRoute path match type that matches the same paths
NGINX_PATH_TYPES = {"Exact": EXACT, "Prefix": PATH_PREFIX}


def _routes_nginx(docs: list[Any]) -> set[tuple[str, str, str]]:
    """(path, match type as the HTTPRoute names it, upstream host) of the Ingresses."""
    routes = set()
    for doc in docs:
        if doc.kind != "Ingress":
            continue
        host = doc.obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/upstream-vhost"]
        for rule in doc.obj["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                routes.add((path["path"], NGINX_PATH_TYPES[path["pathType"]], host))
    return routes


@pytest.mark.parametrize(
    "example,routes_of",
    [("gateway-api.yaml", _routes_gateway), ("ingress-nginx.yaml", _routes_nginx)],
)
def test_one_host_routes_the_http_paths_to_their_functions(
    example: str, routes_of: Any, by_kind: Any, deploy: Any
) -> None:
    """Both ingress examples route exactly the routes the local runtime reads, to the
    Services' cluster-local hosts, and only to public Services."""
    routes = routes_of(deploy.load_docs(KNATIVE / "ingress" / example))
    expected = {
        (r.path, r.match, f"{r.service}.{NAMESPACE}.svc.cluster.local") for r in PUBLIC_ROUTES
    }
    assert routes == expected, example
    services = by_kind("KService")
    for route in PUBLIC_ROUTES:
        labels = services[route.service].obj["metadata"].get("labels", {})
        assert "networking.knative.dev/visibility" not in labels, f"{route.service} is not public"


def _match_types(docs: list[Any]) -> dict[str, str]:
    """path -> how it is matched (Exact/Prefix), from either ingress example."""
    types: dict[str, str] = {}
    for doc in docs:
        if doc.kind == "HTTPRoute":
            for rule in doc.obj["spec"]["rules"]:
                for match in rule["matches"]:
                    types[match["path"]["value"]] = match["path"]["type"]
        elif doc.kind == "Ingress":
            for rule in doc.obj["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    types[path["path"]] = path["pathType"]
    return types


@pytest.mark.parametrize("example", ["gateway-api.yaml", "ingress-nginx.yaml"])
def test_the_public_host_routes_the_function_paths_exactly(example: str, deploy: Any) -> None:
    """/upload/events, /login/healthz...: nothing below a function's own path is public."""
    types = _match_types(deploy.load_docs(KNATIVE / "ingress" / example))
    for path in ("/login", "/upload", "/settings/branding", "/download", "/openapi.json"):
        assert types[path] == "Exact", (example, path)
    assert types["/settings/numbering"] == "Exact", example
    assert set(types) == {route.path for route in PUBLIC_ROUTES}, example


def test_every_public_route_is_served_by_its_function(clean_env: None) -> None:
    """Each route of the ingress manifest reaches a function that serves that path: on the
    local runtime (which routes by the same manifest), with a valid token, no route answers
    the runtime's own 404 or its function's "no such resource" (what a function answers to a
    path it does not serve, as the last request shows)."""
    import requests

    from invoiceflow import accounts
    from invoiceflow.context import get_context
    from invoiceflow_local.dev import LocalRuntime

    with LocalRuntime("127.0.0.1", 0) as runtime:
        accounts.add_user(get_context().repo, "routes@example.com", "a-password-for-routes")
        r = requests.post(
            runtime.url + "/login", auth=("routes@example.com", "a-password-for-routes"), timeout=30
        )
        auth = {"Authorization": f"Bearer {r.json()['token']}"}

        def routing_miss(url: str) -> bool:
            answers = [requests.request(m, url, headers=auth, timeout=30) for m in ("GET", "POST")]
            return any(
                a.status_code == 404
                and a.json().get("detail", "no such resource") == "no such resource"
                for a in answers
            )

        for route in PUBLIC_ROUTES:
            paths = [route.path]
            if route.match == PATH_PREFIX:
                paths.append(route.path + "/00000000-0000-4000-8000-000000000000")
            for path in paths:
                assert not routing_miss(runtime.url + path), (path, route.service)
        assert routing_miss(f"{runtime.internal_url}/_functions/download/not-a-route")
        assert routing_miss(runtime.url + "/not-a-route")


def test_the_paths_the_code_serves_are_the_manifest_routes() -> None:
    """naming's public paths (what the handlers dispatch on and the links point at) are exactly
    the ingress manifest's routes, and each goes to the function that serves it."""
    from invoiceflow import naming

    served = {
        (naming.UPLOAD_PATH, "upload"),
        (naming.SETTINGS_BRANDING_PATH, "upload"),
        (naming.DOWNLOAD_PATH, "download"),
        (naming.INVOICES_PATH, "download"),
        (naming.OPENAPI_PATH, "download"),
        (naming.WEBAPP_PATH, "download"),
        (naming.WEBAPP_ASSETS_PATH, "download"),
        (naming.SETTINGS_NUMBERING_PATH, "upload"),
    }
    routes = {(route.path, route.service) for route in PUBLIC_ROUTES}
    assert served <= routes, served - routes
    assert {path for path, _ in routes} - {path for path, _ in served} == {"/login"}


def test_the_bridge_triggers_of_the_upgrade_guide(
    by_kind: Any, knative_crds: dict[Any, Any], deploy: Any
) -> None:
    """docs/operations.md ("Upgrades"): its sed command makes a bridge of each render Trigger
    and of notify-rendered (same filter, subscriber and delivery, another name, a valid
    Trigger) and leaves the other Triggers as they are."""
    guide = (REPO / "docs" / "operations.md").read_text()
    (command,) = re.findall(r"^ *(sed -E .*knative/50-triggers\.yaml) \| kubectl", guide, re.M)
    out = subprocess.run(
        ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    bridged = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out) if d}
    triggers = {name: doc.obj for name, doc in by_kind("Trigger").items()}
    renders = {step for step in naming.RENDER_STEP_FORMATS} | {"notify-rendered"}
    assert set(bridged) == (set(triggers) - renders) | {f"{s}-bridge" for s in renders}
    schema = deploy.closed_schema(knative_crds[("eventing.knative.dev/v1", "Trigger")])
    for name, doc in bridged.items():
        original = triggers[name.removesuffix("-bridge")]
        assert doc["spec"] == original["spec"], name
        assert not list(jsonschema.Draft7Validator(schema).iter_errors(doc)), name


def test_the_upgrade_guide_waits_out_the_longest_retry_of_a_bridged_trigger(by_kind: Any) -> None:
    """docs/operations.md ("Upgrades", step 3): an old Trigger is deleted only once its queue
    is drained and then "N more minutes" have passed, so an event it is still retrying is not
    lost with its queue. N must cover every attempt (each up to the delivery timeout) and the
    backoff between them (Knative's formula, invoiceflow_local.triggers.backoff_delay) of each
    Trigger the guide bridges: notify-rendered retries longest."""
    guide = (REPO / "docs" / "operations.md").read_text()
    (minutes,) = re.findall(r"wait (\d+) more minutes, the longest one event can be retried", guide)
    renders = {step for step in naming.RENDER_STEP_FORMATS} | {"notify-rendered"}
    longest = 0.0
    for name in renders:
        delivery = by_kind("Trigger")[name].obj["spec"]["delivery"]
        retries = delivery["retry"]
        delay = parse_duration(delivery["backoffDelay"])
        span = (retries + 1) * parse_duration(delivery["timeout"]) + sum(
            backoff_delay(delivery["backoffPolicy"], delay, n) for n in range(1, retries + 1)
        )
        longest = max(longest, span)
    assert int(minutes) * 60 >= longest, f"{minutes} minutes < {longest:.0f} s"


def test_the_operations_guide_tables_match_the_manifests(by_kind: Any) -> None:
    """docs/operations.md: "What runs" names every public path of each Service, `kn service
    list` shows as many Services as there are, and the MongoDB chart's Secret is said to be
    read by every Service that reads it."""
    guide = (REPO / "docs" / "operations.md").read_text()
    rows = {
        cells[1].split("`")[1]: cells
        for line in guide.splitlines()
        if line.startswith("| `") and len(cells := line.split("|")) > 3
    }
    services = by_kind("KService")
    problems = []
    for route in PUBLIC_ROUTES:
        if route.path != "/" and f"`{route.path}" not in rows[route.service][2]:
            problems.append(f"What runs: {route.service} does not name {route.path}")
    count = re.search(r"kn service list -n invoiceflow +# all (\w+) Ready", guide)
    words = {"seven": 7, "eight": 8, "nine": 9, "ten": 10}
    if count is None or words.get(count.group(1)) != len(services):
        problems.append(f"kn service list: the guide's count is not {len(services)}")
    readers = sorted(n for n, d in services.items() if "MONGODB_URL" in env_entries(d))
    missing = [n for n in readers if n not in rows["mongodb"][3]]
    if missing:
        problems.append(f"Secret mongodb: read by {missing} too")
    assert not problems, "\n".join(problems)
