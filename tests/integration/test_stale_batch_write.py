"""left39b item 2: a worker's completed record whose write reached NATS only after its lease had lapsed and a recovery
had taken the ad back was written over the recovery. The write is a compare-and-set over the revision the attempt
read, so it lost; but the fallback that follows a lost compare-and-set (read again, finish unless final or a later
delivery runs it: ``transitions.completing``) took the recovered record — ``queued``, ``lostIn`` naming this very
process — for one it could still finish, and wrote the stale outcome over it (figure, before: 1 of 1, the ad
``completed`` under the lapsed delivery ``1.1``, attempts 1, the redelivery acknowledged unanalysed). README's
promise: an ad a recovery took back has nothing of its old attempt written. Now the fallback checks ownership right
before its write (``completing`` with the worker's id: ``transitions.recovered``), revision-checked, and writes
nothing. And that rule now knows which delivery the recovery settled: the redelivery the same process took after
the recovery is its own (before, with the first fix alone: stopped as "recovered", the ad waited ``queue.ack_wait``,
60 s, and completed under ``1.3`` with 3 attempts for one analysis).

The batch start's path (several first deliveries analysed in one turn, settled in one round: no lease look at all)
is the one taken here. Worker 'a' talks to NATS through a proxy that holds its first ad-record write for a while, and
everything it sends after (its heartbeats): its lease lapses, worker 'b''s reaper recovers the ad, then the held
write goes on. 'b' is busy (one slot, a long analysis, no prefetch), so nobody claims the ad before the write lands.
Real nats-server, API and worker processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.nats_filter import PublishFilter
from tests.support import Proc, ad, start_api, start_worker, wait_for, wait_terminal

BEATS = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3", "GAMEAD_QUEUE__ACK_WAIT": "60"}
HOLD = 12.0  #: seconds the proxy holds a's first ad-record write (and all a sends after it), past a's entry


def test_a_completion_held_past_the_lease_is_not_written_over_the_recovery(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """'a' analyses ad X in its batch start; its completed record's write is held until 'b''s reaper has recovered X
    (``lostIn`` naming 'a', ``queued``); then it goes on and loses its compare-and-set. Before: the fallback wrote
    it anyway (X ``completed`` under its first delivery, the lapsed one); now nothing of that attempt is written and
    X completes under a later delivery (run again by 'a': 'b' pulls nothing of X's level)."""
    server = fresh_nats()
    target = ("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    a_link, b_link = PublishFilter(target).start(), PublishFilter(target).start()
    try:
        api, url = start_api(server.url, tmp_path, **BEATS)
        procs.append(api)
        a = start_worker(a_link.url, tmp_path, worker_id="a", ready=True, GAMEAD_NATS__REQUEST_TIMEOUT="60",
                         **BEATS)  # the batch start: no simulated latency, worker.processing_mark_after > 0
        procs.append(a)
        # b: the reaper once a's lease lapsed; its pulls of level 3 never reach the server, so nobody claims X
        # before a's held write lands
        b_link.drop(names.pull_next_subject(names.ADS_STREAM, names.level_consumer(3)))
        b = start_worker(b_link.url, tmp_path, worker_id="b", ready=True, **BEATS)
        procs.append(b)
        with httpx.Client(base_url=url, timeout=30) as http:
            a_link.hold(f"$KV.{names.ADS_BUCKET}.", HOLD)
            ad_id = http.post("/ads", json=ad("Held write", 3)).json()["id"]
            taken = wait_for(lambda: (r := http.get(f"/ads/{ad_id}").json()).get("lostIn") and r, timeout=HOLD,
                             what="b's reaper to recover the ad a analysed (its write held)")
            a_link.pass_all()  # the held write goes on when its hold ends; nothing after it is held
            assert taken["status"] == "queued" and str(taken["lostIn"]).startswith("a:"), taken
            first = str(taken["delivery"])
            final = wait_terminal(http, ad_id, timeout=90)
    finally:
        a_link.stop()
        b_link.stop()
    logs = a.output()
    print(f"recovered under {first}: {taken.get('lostIn')}; final {final['status']} under {final['delivery']} by "
          f"{final.get('workerId')}, attempts {final['attempts']}")
    assert final["status"] == "completed", final
    assert final["delivery"] != first, (final, logs[-3000:])  # before: 'a''s lapsed attempt's outcome, N.1
    # the lapsed attempt (charged by the recovery) and the one that completed; before the ownership rule knew the
    # delivery it settled, the redelivery a took after the recovery was stopped as recovered too: 3, after ack_wait
    assert final["attempts"] == 2, final
