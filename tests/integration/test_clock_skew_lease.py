"""review33 R8: a process that holds or judges a lease but keeps no registry entry (``gamead up``'s own
autoscaler) samples nats-server's clock from its lease writes, so a host clock 5 min off neither writes a lease
already expired for everyone else nor takes a live leader's lease. The skewed keeper runs alone in a process from
tests/skewed_lease.py (its time.time off, monotonic true); the true-clock rival runs here, on a real nats-server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nats
import nats.errors
import nats.js.errors

from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease, LeaseKeeper
from tests.support import clean_env
from tests.working import Working

SKEWED = str(Path(__file__).resolve().parents[1] / "skewed_lease.py")
TTL = 3.0
#: seconds the skewed process may go without progress (CPU, or waiting for one) while a test waits on its steps, and
#: at most in all: its start imports nats-py and gamead (~0.65 s of CPU, 2 s of wall time at load 9), which took past
#: a fixed 20 s at load 35-42 (a full suite beside another: its log still empty), where a process gets ~5 % of a core
STALL_AFTER, CAP = 20.0, 60.0


def _start(server: EmbeddedNats, skew: float, bucket: str, holder: str, out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as log:
        return subprocess.Popen([sys.executable, SKEWED, str(skew), server.url, bucket, holder, str(TTL)],
                                stdout=log, stderr=subprocess.STDOUT, env=clean_env(),
                                cwd=str(Path(SKEWED).parents[1]))


def _steps(out: Path) -> list[str]:
    return [ln for ln in out.read_text().splitlines() if ln.startswith("step ")]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=10)


def test_a_keeper_5_min_behind_keeps_its_lease_from_a_true_clock_rival(
        fresh_nats: Callable[[], EmbeddedNats], tmp_path: Path) -> None:
    server = fresh_nats()
    out = tmp_path / "behind.log"
    proc = _start(server, -300.0, "gamead_leases_r8a", "up-behind", out)
    working = Working(proc.pid, stall_after=STALL_AFTER, cap=CAP)

    async def run() -> None:
        nc = await nats.connect(server.url)
        try:
            kv = await nc.jetstream(timeout=5).create_key_value(bucket="gamead_leases_r8a", history=1)

            async def holder() -> str | None:
                try:
                    lease = Lease.from_json((await kv.get("autoscaler")).value)
                except nats.js.errors.KeyNotFoundError:
                    return None
                return lease.holder if lease is not None else None

            while await holder() != "up-behind":
                working.check(out.read_text)
                await asyncio.sleep(0.05)
            rival = LeaseKeeper(kv, "api-true", TTL)
            seen = len(_steps(out))
            # the rival looks until the skewed holder renewed 4 more times (ttl/3 each)
            while len(_steps(out)) < seen + 4:
                working.check(out.read_text)
                await asyncio.sleep(min(0.2, await rival.step()))
                assert not rival.is_leader, "the true-clock rival took a live holder's lease"
            assert await holder() == "up-behind"
        finally:
            await nc.close()

    try:
        asyncio.run(run())
    finally:
        _stop(proc)


def test_a_keeper_5_min_ahead_does_not_take_a_live_leaders_lease(
        fresh_nats: Callable[[], EmbeddedNats], tmp_path: Path) -> None:
    server = fresh_nats()
    out = tmp_path / "ahead.log"

    async def run() -> None:
        nc = await nats.connect(server.url)
        proc = None
        try:
            kv = await nc.jetstream(timeout=5).create_key_value(bucket="gamead_leases_r8b", history=1)
            leader = LeaseKeeper(kv, "api-true", TTL)
            await leader.step()
            assert leader.is_leader
            proc = _start(server, 300.0, "gamead_leases_r8b", "up-ahead", out)
            working = Working(proc.pid, stall_after=STALL_AFTER, cap=CAP)
            while len(_steps(out)) < 4:  # the skewed process looked at the live lease 4 times
                working.check(out.read_text)
                await asyncio.sleep(min(0.2, await leader.step()))
                assert leader.is_leader, "the skewed process took the live leader's lease: " + out.read_text()
            assert all(s.endswith("leader=0") for s in _steps(out)), out.read_text()
        finally:
            if proc is not None:
                _stop(proc)
            await nc.close()

    asyncio.run(run())


def test_no_lease_a_keeper_5_min_behind_writes_is_already_expired_when_stored(
        fresh_nats: Callable[[], EmbeddedNats], tmp_path: Path) -> None:
    """Every lease the behind keeper writes lives past nats-server's stamp of its write, its first one too: written
    before the keeper's first clock sample, on its host clock, it had expired 297 s before it was stored, so a rival
    whose clock was sampled took it at once (1 run in 8 of the test above)."""
    server = fresh_nats()
    out = tmp_path / "first.log"

    async def run() -> list[tuple[str, float, float]]:
        nc = await nats.connect(server.url)
        proc = None
        try:
            kv = await nc.jetstream(timeout=5).create_key_value(bucket="gamead_leases_r8c", history=1)
            watcher = await kv.watch("autoscaler")
            proc = _start(server, -300.0, "gamead_leases_r8c", "up-behind", out)
            working = Working(proc.pid, stall_after=STALL_AFTER, cap=CAP)
            written: list[tuple[str, float, float]] = []  # (holder, expiresAt, nats-server's stamp of the write)
            while sum(holder == "up-behind" for holder, _, _ in written) < 3:  # its first write and 2 renewals
                working.check(out.read_text)
                try:
                    entry = await watcher.updates(timeout=0.5)
                except nats.errors.TimeoutError:
                    continue
                if entry is not None and (lease := Lease.from_json(entry.value)) is not None:
                    written.append((lease.holder, lease.expires_at, entry.created.timestamp()))
            await watcher.stop()
            return written
        finally:
            if proc is not None:
                _stop(proc)
            await nc.close()

    written = asyncio.run(run())
    assert [w for w in written if w[0] and w[1] <= w[2]] == [], written
