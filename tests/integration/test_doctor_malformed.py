"""Drill attack31b F3: data no repair can act on — a DLQ message that is not an entry, of an ad with no record; a
record whose body names another ad than its key — was reported as `entry_without_record` / `no_message` with a
repair promised; the repair job then skipped it as "healthy again (or changed by someone else)", untrue, and the
finding came back at every run. Now each is named as what it is, with the command that removes or fixes it, no
repair action is offered for it, and an action planned for it anyway (a diagnosis racing the hand edit) is skipped
with a true reason. The doctor and the repair run in this process on a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import submission


def test_unreadable_entries_and_records_naming_another_ad_are_named_as_such_and_never_repaired(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import GameadSettings
    from gamead_core.doctor import diagnose
    from gamead_core.doctor.repair import RepairOps
    from gamead_core.jobs.model import Mark
    from gamead_core.jobs.policy import mark_words
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.queue.dlq import DeadLetters
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import AdStore, encode

    server = fresh_nats()
    settings = GameadSettings(doctor={"settle": 0.2})
    garbage, key, body = new_ad_id(), new_ad_id(), new_ad_id()

    async def main() -> dict[str, Any]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, settings)
            await js.publish(names.dlq_subject(garbage), b"\x1b[31m{garbage", headers={names.HDR_AD_ID: garbage})
            other = AdRecord(id=body, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=submission())
            await js.publish(f"{names.kv_prefix(names.ADS_BUCKET)}{key}", encode(other))
            found = await diagnose(nc, js, settings)
            store = AdStore(nc, js)
            seq = (await DeadLetters(js).current(garbage)).seq  # type: ignore[union-attr]
            revision = (await store.get(key)).revision
            ops = RepairOps(nc, js, settings, store=store)
            # what the earlier doctor planned for them
            marks = [await ops.act(["entry_without_record", garbage, seq], "repairjob"),
                     await ops.act(["no_message", key, revision], "repairjob")]
            after = await store.get(key)
            page = await DeadLetters(js).page()
            return {"report": found.report.wire(10), "actions": found.actions, "marks": marks,
                    "after": (after.revision, after.record.id), "revision": revision, "page": page, "seq": seq}
        finally:
            await nc.close()

    out = asyncio.run(main())
    findings = {f["kind"]: f for f in out["report"]["findings"]}
    assert set(findings) == {"unreadable_dlq_entry", "record_key_mismatch"}, findings
    unreadable = findings["unreadable_dlq_entry"]
    assert unreadable["sample"] == [garbage] and unreadable["repair"] is None
    assert f"gamead dlq purge {garbage} --yes" in unreadable["details"][garbage]
    mismatch = findings["record_key_mismatch"]
    assert mismatch["sample"] == [key] and mismatch["repair"] is None
    said = mismatch["details"][key]
    assert f"names ad {body}" in said and f"nats kv del gamead_ads {key}" in said, said
    assert out["actions"] == []  # no repair promised for what it cannot act on
    assert out["marks"] == [Mark.UNREADABLE, Mark.MISMATCHED]
    assert all("healthy again" not in mark_words(m) for m in out["marks"])
    assert out["after"] == (out["revision"], body)  # nothing written, neither here nor under the other ad's key
    page = out["page"]
    assert page.items == [] and page.in_dlq == 1 and page.unreadable == [(out["seq"], garbage)]
