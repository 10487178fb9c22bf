"""JetStream's storage runs out (issue 9, item 4, the ``/readyz`` part): submits get 503 (never 500), ``/readyz``
says storage is failing within seconds, and once writes succeed again it says ready by itself, with no restart of
the API. Real store errors, provoked two ways:

* the server's ``max_file_store`` limit (any machine): JetStream answers 503 "insufficient resources" (10023)
  and writes succeed as soon as space is freed;
* a full disk: the store directory on a 16 MB tmpfs (needs root to mount; skipped otherwise). nats-server
  stops answering writes ("no space left on device") and keeps a stream's write error until it restarts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
from nats.js.api import StreamConfig

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, assert_doctor_clean, start_api, wait_for

FAST = {"GAMEAD_API__STORAGE_PROBE_INTERVAL": "0.5", "GAMEAD_QUEUE__MAX_BYTES": "-1",
        "GAMEAD_RECORDS__MAX_BYTES": "-1", "GAMEAD_JOBS__MAX_BYTES": "-1",  # reserved from the 8 MB store
        "GAMEAD_API__PUBLISH_TIMEOUT": "1", "GAMEAD_NATS__REQUEST_TIMEOUT": "1"}


def js_call(url: str, fn: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        nc = await nats.connect(url)
        try:
            return await fn(nc.jetstream(timeout=2))
        finally:
            await nc.close()

    return asyncio.run(run())


async def fill_until_refused(js: Any) -> str:
    """Publish 4 KB messages to a stream of the test's own until JetStream refuses one; returns its error."""
    await js.add_stream(StreamConfig(name="FILLER", subjects=["filler"]))
    for _ in range(100_000):
        try:
            await js.publish("filler", b"x" * 4096)
        except nats.js.errors.APIError as exc:
            return f"{exc.err_code} {exc.description}"
    raise AssertionError("the store never filled up")


def readyz(client: httpx.Client) -> dict[str, Any]:
    resp = client.get("/readyz")
    body = resp.json()
    body["httpStatus"] = resp.status_code
    return body  # type: ignore[no-any-return]


def test_storage_at_the_servers_limit_fails_readyz_and_recovers_when_space_is_freed(
    procs: list[Proc], tmp_path: Path
) -> None:
    server = EmbeddedNats(tmp_path / "nats", max_file="8MB").start()
    try:
        api, url = start_api(server.url, tmp_path, **FAST)
        procs.append(api)
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.post("/ads", json=ad("Before")).status_code == 202
            assert js_call(server.url, fill_until_refused) == "10023 insufficient resources"

            refused = client.post("/ads", json=ad("While full"))
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
            assert refused.json()["error"]["code"] == "storage_failed"
            body = wait_for(lambda: (r := readyz(client))["httpStatus"] == 503 and r, timeout=10,
                            what="/readyz unready")
            assert body["checks"]["storage"].startswith("failing: JetStream could not store the write: "
                                                        "insufficient resources (code 10023)")
            assert body["checks"]["nats"] == "ok"
            assert client.get("/v1/stats").json()["storage"]["state"] == "failing"

            js_call(server.url, lambda js: js.delete_stream("FILLER"))  # the operator frees space
            wait_for(lambda: readyz(client)["httpStatus"] == 200, timeout=10, what="/readyz ready by itself")
            assert client.post("/ads", json=ad("After")).status_code == 202
            assert readyz(client)["checks"]["storage"] == "ok"
            assert_doctor_clean(url)
    finally:
        server.stop()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for this test (root only), unmounted at the end."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'}); "
                    "the max_file_store test covers storage errors")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_fails_readyz_and_after_freeing_space_and_a_nats_restart_it_recovers_by_itself(
    tiny_disk: Path, procs: list[Proc], tmp_path: Path
) -> None:
    server = EmbeddedNats(tiny_disk / "nats").start()
    try:
        api, url = start_api(server.url, tmp_path, **FAST)
        procs.append(api)
        with httpx.Client(base_url=url, timeout=10) as client:
            accepted = [client.post("/ads", json=ad(f"Before {i}")) for i in range(3)]
            assert [r.status_code for r in accepted] == [202, 202, 202]
            stat = os.statvfs(tiny_disk)
            ballast = tiny_disk / "ballast"
            with open(ballast, "wb") as out:  # everything but 64 KB
                out.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - 64 * 1024))

            statuses = []
            for i in range(400):  # ~1 KB each: the last 64 KB run out (writes reach the disk a little later)
                resp = client.post("/ads", json=ad(f"Filling {i}"))
                statuses.append(resp.status_code)
                if resp.status_code == 503:
                    break
            assert statuses[-1] == 503 and set(statuses) <= {202, 503}, statuses
            body = wait_for(lambda: (r := readyz(client))["httpStatus"] == 503 and r, timeout=15,
                            what="/readyz unready on a full disk")
            assert body["checks"]["storage"].startswith("failing: ")

            ballast.unlink()  # the operator frees space, then restarts nats-server (same data, same port)
            server.stop()
            server.start()
            wait_for(lambda: readyz(client)["httpStatus"] == 200, timeout=30, what="/readyz ready by itself")
            assert client.post("/ads", json=ad("After")).status_code == 202
        info = js_call(server.url, lambda js: js.stream_info(names.ADS_STREAM))
        assert info.state.messages == statuses.count(202) + 3 + 1, "every acknowledged ad is still queued"
        assert_doctor_clean(url)
    finally:
        server.stop()
