"""regress38 F1: ``gamead submit --idempotency-key K`` across a store outage called keyed ads "not queued … never
queued; safe to resend" though their messages were in the work stream: a keyed ad's message is published first and a
worker writes its record from it, so ``GET /ads/ID`` answering 404 for a keyed ad whose publish got no answer may be
an ad waiting in the queue (the drill: 25 called not queued, 5 completed later, 20 waiting). Now such an ad stays
"may be queued", said why; an unkeyed one the API does not know is not queued, as before. A real API and
nats-server answer the lookups (ids it never saw: 404)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gamead_cli.client import ApiClient
from gamead_cli.submit.settling import KEYED_404, settle
from gamead_core.ad_ids import new_ad_id
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api


@pytest.fixture(scope="module")
def api(nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc: Proc
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("keyed-lookup"))
    yield url
    proc.stop()


def test_a_keyed_ad_the_lookup_does_not_find_stays_may_be_queued(api: str, tmp_path: Path) -> None:
    summary = {"maybeQueued": 4, "_unsure": {i: (f"ads.ndjson:{i + 1}", new_ad_id(), i < 3) for i in range(4)}}
    with ApiClient(api, timeout=10) as client:
        settle(summary, client)
    print({k: summary[k] for k in ("notQueued", "notQueuedWhere", "maybeQueued", "notLookedUpWhy")})
    assert summary["notQueued"] == 1 and summary["notQueuedWhere"] == ["ads.ndjson:4"]  # before: 4, lines 1-4
    assert summary["maybeQueued"] == 3 and summary["maybeQueuedWhere"] == ["ads.ndjson:1-3"]
    assert summary["notLookedUpWhy"] == {KEYED_404: 3}
