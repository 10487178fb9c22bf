"""attack43b F1 on a real API: ``gamead top`` named the work stream's growth "submitted", and DLQ replays grow it.

With no worker, 4 dead ads imported and replayed and not one ad submitted (the API's ``gamead_ads_submitted_total`` is
0), ``/v1/stats`` ``submittedPerSec`` × ``windowSeconds`` is 4, and ``gamead top --once`` printed ``submitted 0.2
ads/s`` (4 in its 20 s window): 4 submissions that never happened. The row is ``queued`` now (README Glossary: ads put
on the queue, submitted or replayed), and so is ``gamead scale status``'s ``observed`` line, which said ``submitted
0.21 ads/s`` from the same figure. Measured: without the fix 1 of 1 run failed for each (the table said ``submitted
0.2 ads/s``; with the table fixed, scale status ``submitted 0.21 ads/s``), with it 2 of 2 passed.
"""

from __future__ import annotations

import re

from typer.testing import CliRunner

from gamead_cli.main import app as cli
from tests.integration import dlq_lane
from tests.integration.dlq_lane import Lane, made_up_entry
from tests.support import wait_for

lane = dlq_lane.lane  # the fixture: a fresh nats-server and one API per test, no worker


def _submitted_total(lane: Lane) -> float:
    text = lane.http.get("/metrics").text
    return sum(float(m) for m in re.findall(r"^gamead_ads_submitted_total\{[^}]*\} (\S+)$", text, re.M))


def test_replayed_ads_are_shown_queued_not_submitted(lane: Lane) -> None:
    """Replays put ads on the queue: the dashboard's rate row says ``queued``, never ``submitted``, for them."""
    def sampling() -> bool:  # the sampler has a first reading of the stream to count the replays from
        rates = lane.http.get("/v1/stats").json().get("rates") or {}
        return rates.get("submittedPerSec") is not None

    wait_for(sampling, timeout=30, what="the API's sampler to read the work stream")
    entries = [made_up_entry(f"Replayed {i}") for i in range(4)]
    assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 4
    job = lane.run_job("/v1/dlq/replay", {"ids": [e["adId"] for e in entries]})
    assert job["state"] == "succeeded" and job["counts"]["replayed"] == 4, job

    def four_queued() -> bool:  # the sampler has seen the stream grow by the 4 replays
        rates = lane.http.get("/v1/stats").json().get("rates") or {}
        per_sec, window = rates.get("submittedPerSec"), rates.get("windowSeconds")
        return per_sec is not None and window is not None and round(per_sec * window) == 4

    wait_for(four_queued, timeout=30, what="/v1/stats to count the 4 replays")
    assert _submitted_total(lane) == 0  # the truth: nothing was submitted

    out = CliRunner().invoke(cli, ["top", "--once", "--api", lane.url], env={"COLUMNS": "120"})
    assert out.exit_code == 0, out.output
    rows = {line.split()[0]: line for line in out.output.splitlines() if re.search(r"\d ads/s", line)}
    assert "submitted" not in rows, rows["submitted"]  # before: "submitted 0.2 ads/s", none submitted
    assert re.search(r"queued +0\.\d+ ads/s", rows.get("queued", "")), out.output
    status = CliRunner().invoke(cli, ["scale", "status", "--api", lane.url], env={"COLUMNS": "120"})
    assert status.exit_code == 0, status.output
    observed = " ".join(line for line in status.output.splitlines() if "ads/s" in line)
    assert "submitted" not in observed and re.search(r"queued 0\.\d+ ads/s", observed), status.output
