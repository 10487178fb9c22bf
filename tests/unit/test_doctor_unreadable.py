"""``gamead doctor`` on records it cannot read (attack31a F8): a live ad's (a message waiting, or a DLQ entry) is a
suspect to confirm as the finding ``record_unreadable`` (exit 1), with the fix that applies; any other stays the
note ``unreadable_record``. Pure parts: no server."""

from __future__ import annotations

from gamead_core.doctor.checks import WorkMsg
from gamead_core.doctor.model import NOTES, Note
from gamead_core.doctor.unreadable import UnreadableRecords, fix_of
from gamead_core.doctor.verdict import Look
from gamead_core.store.unreadable import UnreadableRecord


def test_only_the_unreadable_records_of_live_ads_are_suspects() -> None:
    look = Look()
    look.work["waiting"].append(WorkMsg(7, 3, "waiting", 0.0))
    look.entries["dead"] = 1
    note = Note("unreadable_record")
    checks = UnreadableRecords(None, ["waiting", "dead", "gone"], look, note)  # type: ignore[arg-type]
    assert checks.suspect
    assert note.items == ["gone"] and note.count == 1
    assert "no message and no DLQ entry" in NOTES["unreadable_record"]


def test_the_fix_says_what_rebuilds_the_record() -> None:
    bad = UnreadableRecord("01m8yn8xqncjvtftz8k3qnd8v2", 12, "body: Invalid JSON")
    waiting = fix_of(bad.ad_id, bad, True)
    assert waiting.startswith("revision 12: body: Invalid JSON") and "rebuilds the record" in waiting
    entry = fix_of(bad.ad_id, bad, False)
    assert f"nats kv del gamead_ads {bad.ad_id}" in entry and "gamead doctor --repair" in entry
    assert bad.code == "record_unreadable" and isinstance(bad, ValueError) and bad.details["revision"] == 12
