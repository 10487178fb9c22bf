"""A submit encodes its record once (issue 12 item 5: ``encode(record)`` ran twice per submit, once for the
message and once for the record write; an un-keyed one builds its bytes by hand, ``queued_record``, issue 14.4),
and answers the record it stored. Real nats-server (a fresh one: nothing else writes to it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gamead_core import intake as intake_module
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdSubmission
from gamead_core.store import ads as store_module
from tests.support import ad, fresh_intake


def test_one_encode_per_submit_keyed_or_not(fresh_nats: Callable[[], EmbeddedNats],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = fresh_nats()
    calls: list[str] = []
    real = store_module.encode

    def counting(record):  # type: ignore[no-untyped-def]
        calls.append(record.id)
        return real(record)

    def counting_by_hand(ad_id, *args):  # type: ignore[no-untyped-def]  # the un-keyed path's bytes (queued_json)
        calls.append(ad_id)
        return real_by_hand(ad_id, *args)

    real_by_hand = intake_module.queued_record
    monkeypatch.setattr(intake_module, "encode", counting)
    monkeypatch.setattr(store_module, "encode", counting)
    monkeypatch.setattr(intake_module, "queued_record", counting_by_hand)

    async def submit_two() -> tuple[str, str]:
        async with fresh_intake(server.url) as (_js, store, intake):
            plain = await intake.submit(AdSubmission.model_validate(ad("Encoded Once")))
            keyed = await intake.submit(AdSubmission.model_validate(ad("Keyed Once")), "key-1")
            for accepted in (plain, keyed):  # both written (before the answer) from one encoding
                assert (await store.get(accepted.id)).record == accepted.record  # what is stored is what it said
            return plain.record.id, keyed.record.id

    plain_id, keyed_id = asyncio.run(submit_two())
    assert calls.count(plain_id) == 1 and calls.count(keyed_id) == 1, calls
