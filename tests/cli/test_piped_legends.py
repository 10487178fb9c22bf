"""attack29a F7: piped (``gamead top --once | grep``, ``gamead workers | cat``), the legends under the tables were
wrapped at rich's 80 columns and the autoscaler's reason was clipped at 90 characters with "…", though the README
promises each line of prose whole when stdout is not a terminal. Real API and worker (the session stack)."""

from __future__ import annotations

import pytest
from rich.text import Text
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.tui.view_header import autoscaler_text

pytestmark = pytest.mark.usefixtures("isolated_env")


def test_a_piped_legend_is_one_line_however_long(runner: CliRunner, api_url: str, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe as a script sees it
    for args in (["workers"], ["top", "--once"]):
        out = runner.invoke(app, [*args, "--api", api_url])
        assert out.exit_code == 0, out.output
        legend = next((line for line in out.stdout.splitlines() if line.startswith("STATE: late = ")), None)
        assert legend is not None, out.stdout
        assert "gone = its entry expired" in legend and "IN-FL: slots busy / slots" in legend, out.stdout
        assert len(legend) > 80  # one line, longer than rich's 80 columns
    queue = next(line for line in out.stdout.splitlines() if line.startswith("PENDING: ads never delivered"))
    assert "ACK-P: ack pending, delivered and not yet acknowledged" in queue, out.stdout


def test_the_autoscalers_reason_is_whole() -> None:
    reason = ("backlog 0 ads, arriving 7.3 ads/s at 594.6 ads/s per worker (CPU-bound) needs 1 worker → "
              "hold 4 workers "
              "(highest recommendation of the last 300 s)")
    shown = autoscaler_text({"autoscaler": {"current": 4, "desired": 4, "reason": reason,
                                            "leader": {"id": "up-vm-1"}}}).plain
    assert reason in shown and "…" not in shown, shown
    # newcomer56: `autoscaler 4 → 4 replicas` beside `gamead scale status`'s `workers  current 4 → desired 4`
    assert shown.startswith("autoscaler 4 → 4 workers  backlog"), shown
    assert isinstance(autoscaler_text(None), Text)


def test_a_leader_that_cannot_read_the_count_is_not_shown_as_no_decision_yet() -> None:
    """attack30b F6: during a 403 the state's counts are unknown, and top said "no decision yet" beside the error,
    though decisions had been recorded; it says the worker count is unknown, and why."""
    shown = autoscaler_text({"autoscaler": {"current": None, "desired": None, "reason": "cannot read the replica count",
                                            "error": "forbidden to get deployments/scale of gamead/gamead-worker"}})
    assert shown.plain.startswith("autoscaler worker count unknown  error: forbidden to get"), shown.plain
    assert "no decision yet" in autoscaler_text({"autoscaler": {"current": None, "desired": None}}).plain
