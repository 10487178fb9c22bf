"""attack25d #7: one byte unit in the CLI. `top`'s header said "511.5 KB" for 523,748 B (÷1024) while `doctor`
said "57.3 kB" for 57,300 B (÷1000); both now say IEC units (KiB, MiB, GiB: ×1024) through one helper, and the
header's storage figure (read every ACCOUNT_EVERY samples) says how old it is."""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.commands.doctor import report_view
from gamead_cli.formats import byte_size
from gamead_cli.tui.view_header import summary_text


def test_byte_size_is_iec() -> None:
    assert byte_size(0) == "0 B"
    assert byte_size(1023) == "1023 B"
    assert byte_size(523_748) == "511.5 KiB"
    assert byte_size(5 * 1024 ** 2 + 1024 ** 2 // 2) == "5.5 MiB"
    assert byte_size(3 * 1024 ** 3) == "3.0 GiB"
    assert byte_size(None) == "-"


def test_doctor_and_top_say_the_same_unit_for_the_same_bytes() -> None:
    report = {"ok": True, "complete": True, "partial": [], "elapsedSeconds": 0.5, "problems": 0, "findings": [],
              "notes": [], "checkedAt": "2026-11-30T04:02:48.123Z",
              "read": {"records": 1, "workMessages": 0, "dlqEntries": 0, "recordReads": 0, "apiCalls": 3,
                       "payloadBytes": 523_748, "jobs": 0}}
    out = io.StringIO()
    Console(file=out, width=300, no_color=True).print(report_view(report))
    assert "511.5 KiB of message bodies received" in out.getvalue()
    stats = {"generatedAt": "2026-11-30T04:02:48.000Z", "nodes": {"api": 1, "workers": 0},
             "nats": {"connected": True, "server": "n1", "version": "2.11",
                      "storage": {"fileBytes": 520_473, "memoryBytes": 3275,
                                  "sampledAt": "2026-11-30T04:02:44.000Z"}}}
    header = summary_text(stats, "http://api").plain
    assert "511.5 KiB stored (read 4.0s ago)" in header, header
    assert "KB" not in header


def test_a_storage_figure_of_this_sample_says_no_age_and_an_older_api_says_none() -> None:
    stats = {"generatedAt": "2026-11-30T04:02:48.000Z", "nodes": {},
             "nats": {"connected": True, "storage": {"fileBytes": 2048, "memoryBytes": 0,
                                                     "sampledAt": "2026-11-30T04:02:48.000Z"}}}
    assert "2.0 KiB stored " in summary_text(stats, "x").plain and " ago" not in summary_text(stats, "x").plain
    del stats["nats"]["storage"]["sampledAt"]  # type: ignore[attr-defined]
    assert "2.0 KiB stored " in summary_text(stats, "x").plain
