"""attack29b F1: JetStream's file store refusing writes was invisible to every operator view. With the disk under
the store full, every submit was 503 and ``/readyz`` said ``storage: failing … (for 252 s)``, yet ``gamead doctor``
said "every invariant holds" (exit 0: its checks read, and its only write probe went to the registry, a memory
stream), ``gamead top --once`` showed ``5.4 MiB stored`` and nodes ``ok``, and ``gamead up``'s console said nothing
for 7 minutes (it watches nats-server's ``/healthz``, which kept answering). Now the doctor's own write check
reports ``store_unwritable`` (exit 1, with what to do), top's header says ``storage failing <for how long>`` and up
says once that its API is unready on storage past ``registry.ttl``, and once when it is ready again.

How the store is made to refuse writes without root or a tmpfs: ``gamead up`` runs on a nats-server of the test
whose ``max_file_store`` is 4 MB, filled to its limit by a file-stored stream of the test (as in
``test_storage_full.py``). JetStream then refuses every write to a file-stored stream (the work streams, the ad
records, the health bucket the API probes) with 10023 "insufficient resources", while it answers every read and
its ``/healthz``: the same picture a full disk gives (``test_storage_full.py``'s tmpfs test, root only: there the
writes go unanswered instead, and the doctor's check reports that too), except that freeing room ends it without
restarting nats-server. Deleting the filler stream frees it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.integration.test_storage_full import fill_until_refused, js_call
from tests.support import ad, clean_env, run_gamead, up_stack, wait_for

TTL = 3.0
CONFIG = (f"registry: {{ttl: {TTL:g}, heartbeat_interval: 0.5}}\n"
          "api: {storage_probe_interval: 0.5}\n"
          # no byte limit reserved from the small store (a limit is reserved from max_file_store at creation)
          "queue: {max_bytes: -1}\nrecords: {max_bytes: -1}\njobs: {max_bytes: -1}\n")
UNREADY = "has answered /readyz 503 (unready) for "


def doctor(url: str, *more: str) -> tuple[int, str]:
    run = run_gamead("doctor", "--api", url, "--settle", "0", *more, env=clean_env(COLUMNS="400"), timeout=120)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.timeout(300)
def test_doctor_top_and_up_say_the_file_store_refuses_writes(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", max_file="4MB").start()
    (tmp_path / "config.yaml").write_text(CONFIG)
    up = up_stack(tmp_path, "--workers", "0", "--no-autoscale", GAMEAD_NATS__URL=server.url,
                  GAMEAD_LOG__LEVEL="WARNING").start()
    try:
        up.wait_ready()
        api = up.pid_of("api")
        with httpx.Client(base_url=up.url, timeout=20) as client:
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz ready")
            assert doctor(up.url)[0] == 0

            assert js_call(server.url, fill_until_refused) == "10023 insufficient resources"
            wait_for(lambda: client.get("/readyz").status_code == 503, timeout=30, what="/readyz unready")
            refused = client.post("/ads", json=ad("While Full"))
            assert refused.status_code == 503, refused.text

            # gamead up: said once, past registry.ttl, with the failing check and what to do
            wait_for(lambda: UNREADY in up.output(), timeout=30, what="gamead up to say its API is unready")
            (line,) = [ln for ln in up.output().splitlines() if UNREADY in ln]
            assert f"the API (pid {api}) {UNREADY}" in line and f"(registry.ttl {TTL:g}s): storage: failing: " in line
            assert "insufficient resources (code 10023)" in line and "free space" in line, line

            # gamead doctor: its own write check, refused: exit 1 with what to do
            code, out = doctor(up.url)
            assert code == 1, out[-3000:]
            assert "every invariant holds" not in out and "store_unwritable" in out, out[-3000:]
            assert "insufficient resources (code 10023)" in out and "max_file_store" in out, out[-3000:]
            code, out = doctor(up.url, "-o", "json")
            report = json.loads(out[out.index("{"):])
            (finding,) = [f for f in report["findings"] if f["kind"] == "store_unwritable"]
            assert finding["sample"] == ["file store"] and finding["severity"] == "error" and not report["ok"]

            # gamead top: the header says it, with for how long; -o json has the API's figures
            top = run_gamead("top", "--once", "--api", up.url, env=clean_env(COLUMNS="100"), timeout=60)
            assert top.returncode == 0, top.stderr
            assert "storage failing " in top.stdout and "insufficient resources" in top.stdout, top.stdout[:2000]
            as_json = run_gamead("top", "--once", "-o", "json", "--api", up.url, env=clean_env(), timeout=60)
            storage = json.loads(as_json.stdout)["stats"]["storage"]
            assert storage["state"] == "failing" and storage["failingForSeconds"] > 0, storage

            js_call(server.url, lambda js: js.delete_stream("FILLER"))  # the operator frees room
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz ready again")
            wait_for(lambda: f"the API (pid {api}) is ready again after " in up.output(), timeout=30,
                     what="gamead up to say its API is ready again")
            assert up.output().count(UNREADY) == 1, "said once"
            assert doctor(up.url)[0] == 0
            top = run_gamead("top", "--once", "--api", up.url, env=clean_env(COLUMNS="100"), timeout=60)
            assert "storage failing" not in top.stdout, top.stdout[:2000]
    finally:
        up.kill_everything()
        server.stop()
