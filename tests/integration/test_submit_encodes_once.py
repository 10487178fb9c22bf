"""A submit encodes its record once (issue 12 item 5: ``encode(record)`` ran twice per submit, once for the
message and once for the record write). Real nats-server (a fresh one: nothing else writes to it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest

from gamead_core import intake as intake_module
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.intake import Intake
from gamead_core.models import AdSubmission
from gamead_core.queue.topology import ensure_topology
from gamead_core.store import ads as store_module
from gamead_core.store.ads import AdStore
from tests.support import ad


def test_one_encode_per_submit_keyed_or_not(fresh_nats: Callable[[], EmbeddedNats],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = fresh_nats()
    calls: list[str] = []
    real = store_module.encode

    def counting(record):  # type: ignore[no-untyped-def]
        calls.append(record.id)
        return real(record)

    monkeypatch.setattr(intake_module, "encode", counting)
    monkeypatch.setattr(store_module, "encode", counting)

    async def submit_two() -> tuple[str, str]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, GameadSettings())
            store = await AdStore.open(nc, js)
            intake = Intake(js, store, publish_timeout=5)
            plain = await intake.submit(AdSubmission.model_validate(ad("Encoded Once")))
            keyed = await intake.submit(AdSubmission.model_validate(ad("Keyed Once")), "key-1")
            await nc.flush()
            # both records were written (from the one encoding each)
            for ad_id in (plain.record.id, keyed.record.id):
                for _ in range(50):
                    try:
                        await store.get(ad_id)
                        break
                    except Exception:  # noqa: BLE001 - the un-keyed record write is not awaited
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"record {ad_id} never written")
            return plain.record.id, keyed.record.id
        finally:
            await nc.close()

    plain_id, keyed_id = asyncio.run(submit_two())
    assert calls.count(plain_id) == 1 and calls.count(keyed_id) == 1, calls
