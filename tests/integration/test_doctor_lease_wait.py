"""fix33a: ``gamead doctor --repair`` of a stuck leader lease waits for it to stay unchanged for its TTL (at most 10
of the TTL this node uses: 50 s for the reaper's, 150 s for the autoscaler's at default settings) — the one proof
that no live holder renews it. That wait was silent: the progress said ``repairing · repaired 0`` for minutes. Now
the job's document says what it waits for and until when (``waiting``), the command prints it, and the job keeps
its own lease meanwhile (``jobs.lease`` 2 s here, shorter than the wait: before, it renewed none for the whole
wait, and the other API node took the job over).

A real nats-server and two real API processes (short intervals: the reaper lease's TTL is 1 s here, so the wait is
10 s); ``gamead doctor --repair --yes`` a real process, its stderr not a terminal (no progress bar: the line is
what a log or a CI job shows)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease
from tests.support import Proc, clean_env, run_gamead, start_api

OPERATOR = "op-token-lease-wait"
TOKENS = json.dumps([{"name": "op", "token": OPERATOR, "role": "operator"}])


def _leases(url: str, write: Lease | None = None) -> Lease | None:
    """The reaper lease as it is (after writing ``write``, if given)."""

    async def main() -> Lease | None:
        nc = await nats.connect(url)
        try:
            kv = await nc.jetstream().key_value(names.LEASES_BUCKET)
            if write is not None:
                await kv.put(names.REAPER_LEASE, write.to_json())
            return Lease.from_json((await kv.get(names.REAPER_LEASE)).value)
        finally:
            await nc.close()

    return asyncio.run(main())


def test_the_repair_of_a_stuck_lease_says_what_it_waits_for_and_until_when(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    server = fresh_nats()
    env = {"GAMEAD_AUTH__TOKENS": TOKENS, "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "2",
           "GAMEAD_JOBS__LEASE": "2", "GAMEAD_DOCTOR__SETTLE": "0.3"}
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    other, _ = start_api(server.url, tmp_path, **env)  # would resume a job whose runner's lease ran out
    procs.append(other)
    t = time.time()  # a gone worker's lease an hour ahead (attack31b F2): its TTL 3600 s, longer than any node writes
    _leases(server.url, Lease("worker-deadnode-999", t - 100, t - 1, t + 3600))
    done = run_gamead("doctor", "--repair", "--yes", "--api", url, "-o", "json",
                      env=clean_env(GAMEAD_TOKEN=OPERATOR, **env), timeout=180)
    said = " ".join(done.stderr.split())
    assert done.returncode == 0, (done.returncode, done.stdout, said)
    # before: nothing between the confirmation and the job's end, however long the wait
    waiting = re.search(r"• waiting: the reaper lease held by worker-deadnode-999: released at "
                        r"((?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d UTC) if it is still unchanged then — (\d+) s "
                        r"unchanged \(its TTL, "
                        r"at most 10 of this node's\) proves no live holder renews it; a renewal meanwhile leaves it "
                        r"\(healed\)", said)
    assert waiting is not None and int(waiting[2]) == 10, said
    assert said.count("• waiting:") == 1, said  # said once, not at every look
    job = json.loads(done.stdout)["job"]
    assert job["state"] == "succeeded" and job["counts"]["leasesReleased"] == 1, job
    assert job["resumes"] == 0 and job["waiting"] is None, job  # its lease kept: no other node took it over
    left = _leases(server.url)
    assert left is not None and left.holder == "", left  # released
