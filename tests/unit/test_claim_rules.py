"""Pure: the id claim's rules (gamead_core.registry.claim, attack44 F1): how long a start watches a held key, and
what counts as the holder's renewal."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gamead_core.errors import ConfigError
from gamead_core.registry.claim import WATCH_MARGIN, id_taken, reaped, renewed_by_other, watch_for
from gamead_core.registry.owner import Ownership, taken_by
from gamead_core.registry.wire import NodeInfo

_T0 = datetime(2026, 12, 5, tzinfo=timezone.utc)


def _node(pid: int, interval: float | None = 2.0) -> NodeInfo:
    return NodeInfo(id="local-1", role="worker", host="vm", pid=pid, version="x", started_at=_T0, heartbeat_at=_T0,
                    heartbeat_interval=interval)


def test_the_watch_lasts_the_holders_beat_plus_the_margin_never_past_this_nodes_own_settings() -> None:
    """attack44c F2: the holder's entry said how long to watch, capped only by ``registry.ttl`` (up to a day): an
    entry saying 3600 made a start wait 3601 s. Now this node's own ``heartbeat_interval`` caps it too. Figures for
    (3600 s holder, own 2 s, ttl 10 s): with the fix 3.0 s; without 11.0 s."""
    assert watch_for(_node(1, 1.0), 2.0, 10.0) == 1.0 + WATCH_MARGIN  # a faster holder: its own beat
    assert watch_for(_node(1, 30.0), 20.0, 10.0) == 10.0 + WATCH_MARGIN  # never past the ttl
    assert watch_for(_node(1, None), 2.0, 10.0) == 2.0 + WATCH_MARGIN  # an older node: this node's interval
    assert watch_for(_node(1, 3600.0), 2.0, 10.0) == 10.0 + WATCH_MARGIN  # the holder's word, up to the ttl
    assert watch_for(_node(1, 10.0), 1.0, 30.0) == 10.0 + WATCH_MARGIN  # a slower live holder is waited for (claim45)


def test_only_the_pid_gamead_up_reaped_on_this_host_skips_the_watch() -> None:
    """attack44c F2: ``--after-pid`` names the one process ``gamead up`` saw end; its entry (that pid, this host)
    is taken over at once; another pid, or that pid on another host, is watched as before."""
    me = _node(9)
    assert reaped(_node(4250), me, 4250)
    assert not reaped(_node(4251), me, 4250) and not reaped(_node(4250), me, None)
    assert not reaped(_node(4250).model_copy(update={"host": "other"}), me, 4250)


def test_a_key_holding_another_processs_entry_is_lost_for_good() -> None:
    """attack44c F1: a process whose key holds another's entry (not the dead predecessor's it took over) stops
    writing it: the refusal is kept, every later write refused, and it names the other process."""
    me, other = _node(1), _node(2)
    assert taken_by(5, None, me, None) is None and taken_by(5, _node(1), me, None) is None
    assert taken_by(5, other, me, 5) is None  # the dead predecessor's write this start took over
    assert taken_by(6, other, me, 5) is other
    owner = Ownership(3.0)
    owner.taken_over("local-1", 5)
    owner.judge(me, 5, other, 0.0)  # over the dead one's entry: ours to write
    with pytest.raises(ConfigError, match="the id local-1 was taken over by another process \\(host vm, pid 2"):
        owner.judge(me, 7, other, 1.0)
    with pytest.raises(ConfigError):
        owner.judge(me, 8, None, 2.0)  # nothing there now: still lost, never written again
    assert owner.lost("local-1") is not None and owner.mine("local-1") is not None


def test_only_another_processs_new_write_is_a_renewal() -> None:
    me, holder = _node(2), _node(1)
    assert renewed_by_other(7, 8, holder, me)
    assert not renewed_by_other(7, 7, holder, me)  # unchanged: not a beat
    assert not renewed_by_other(7, 8, None, me)  # a delete mark: a clean stop
    assert not renewed_by_other(7, 8, _node(2), me)  # this very process


def test_the_refusal_names_the_holder() -> None:
    line = id_taken("local-1", _node(4242), 0.43, 3.0).message
    assert "the id local-1 is held by a live process: host vm, pid 4242, heartbeat 0.4 s ago" in line
    assert "choose another --id" in line and "\n" not in line
    raced = id_taken("local-1", _node(4242), 0.1, None).message  # claim45: its write came between our read and write
    assert "is held by a live process" in raced and "two starts at once" in raced and "watched" not in raced
    late = id_taken("local-1", _node(4242), 0.1, None, late=True).message  # review45 F5: the holder's own beat
    assert "renewed its entry right after this start's watch ended" in late and "two starts" not in late


def test_an_entry_gone_under_its_writer_is_said_once_when_written_again(caplog: pytest.LogCaptureFixture) -> None:
    """claim45 1: a key found empty (deleted, expired) after this process wrote it is said once, with the id, at
    the write that puts it back; a first write, and a write over its own entry, say nothing."""
    owner, me = Ownership(3.0), _node(1)
    with caplog.at_level("WARNING", logger="gamead_core.registry.owner"):
        owner.judge(me, 0, None, 0.0)  # the first write: nothing was there yet
        owner.judge(me, 1, me, 1.0)
        owner.judge(me, 2, None, 2.0)  # a delete mark at 2
        owner.judge(me, 3, me, 3.0)
        owner.judge(me, 0, None, 4.0)  # expired
    said = [(r.getMessage(), getattr(r, "node_id", None)) for r in caplog.records]
    assert [("deleted by another process" in m, "expired" in m, i) for m, i in said] == [
        (True, False, "local-1"), (False, True, "local-1")], said
    api = _node(1).model_copy(update={"id": "api-vm-1-abcdef", "role": "api"})
    with pytest.raises(ConfigError, match="stops serving and ends"):
        Ownership(3.0).judge(api, 4, api.model_copy(update={"pid": 2}), 0.0)


def test_a_clean_stop_ends_the_writes_of_its_own_process_alone() -> None:
    """reg54: from its clean stop on, no write of the process's entry (beat or announcement) may follow its delete
    mark; another process of the id (a restart under its name) writes again, and ends the refusal."""
    owner, me, later = Ownership(3.0), _node(1), _node(2)
    assert not owner.stopped(me.id)
    owner.stopping(me)
    assert (owner.stopped(me.id), owner.stopped(me.id, me)) == (True, True)
    assert (owner.stopped(me.id, later), owner.stopped(me.id)) == (False, False)
