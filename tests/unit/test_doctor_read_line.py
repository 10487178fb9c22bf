"""attack47 F7: ``gamead doctor``'s ``read:`` line gives each figure its noun, one or many. After a repair the line
said ``1 messages in work stream GAMEAD_ADS``; a DLQ of one entry, ``1 DLQ entries``."""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.commands.doctor import report_view

REPORT = {"ok": True, "complete": True, "partial": [], "elapsedSeconds": 0.5, "problems": 0, "findings": [],
          "notes": [], "checkedAt": "2026-12-05T22:56:50Z", "workStreams": ["GAMEAD_ADS"]}


def read_line(read: dict[str, int]) -> str:
    out = io.StringIO()
    Console(file=out, width=400, no_color=True).print(report_view({**REPORT, "read": {**read, "workStreams":
                                                                                         ["GAMEAD_ADS"]}}))
    return next(line for line in out.getvalue().splitlines() if line.startswith("read: "))


def test_one_of_each_is_said_in_the_singular() -> None:
    line = read_line({"records": 1, "workMessages": 1, "dlqEntries": 1, "recordReads": 1, "jobs": 1, "apiCalls": 1,
                      "payloadBytes": 10})
    assert line.startswith("read: 1 record (keys only; 1 of them read whole: waiting, dead and suspect ads) · "
                           "1 message in work stream GAMEAD_ADS · 1 DLQ entry · 1 job · 1 JetStream API call · "), line


def test_many_in_the_plural_with_separators() -> None:
    line = read_line({"records": 15638, "workMessages": 0, "dlqEntries": 600, "recordReads": 603, "jobs": 25,
                      "apiCalls": 47, "payloadBytes": 10})
    # newcomer49: "603 whole records" said neither what they were nor of how many: of the 15,638 listed
    assert line.startswith("read: 15,638 records (keys only; 603 of them read whole: waiting, dead and suspect ads) · "
                           "0 messages in work stream GAMEAD_ADS · 600 DLQ entries · 25 jobs · "
                           "47 JetStream API calls · "), line


def test_the_second_look_s_reads_are_said_apart_from_the_records_read() -> None:
    """newcomer58: 4 dead ads without their DLQ entry, each read again at the second look, said ``140 records (keys
    only; 8 of them read whole …)``, and 1 such record ``1 record (keys only; 2 of them …)``: reads said as records."""
    line = read_line({"records": 140, "workMessages": 0, "dlqEntries": 0, "recordReads": 4, "recordRereads": 4,
                      "jobs": 5, "apiCalls": 47, "payloadBytes": 10})
    assert line.startswith("read: 140 records (keys only; 4 of them read whole: waiting, dead and suspect ads; "
                           "4 read again at the second look) · "), line
    line = read_line({"records": 1, "workMessages": 0, "dlqEntries": 0, "recordReads": 1, "recordRereads": 0,
                      "jobs": 0, "apiCalls": 1, "payloadBytes": 10})
    assert "read again" not in line
