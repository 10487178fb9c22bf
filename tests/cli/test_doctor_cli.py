"""`gamead doctor` without a live API: usage errors, an unreachable API, and the report as people read it."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.commands.doctor import report_view
from gamead_cli.main import app

pytestmark = pytest.mark.usefixtures("isolated_env")

REPORT: dict[str, Any] = {
    "ok": False, "complete": False, "partial": ["records: stopped after 900 messages at doctor.scan_time"],
    "checkedAt": "2026-11-30T04:02:48.123Z", "elapsedSeconds": 60.2, "settleSeconds": 1.5, "problems": 27,
    "findings": [
        {"kind": "no_message", "invariant": 1, "what": "record queued or processing, and no message of the ad in "
         "the work stream", "count": 26, "countIsLowerBound": True, "itemKind": "ad",
         "sample": ["01m8n9x54xpmz6r2js5aqya767", "01m8n9x54xpmz6r2js5aqya768"], "repair": "re-published",
         "notRepairedBecause": None},
        {"kind": "topology_incompatible", "invariant": 4, "what": "exists with a config gamead cannot use",
         "count": 1, "countIsLowerBound": False, "itemKind": "object", "sample": ["consumer gamead-p3"],
         "repair": None, "notRepairedBecause": "never overwritten",
         "details": {"consumer gamead-p3": "a push consumer"}},
    ],
    "notes": [{"kind": "obsolete_object", "what": "an object gamead no longer uses", "count": 1,
               "sample": ["stream GAMEAD_ADVISORIES"]}],
    "read": {"records": 900, "workMessages": 20, "dlqEntries": 5, "recordReads": 19, "apiCalls": 34,
             "payloadBytes": 52800, "jobs": 0},
}


def test_a_clean_quick_check_says_its_time_in_ms_and_no_settle_note() -> None:
    """A newcomer's finding: a clean 87 ms check printed "in 0.0 s (each finding seen twice, 1.5 s apart)"."""
    clean = {**REPORT, "ok": True, "complete": True, "partial": [], "elapsedSeconds": 0.087, "problems": 0,
             "findings": [], "notes": []}
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(report_view(clean))
    assert "UTC in 87ms\n" in out.getvalue() and "seen twice" not in out.getvalue()
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(report_view(REPORT))
    assert "UTC in 1m00s (each finding seen twice, 1.5 s apart)" in out.getvalue()


def test_the_report_names_every_figure_and_never_truncates_an_id() -> None:
    out = io.StringIO()
    Console(file=out, width=80, no_color=True).print(report_view(REPORT))
    text = out.getvalue()
    assert "01m8n9x54xpmz6r2js5aqya767, 01m8n9x54xpmz6r2js5aqya768 … and 24 more" in text
    assert "no_message · at least 26 ads · invariant 1" in text
    assert "topology_incompatible · 1 object · invariant 4" in text
    assert "not repaired: never overwritten" in text and "consumer gamead-p3: a push consumer" in text
    flat = " ".join(text.split())  # the read: line wraps at 80 columns
    assert "900 records (keys only; 19 of them read whole" in flat and "34 JetStream API calls" in flat
    assert "partial: records: stopped after 900 messages" in text
    assert "27 problems of 2 kinds" in text


@pytest.mark.parametrize(("streams", "said"), [
    (["GAMEAD_ADS"], "20 messages in work stream GAMEAD_ADS ·"),
    (["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"], "20 messages in 3 work streams (GAMEAD_ADS, GAMEAD_ADS_1, "),
    ([], "20 messages in no work stream ·"),
    (None, "20 messages in the work streams ·"),  # an API from before workStreams
])
def test_the_read_line_names_the_work_streams_it_read(streams: list[str] | None, said: str) -> None:
    """With queue.partitions 3 the line said "messages in the work stream": it names what was read."""
    report = {**REPORT, "read": {**REPORT["read"], **({} if streams is None else {"workStreams": streams})}}
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(report_view(report))
    assert said in out.getvalue()


def test_detach_without_repair_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["doctor", "--detach"])
    assert result.exit_code == exitcodes.USAGE
    assert "--detach goes with --repair" in result.output


def test_an_api_that_is_not_there_is_exit_3_in_one_line(closed_api_url: str) -> None:
    result = CliRunner().invoke(app, ["doctor", "--api", closed_api_url])
    assert result.exit_code == exitcodes.UNREACHABLE, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def _only(kind: str, severity: str, **extra: Any) -> dict[str, Any]:
    return {**REPORT, "ok": False, "complete": True, "partial": [], "problems": 1, "notes": [], **extra,
            "findings": [{"kind": kind, "invariant": 5, "what": "a write fails", "count": 1,
                          "countIsLowerBound": False, "itemKind": "object", "sample": ["x"], "severity": severity,
                          "repair": None, "notRepairedBecause": "free room"}]}


def test_a_warning_only_report_exits_0_and_an_error_or_a_partial_read_exits_1() -> None:
    """review28 R3: `gamead doctor` whose only finding is `redis_unwritable` (a warning: the ads still flow)
    exits 0, printed in yellow; `registry_unwritable` (no worker takes work) and a partial read still exit 1."""
    from gamead_cli.doctor_verdict import holds

    warning = _only("redis_unwritable", "warning")
    assert holds(warning)
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(report_view(warning))
    assert "(warnings: the ads still flow)" in out.getvalue() and "every invariant holds" not in out.getvalue()
    assert not holds(_only("registry_unwritable", "error"))
    assert not holds(_only("redis_unwritable", "warning", complete=False, partial=["records: stopped"]))
    assert holds({**REPORT, "ok": True, "complete": True, "partial": [], "findings": []})
