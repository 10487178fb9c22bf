"""manifests/monitoring/: the alert rules validate (and pass their promtool unit tests when promtool is
installed), the PrometheusRule holds the same rules, the monitors point at ports the workloads expose, and
every series a rule or a dashboard panel reads is one gamead exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from gamead_core.telemetry.collectors import ApiCollector
from gamead_core.telemetry.metrics import API_REGISTRY, WORKER_REGISTRY

ROOT = Path(__file__).resolve().parents[2] / "manifests"
BASE = ROOT / "base"
MON = ROOT / "monitoring"
RULES = MON / "gamead.rules.yml"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def exported_series() -> set[str]:
    """Every series name a gamead process serves (sample names: ``_total``, ``_bucket``… included)."""
    names: set[str] = set()
    for family in [*API_REGISTRY.collect(), *WORKER_REGISTRY.collect(), *ApiCollector(SimpleNamespace(state=SimpleNamespace())).collect()]:
        names.add(family.name)
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def _series_in(expr: str) -> set[str]:
    """Metric names an expression reads (identifiers starting ``gamead_``; recording rules ``gamead:…``)."""
    return set(re.findall(r"\b(gamead_[a-z0-9_]+)\b", expr))


def test_rules_file_structure() -> None:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(doc) == {"groups"}
    alerts = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            if "alert" in rule:
                alerts.append(rule["alert"])
                assert rule["labels"]["severity"] in {"page", "ticket"}
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]
                assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s")))
    # the list: oldest-age SLO, DLQ growing, no workers with backlog, error ratio, autoscaler pinned, API down
    assert {"GameadOldestAdOverSLO", "GameadDLQGrowing", "GameadNoWorkersWithBacklog", "GameadHighFailureRatio",
            "GameadApiErrorRatio", "GameadAutoscalerPinnedAtMax", "GameadApiDown"} <= set(alerts)


def test_rules_and_dashboard_read_only_series_gamead_exports() -> None:
    exported = exported_series()
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    dashboard = json.loads((MON / "gamead-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    unknown = {name for e in exprs for name in _series_in(e)} - exported
    assert not unknown, f"series no gamead process exports: {sorted(unknown)}"


def test_prometheusrule_holds_the_same_rules() -> None:
    (doc,) = _docs(MON / "prometheusrule.yaml")
    assert doc["kind"] == "PrometheusRule" and doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_monitors_scrape_ports_the_workloads_expose() -> None:
    kust = yaml.safe_load((MON / "kustomization.yaml").read_text())
    assert kust["resources"][0] == "../base"  # not "../", which holds monitoring/ itself (attack39b F1)
    for res in kust["resources"][1:]:
        assert (MON / res).is_file()
    monitors = {d["kind"]: d for d in _docs(MON / "monitors.yaml")}
    worker = next(d for d in _docs(BASE / "worker.yaml") if d["kind"] == "Deployment")
    api_service = next(d for d in _docs(BASE / "api.yaml") if d["kind"] == "Service")
    pod_ports = {p["name"]: p["containerPort"] for c in worker["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
    assert monitors["PodMonitor"]["spec"]["selector"]["matchLabels"].items() <= \
        worker["spec"]["template"]["metadata"]["labels"].items()
    port = monitors["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["port"]
    config = yaml.safe_load((BASE / "config.yaml").read_text())
    assert pod_ports[port] == config["worker"]["metrics_port"] and config["worker"]["metrics_host"] == "0.0.0.0"
    sm = monitors["ServiceMonitor"]["spec"]
    assert sm["selector"]["matchLabels"].items() <= api_service["metadata"]["labels"].items()
    assert sm["endpoints"][0]["port"] in {p["name"] for p in api_service["spec"]["ports"]}
    assert sm["endpoints"][0]["path"] == "/metrics"


def test_dashboard_is_grafana_json() -> None:
    dash = json.loads((MON / "gamead-dashboard.json").read_text())
    assert dash["uid"] and dash["title"] == "gamead"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for what in ("backlog", "oldest", "throughput", "wait (heatmap)", "processing time (heatmap)", "dlq",
                 "workers", "autoscaler"):
        assert what in titles


def test_promtool_checks_and_unit_tests_pass() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); the structure tests above still ran")
    for args in (["check", "rules", RULES.name], ["test", "rules", "gamead.rules.test.yml"]):
        done = subprocess.run([promtool, *args], cwd=MON, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def write_prometheusrule() -> None:
    """Regenerate prometheusrule.yaml from gamead.rules.yml (run after editing the rules)."""
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "gamead", "namespace": "gamead",
                        "labels": {"app.kubernetes.io/name": "gamead", "app.kubernetes.io/component": "monitoring"}},
           "spec": {"groups": yaml.safe_load(RULES.read_text())["groups"]}}
    head = "".join(line for line in (MON / "prometheusrule.yaml").read_text().splitlines(True) if line.startswith("#"))

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v,
                                                                 style="|" if "\n" in v else None))
    (MON / "prometheusrule.yaml").write_text(head + yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=120))


def test_ack_pending_is_named_ack_pending_and_in_flight_means_busy_slots_only() -> None:
    """attack25d #3: ``gamead_queue_in_flight`` was JetStream's ack pending (prefetched and backing-off ads too),
    while ``workers``/``top`` IN-FL and ``/v1/stats nodes.inFlight`` are busy slots: one name per thing."""
    from gamead_core.queue.depth import LevelDepth
    from gamead_core.stats.reading import QueueReading
    from prometheus_client import CollectorRegistry, generate_latest

    reading = QueueReading(t=0.0, connected=True, levels=(LevelDepth(level=2, pending=5, ack_pending=3),))
    sampler = SimpleNamespace(latest=SimpleNamespace(reading=reading, dlq_size=None), nodes_ok=False, extras={})
    registry = CollectorRegistry()
    registry.register(ApiCollector(SimpleNamespace(state=SimpleNamespace(stats_sampler=sampler))))
    text = generate_latest(registry).decode()
    assert 'gamead_queue_ack_pending{priority="2"} 3.0' in text
    assert "in_flight" not in text
    dashboard = json.loads((MON / "gamead-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        if any("ack_pending" in t["expr"] for t in panel["targets"]):
            assert "in flight" not in panel["title"].lower(), panel["title"]


def test_a_value_no_series_can_hold_leaves_its_section_out_never_the_page(caplog: pytest.LogCaptureFixture) -> None:
    """attack31b F5: one number past float range in the sample (whatever let it through) made `generate_latest`
    raise, so every `/metrics` was a 500 with two tracebacks per scrape. Now its section is left out, said once,
    and every other series is served."""
    from gamead_core.queue.depth import LevelDepth
    from gamead_core.stats.reading import QueueReading
    from prometheus_client import CollectorRegistry, generate_latest

    reading = QueueReading(t=0.0, connected=True, levels=(LevelDepth(level=2, pending=5, ack_pending=3),),
                           lost_attempts=10**400)
    sampler = SimpleNamespace(latest=SimpleNamespace(reading=reading, dlq_size=7), nodes_ok=False, extras={})
    registry = CollectorRegistry()
    registry.register(ApiCollector(SimpleNamespace(state=SimpleNamespace(stats_sampler=sampler))))
    with caplog.at_level("WARNING", logger="gamead_core.telemetry.collectors"):
        pages = [generate_latest(registry).decode() for _ in range(3)]
    assert 'gamead_queue_backlog{priority="2"} 5.0' in pages[-1] and "gamead_dlq_entries 7.0" in pages[-1]
    assert "gamead_attempts_lost" not in pages[-1]
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(said) == 1 and "attempts lost" in said[0], said
