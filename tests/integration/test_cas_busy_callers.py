"""Every compare-and-set writer besides the records' tells "busy" from "lost" (fix35d item 1, after fix34b).

On an R3 bucket nats-server answers a write expecting a key's revision while another write of that key is
proposed and not applied yet with 10164 "wrong last sequence" (no number): not decided. The records' writers sent
such a write again (fix34b, tests/integration/test_cas_busy.py); the autoscaler's lease keeper, the scale override
and ``gamead doctor --repair``'s lease release read it as lost (nats-py folds 10071 and 10164 into one
``KeyWrongLastSequenceError``), so the leader gave its lease up, an operator's ``gamead scale`` was refused 409
"another operator changed it", a stuck lease stayed stuck.

Played on a real nats-server through a real JetStream context whose chosen compare-and-set publishes are answered
with the very error nats-server sends for 10164 (``{"code": 400, "err_code": 10164, "description": "wrong last
sequence"}``, through nats-py's own ``APIError.from_error``) without being sent: the rival write in flight that was
then dropped (a leader change), which no timing on a real cluster produces at will. Everything else (nats-py's
``kv.update``/``kv.create``/``kv.delete`` and their conversions, the buckets, the revisions) is real."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import AUTOSCALER_LEASE, Lease, LeaseKeeper
from gamead_core.scaling.store import Override, ScaleStore

BUSY_ANSWER = {"code": 400, "err_code": 10164, "description": "wrong last sequence"}  # nats-server's, 2.11+


class BusyJetStream(JetStreamContext):
    """A real JetStream context; the next :attr:`busy` compare-and-set publishes (``Nats-Expected-Last-Subject-
    Sequence``) to a subject starting with ``prefix`` are answered 10164 without being sent."""

    def __init__(self, nc: Any, prefix: str) -> None:
        super().__init__(nc, timeout=5)
        self.prefix, self.busy, self.answered = prefix, 0, 0

    async def publish(self, subject: str, payload: bytes = b"", timeout: float | None = None,
                      stream: str | None = None, headers: dict[str, Any] | None = None, **kw: Any) -> Any:
        if self.busy and subject.startswith(self.prefix) and names.HDR_EXPECTED_LAST_SUBJECT_SEQ in (headers or {}):
            self.busy -= 1
            self.answered += 1
            nats.js.errors.APIError.from_error(dict(BUSY_ANSWER))
        return await super().publish(subject, payload, timeout=timeout, stream=stream, headers=headers, **kw)


def _play(server: EmbeddedNats, prefix: str, game: Callable[[BusyJetStream], Any]) -> Any:
    async def go() -> Any:
        nc = await nats.connect(server.url)
        try:
            return await game(BusyJetStream(nc, prefix))
        finally:
            await nc.close()

    return asyncio.run(go())


LEASES = names.kv_prefix(names.LEASES_BUCKET)


async def _keeper(js: BusyJetStream) -> tuple[Any, LeaseKeeper]:
    kv = await (await ScaleStore(js).open()).leases_kv()
    return kv, LeaseKeeper(kv, "me", 15.0)


@pytest.mark.parametrize("busy", [1, 100], ids=["busy-once", "still-busy"])
def test_a_leader_whose_renewal_is_answered_busy_keeps_its_lease(
        fresh_nats: Callable[[], EmbeddedNats], busy: int, caplog: pytest.LogCaptureFixture) -> None:
    """The holder's renewal answered busy (another write of the lease in flight) once, then taken: it renews (the
    same term); answered busy on every try: not decided, so it keeps leading until its own deadline, as when NATS
    is away. Before: it gave its lease up at once ("lost the autoscaler lease", figure: is_leader False after one
    busy answer). A renewal that really lost (a rival landed: 10071) still makes it a follower."""

    async def game(js: BusyJetStream) -> tuple[bool, bool, int, int, int, bool]:
        kv, keeper = await _keeper(js)
        await keeper.step()
        assert keeper.is_leader and keeper.term == 1
        first = (await kv.get(AUTOSCALER_LEASE)).revision
        js.busy = busy
        await keeper.step()
        leading, term, revision = keeper.is_leader, keeper.term, (await kv.get(AUTOSCALER_LEASE)).revision
        renewed = revision > first
        js.busy = 0
        rival = Lease("rival", time.time(), time.time(), time.time() + 60).to_json()
        await kv.update(AUTOSCALER_LEASE, rival, last=revision)  # a rival's write landed: the next renewal lost
        keeper._held_until = -1.0  # due: its own deadline passed, the rule takes the lease back only if expired
        await keeper.step()
        return leading, renewed, term, js.answered, keeper.term, keeper.is_leader

    with caplog.at_level(logging.INFO, logger="gamead_core.scaling.lease"):
        leading, renewed, term, answered, _, after_rival = _play(fresh_nats(), LEASES, game)
    assert leading and term == 1, f"gave the lease up after {answered} busy answers"
    assert renewed == (busy == 1) and answered == min(busy, 9)
    assert not after_rival
    lost = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lost the autoscaler lease")]
    assert lost == ["lost the autoscaler lease (me)"], lost  # the rival's, only


def test_a_first_lease_write_answered_busy_is_acquired(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The very first write of the lease (create) answered busy once, then taken: the candidate leads. Before:
    nats-py's ``kv.create`` read the key again, found none (the rival's create not applied) and raised
    ``KeyNotFoundError`` (figure: no leader after the step, "cannot reach the leases bucket: no such record")."""

    async def game(js: BusyJetStream) -> tuple[bool, int]:
        _, keeper = await _keeper(js)
        js.busy = 1
        await keeper.step()
        return keeper.is_leader, js.answered

    assert _play(fresh_nats(), LEASES, game) == (True, 1)


def test_an_override_written_while_another_write_is_in_flight_is_set_not_refused(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """``gamead scale --replicas`` (put_override) and ``--clear`` (delete_override) answered busy once: set and
    cleared. Before: Conflict, the API's 409 "another operator changed the override" (figure: put refused on the
    first busy answer, the key still at revision 0)."""

    async def game(js: BusyJetStream) -> tuple[int | None, bool, int]:
        store = ScaleStore(js)
        js.busy = 1
        hold = Override(replicas=3, until=time.time() + 60, set_at=time.time(), set_by="op")
        revision = await store.put_override(hold, expected=(await store.read_override()).revision)
        stored = await store.read_override()
        js.busy = 1
        await store.delete_override(expected=revision)
        return (stored.override.replicas if stored.override else None), (await store.override()) is None, js.answered

    assert _play(fresh_nats(), names.kv_prefix(names.SCALING_BUCKET), game) == (3, True, 2)


def test_the_doctor_releases_a_stuck_lease_whose_release_is_answered_busy(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """``gamead doctor --repair``'s release of a stuck lease (by compare-and-set at the revision it watched)
    answered busy once: released. Before: read as "renewed or taken over meanwhile" (figure: None, the lease
    still held by the gone node)."""
    from gamead_core.doctor.leases import _sleep, release_stuck

    settings = GameadSettings(autoscaler={"interval": 0.2})  # the lease's ttl 0.6 s: the repair waits ~1 s

    async def game(js: BusyJetStream) -> tuple[str | None, str, int]:
        kv = await (await ScaleStore(js).open()).leases_kv()
        now = time.time()
        revision = await kv.create(AUTOSCALER_LEASE, Lease("gone", now, now, now + 3600).to_json())
        js.busy = 1
        released = await release_stuck(js, settings, AUTOSCALER_LEASE, revision, wait=_sleep)
        stored = Lease.from_json((await kv.get(AUTOSCALER_LEASE)).value)
        return (released.holder if released else None), stored.holder if stored else "?", js.answered

    assert _play(fresh_nats(), LEASES, game) == ("gone", "", 1)
