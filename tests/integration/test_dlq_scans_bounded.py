"""DLQ reads by the dozen (fix35b, the kind of attack34a F2): each ``GET /v1/dlq`` page, dry run or purge count
reads the DLQ with an ordered consumer of its own on nats-server. The figure: 200 concurrent ``GET
/v1/dlq?errorClass=Nope`` over 1,500 entries took nats-server from 33 to 392 MB, all answered 200. Now one API
node runs ``dlq.scans`` of them at once, lets as many wait, and refuses the rest 503 ``list_busy`` naming
``dlq.scans``. Scaled down here: ``dlq.scans`` 1, 40 reads at once over 300 entries, each its own filter (identical
ones share one scan since attack37 F1: ``tests/integration/test_dlq_watchers.py``)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture


def test_past_dlq_scans_a_dlq_read_is_refused_list_busy_and_the_others_answer(lane: Lane) -> None:
    """Before: 40 × 200. Now: 200 or 503 ``list_busy`` (with ``Retry-After``, the message naming ``dlq.scans``),
    some of each; no other answer; a read on its own afterwards answers 200."""
    for at in range(0, 300, 50):
        entries = [made_up_entry(f"Dead {i}") for i in range(at, at + 50)]
        assert lane.run_job("/v1/dlq/import", {"entries": entries})["counts"]["imported"] == 50
    _, url = lane.api(GAMEAD_DLQ__SCANS="1")
    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=40)) as http:
        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda n: http.get("/v1/dlq", params={"errorClass": f"Nope{n}"}), range(40)))
        seen = Counter(f"{a.status_code} {a.json().get('error', {}).get('code', '')}".strip() for a in answers)
        assert set(seen) == {"200", "503 list_busy"}, seen
        refused = next(a for a in answers if a.status_code == 503)
        assert refused.headers["retry-after"] and "dlq.scans" in refused.json()["error"]["message"], refused.text
        alone = http.get("/v1/dlq", params={"errorClass": "Nope"})
        assert alone.status_code == 200 and alone.json()["total"] == 0, alone.text
        with ThreadPoolExecutor(40) as pool:  # the same read 40 times at once: one scan, every one answered
            same = list(pool.map(lambda _: http.get("/v1/dlq", params={"errorClass": "Nope"}), range(40)))
        assert {a.status_code for a in same} == {200}, Counter(a.status_code for a in same)
