"""attack32b F2, F3, F4: what ``/v1/stats``, ``/openapi.json`` and the SLO alert promise.

* F2: the rates were rounded to 3 decimals, so 2 ads in a minute read ``0.033`` and ``rate × windowSeconds`` 1.98
  (an ``int()`` of 1), against the Glossary's identity; now they are not rounded.
* F3: ``/openapi.json`` listed neither 415 (a ``Content-Encoding``) nor 501 (a transfer coding) on any route,
  though every route answers them; now both are documented with the framing bounds.
* F4: the SLO's formula ``(p − 1) × step + 20`` gave p1 20 s while the README and the alert used 30 s; now the
  bound is the aging horizon (MAX WAIT, one step for p1) + 20 s, in one place (:mod:`gamead_core.slo`), and the
  alert's thresholds are that rule's for the default step."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import yaml

from gamead_core.api.contract import error_statuses
from gamead_core.config import GameadSettings
from gamead_core.stats.rates import aging_horizon
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import QueueSampler, Sample
from tests.unit.test_audit_and_contract import _doc

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


def test_rate_times_window_gives_back_the_count_of_a_few_ads() -> None:
    """The drill: 2 ads submitted, 8 attempts retried, 2 dead-lettered, 2 completed, one sample a second (late by
    0-50 ms); a minute later each ``rate × windowSeconds`` is the count (was 1.98, 7.98, 1.98)."""
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None), GameadSettings(), node_id="api-1", sections=False)
    counts = {"submitted": 2, "completed": 2, "retried": 8, "dead": 2}
    for i in range(75):
        t = T0 + i + 0.005 * (i * 37 % 11)
        now = {k: (v if i >= 10 else 0) for k, v in counts.items()}  # all of it between the 5th and 10th s
        sampler._append(Sample(QueueReading(t=t, connected=True), **now))
        rates = sampler.stats()["rates"]
        if 20 <= i <= 60:  # the minute's span holds the whole burst
            window = rates["windowSeconds"]
            for name, key in (("submitted", "submittedPerSec"), ("completed", "completedPerSec"),
                              ("retried", "retriedPerSec"), ("dead", "deadLetteredPerSec")):
                assert abs(rates[key] * window - counts[name]) < 1e-6, (i, key, rates[key], window)
                assert int(rates[key] * window + 1e-6) == counts[name]


def test_every_route_documents_415_and_501_with_the_error_schema() -> None:
    paths = _doc()["paths"]
    assert paths
    for path, ops in paths.items():
        assert {415, 501} <= error_statuses(path), path
        for method, op in ops.items():
            for status in ("415", "501"):
                assert status in op["responses"], (method, path, status)  # was: on no route
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                if path not in ("/healthz", "/readyz"):
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    described = paths["/ads"]["post"]["responses"]
    assert "unsupported_media_type" in described["415"]["description"]
    assert "not_implemented" in described["501"]["description"]


def test_the_slo_is_max_wait_plus_20_s_in_the_readme_the_alert_and_its_generator() -> None:
    from gamead_core.slo import alert_expr, slo_seconds

    step = GameadSettings().queue.aging_step
    assert [slo_seconds(p, step) for p in range(1, 6)] == [aging_horizon(p, step) + 20 for p in range(1, 6)] \
        == [30, 30, 40, 50, 60]  # p1: one step, as MAX WAIT (the formula gave 20 s)
    rules = yaml.safe_load((ROOT / "manifests/monitoring/gamead.rules.yml").read_text(encoding="utf-8"))
    alert = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "GameadOldestAdOverSLO")
    assert alert["expr"] == alert_expr(step)  # the thresholds are the rule's for the default step
    assert "max(p-1, 1) x aging_step + 20 s" in alert["annotations"]["description"]
    rules_text = (ROOT / "manifests/monitoring/gamead.rules.yml").read_text(encoding="utf-8")
    assert "python -m gamead_core.slo --aging-step" in rules_text  # how to regenerate it for another step
    assert alert_expr(5).splitlines()[0].endswith('{priority=~"1|2"} > 25')
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    slo = readme.split("**Service level objectives.**", 1)[1][:600]
    assert "max(*p* − 1, 1) × `queue.aging_step`" in slo and "p1 and p2 30 s, p3 40 s, p4 50 s, p5 60 s" in slo
    assert not re.search(r"younger than \(\*p\* − 1\) ×", slo), slo
