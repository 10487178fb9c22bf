"""A doctor note's "… and N more" counts only things of what it counts (attack37 F2).

On a full disk the note ``ack_pending_unheld`` read ``17 · … priority 3, priority 4, priority 5 … and 14 more``:
its count is unheld *deliveries* (17), its sample the *levels* they are on (3), and the CLI printed the
difference as 14 more items, though there are 5 levels in all. The report now says how many counted things its
sample leaves unnamed (``more``), and a note whose items say where (``Note.where``) leaves none.
"""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.commands.doctor import report_view
from gamead_core.doctor.model import Note


def _printed(note: dict[str, object]) -> str:
    report = {"ok": True, "complete": True, "findings": [], "notes": [note], "elapsedSeconds": 1.0,
              "read": {"records": 0, "workMessages": 0, "dlqEntries": 0, "recordReads": 0, "apiCalls": 3,
                       "payloadBytes": 0, "jobs": 0}}
    out = io.StringIO()
    Console(file=out, width=300, no_color=True).print(report_view(report))
    return out.getvalue()


def test_unheld_deliveries_on_three_levels_are_not_fourteen_more_levels() -> None:
    note = Note("ack_pending_unheld", count=17, where=True)
    for level, n in ((3, 36), (4, 9), (5, 6)):
        note.items.append(f"priority {level}")
        note.details[f"priority {level}"] = f"{n} ack-pending in all (held ones and timed retries included)"
    wire = note.wire(sample=20)
    assert wire["count"] == 17 and wire["more"] == 0, wire
    printed = _printed(wire)
    assert "priority 3, priority 4, priority 5" in printed, printed
    assert "more" not in printed, printed  # before: "… and 14 more"
    assert "36 ack-pending in all" in printed


def test_a_sample_of_the_counted_things_still_says_how_many_more() -> None:
    note = Note("message_without_record", items=[f"ad{i}" for i in range(30)], count=1_000)
    wire = note.wire(sample=20)
    assert wire["sample"] == [f"ad{i}" for i in range(20)] and wire["more"] == 980, wire
    assert "… and 980 more" in _printed(wire)
    older = dict(wire)
    del older["more"]  # an older API's note: the count less the sample, as before
    assert "… and 980 more" in _printed(older)
