"""Issue 14 leftovers found from a clean clone (C3): small operator-facing defects, each with its figure."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import nats.js.errors
import pytest

from gamead_core.embedded import EmbeddedNats
from tests import forked_shell
from tests.support import Proc, ad, start_api, up_stack, wait_for

# --- C3.2: a single-valued header folded into one line ("k1, k2", RFC 9110 §5.3) is two headers -------------


def test_a_folded_idempotency_key_is_refused_as_two_keys_and_nothing_is_queued(client: httpx.Client) -> None:
    """``Idempotency-Key: k1, k2`` was taken as the one key ``k1, k2``: a proxy joining two headers made a third
    ad. Now 400 ``duplicate_header``, saying why; neither key queued anything."""
    key = f"fold-{uuid.uuid4().hex}"
    resp = client.post("/ads", json=ad("Folded Key"), headers={"Idempotency-Key": f"{key}-1, {key}-2"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header"
    assert error["details"] == {"header": "Idempotency-Key", "folded": True}
    assert "comma" in error["message"] and "RFC 9110" in error["message"]
    for part in (f"{key}-1", f"{key}-2"):
        first = client.post("/ads", json=ad("Folded Key"), headers={"Idempotency-Key": part})
        assert first.status_code == 202 and first.json()["duplicate"] is False


def test_a_folded_authorization_is_refused_as_two_tokens(client: httpx.Client) -> None:
    resp = client.get("/ads", headers={"Authorization": "Bearer one, Bearer two"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header" and error["details"]["header"] == "Authorization"
    assert "RFC 6750" in error["message"]


def test_a_configured_token_cannot_hold_a_comma() -> None:
    from gamead_core.config import load_settings
    from gamead_core.errors import ConfigError

    with pytest.raises(ConfigError, match="comma"):
        load_settings(None, auth={"tokens": [{"name": "op", "token": "abc,def", "role": "operator"}]})


# --- C3.3: `gamead up --workers 0` prints hints that work in that mode ---------------------------------------


# flakes52C: 120 s covered a gamead up start (60-70 s at load 40) and a worker and 5 hint commands, each a gamead
# process of 0.7-1.0 s CPU (15-20 s at load 40): 47 s at load 14-22. Each command keeps its own 120 s bound.
@pytest.mark.timeout(300)
def test_up_with_no_worker_prints_a_worker_command_first_and_every_hint_works_verbatim(
        tmp_path: Path, procs: list[Proc]) -> None:
    """``gamead up --workers 0`` printed ``submit … --wait``, which no worker would ever answer. Now the first hint
    starts a worker on this stack, the submit hint has no ``--wait``, and every hint runs verbatim: the worker
    started by the first one analyses the ads the others queued."""
    from tests.integration.test_up import FAST, _ANSI, printed_commands, run_in_terminal, shell_env

    up = up_stack(tmp_path, "--workers", "0", **FAST).start()
    try:
        output = up.wait_ready()
        assert "no worker runs (--workers 0)" in output
        assert not [e for e in up.started() if str(e["name"]).startswith("worker")]
        commands = printed_commands(output)
        assert shlex.split(commands[0])[1] == "worker" and not any("--wait" in c for c in commands)
        worker = Proc("hint-worker", ["bash", "-c", f"exec {commands[0]}"], shell_env(up), tmp_path / "w.log")
        procs.append(worker.start())
        for command in commands[1:]:
            argv = shlex.split(command)
            if Path(argv[0]).name == "gamead" and argv[1] == "top":
                code, screen = run_in_terminal(command, shell_env(up), tmp_path, ready="quit", keys=b"q")
                assert code == 0, _ANSI.sub("", screen)[-2000:]
                continue
            result = subprocess.run(["bash", "-c", command], env=forked_shell.on_path(shell_env(up)), cwd=tmp_path,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
        with httpx.Client(base_url=up.url, timeout=10) as client:  # the hint's worker drains what was queued
            def completed() -> bool:
                return client.get("/ads", params={"status": "completed", "limit": 500}).json()["count"] == 101

            wait_for(completed, timeout=60, what="the hint's worker to analyse the 101 queued ads")
        assert worker.alive(), worker.output()[-2000:]
    finally:
        for proc in procs:
            proc.stop(timeout=10)
        up.kill_everything()


# --- C3.5 / C3.6: a refused publish names its stream; a batch cannot overshoot nats.max_pending_bytes --------

#: 2 partitions of 2 ads each (queue.max_msgs 4 split over them); no healing of a deleted stream meanwhile; the
#: smallest outbound bound (64 KiB); no worker: what is queued stays
LIMITED = {"GAMEAD_QUEUE__PARTITIONS": "2", "GAMEAD_QUEUE__MAX_MSGS": "4",
           "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "3600", "GAMEAD_NATS__MAX_PENDING_BYTES": "65536",
           "GAMEAD_LOG__LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedNats, str]]:
    tmp = tmp_path_factory.mktemp("limited")
    server = EmbeddedNats(tmp / "nats").start()
    api, url = start_api(server.url, tmp, **LIMITED)
    try:
        yield server, url
    finally:
        api.stop()
        server.stop()


def _queued(client: httpx.Client) -> int:
    return int(client.get("/ads", params={"status": "queued", "limit": 500}).json()["count"])


def test_a_batch_that_would_overshoot_max_pending_bytes_is_refused_before_anything_is_sent(
        limited: tuple[EmbeddedNats, str]) -> None:
    """A batch was checked only against the bytes already waiting, so it could put a whole batch more on the way
    to NATS (``nats.max_pending_bytes``). 120 ads (~40 KB of body, ~80 KB of records and messages) against 64 KiB:
    503 ``queue_unavailable`` with ``Retry-After``, the figures in ``details``, and nothing queued."""
    with httpx.Client(base_url=limited[1], timeout=20) as client:
        body = {"ads": [ad(f"Overshoot {i}") for i in range(120)]}
        size = len(httpx.Request("POST", "http://x", json=body).content)
        resp = client.post("/ads/batch", json=body)
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"]
        error = resp.json()["error"]
        assert error["code"] == "queue_unavailable" and "nats.max_pending_bytes = 65,536" in error["message"]
        assert error["details"]["maxPendingBytes"] == 65536 and error["details"]["writeBytes"] >= 2 * size - 64
        assert "smaller parts" in error["message"]  # over the bound by itself: only parts can pass
        assert _queued(client) == 0
        small = client.post("/ads/batch", json={"ads": [ad("Small Batch")]})  # one that fits goes through
        assert small.status_code == 200 and small.json()["accepted"] == 1, small.text
        assert _queued(client) == 1


def test_a_full_partition_is_named_and_a_missing_one_is_topology_missing_on_every_submit_route(
        limited: tuple[EmbeddedNats, str]) -> None:
    """``queue_full`` did not say which partition's stream was full; a missing work stream answered
    ``queue_unavailable``. Now the full stream is named (message and ``details``), and a publish no stream takes
    wakes the API's topology watch, which recreates it: the publish is taken (or, past its deadline, 503
    ``topology_missing`` naming the stream and what to run)."""
    from gamead_core import names

    server, url = limited
    with httpx.Client(base_url=url, timeout=20) as client:
        full: dict[str, dict[str, object]] = {}
        for i in range(40):  # 4 ads fit (2 per partition); then each partition refuses in turn
            resp = client.post("/ads", json=ad(f"Fill {i}"))
            if resp.status_code == 503:
                error = resp.json()["error"]
                assert error["code"] == "queue_full", error
                full[str(error["details"]["stream"])] = error
            else:
                assert resp.status_code == 202, resp.text
            if len(full) == 2:
                break
        assert set(full) == {names.work_stream(0), names.work_stream(1)}
        one = full[names.work_stream(1)]
        assert one["details"]["partition"] == 1  # type: ignore[index]
        assert f"work stream {names.work_stream(1)} (partition 1) is full" in str(one["message"])
        batch = client.post("/ads/batch", json={"ads": [ad("Full Batch A"), ad("Full Batch B")]})
        assert batch.status_code == 503 and batch.json()["error"]["code"] == "queue_full"
        assert batch.json()["error"]["details"]["stream"] in full

        async def drop_partition_1() -> None:
            nc = await nats.connect(server.url)
            try:
                await nc.jetstream().delete_stream(names.work_stream(1))
            finally:
                await nc.close()

        asyncio.run(drop_partition_1())
        # an ad of partition 1 meets no stream (partition 0 is still full): its write's first "no responders" wakes
        # the API's topology watch (checked hourly here), which recreates the stream, and the write's resend is
        # taken (attack41c F5); a recreation slower than the write's deadline answers 503 topology_missing naming
        # the stream and what to run (tests/unit/test_refusals_named.py checks that refusal's words)
        taken = None
        for i in range(40):
            resp = client.post("/ads", json=ad(f"Missing {i}"))
            if resp.status_code == 202:
                taken = resp
                break
            error = resp.json()["error"]
            assert error["code"] in ("queue_full", "topology_missing"), error
            if error["code"] == "topology_missing":
                assert error["details"]["stream"] == names.work_stream(1), error
                assert "gamead doctor --repair" in str(error["message"]), error
        assert taken is not None

        async def exists() -> bool:
            nc = await nats.connect(server.url)
            try:
                await nc.jetstream().stream_info(names.work_stream(1))
                return True
            except nats.js.errors.NotFoundError:
                return False
            finally:
                await nc.close()

        # the stream is back
        wait_for(lambda: asyncio.run(exists()), timeout=20, interval=0.2, what="the API to recreate the stream")
        for i in range(40):  # and an ad of partition 1 is queued again
            resp = client.post("/ads", json=ad(f"Back {i}"))
            if resp.status_code == 202:
                break
            assert resp.json()["error"]["code"] == "queue_full", resp.text
        assert resp.status_code == 202
