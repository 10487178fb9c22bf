"""stacks16 item 1: a port a running ``gamead up`` keeps for its children's restarts is reserved machine-wide
among gamead stacks (``gamead_core.port_claims``). Two claimers in one process stand for two stacks: a
``flock`` conflicts between two opens of the file, in one process as in two. Real files, a private directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gamead_core.embedded import free_port
from gamead_core.port_claims import PortClaims, PortReserved


def test_a_claimed_port_is_refused_to_another_stack_naming_the_holder_until_it_is_released(tmp_path: Path) -> None:
    first = PortClaims(tmp_path / "sA", directory=tmp_path / "claims")
    second = PortClaims(tmp_path / "sB", directory=tmp_path / "claims")
    assert first.unusable is None and oct((tmp_path / "claims").stat().st_mode & 0o777) == "0o700"
    port = free_port()
    assert first.claim(port, "its embedded nats-server") is None
    assert first.claim(port, "its embedded nats-server") is None  # ours already
    holder = second.claim(port, "its API")
    assert holder is not None and holder.pid == os.getpid() and holder.data_dir == str((tmp_path / "sA").resolve())
    assert second.holder(port) == holder and first.holder(port) is None
    with pytest.raises(PortReserved) as refused:
        second.require(port, "its embedded nats-server", "the embedded nats-server",
                       "set embedded.nats_port to another port (0 = any free port)")
    assert str(refused.value) == (
        f"port {port} is reserved by another `gamead up` (pid {os.getpid()}, data dir {(tmp_path / 'sA').resolve()}) "
        "for its embedded nats-server (kept for its restarts while that stack runs): the embedded nats-server "
        "cannot listen there — set embedded.nats_port to another port (0 = any free port)")
    assert refused.value.code == "config_error"  # exit 5, as a taken port
    first.release_all()
    assert not (tmp_path / "claims" / f"{port}.lock").exists()  # a claim given back leaves no file
    assert second.claim(port, "its API") is None and first.claim(port, "x") is not None
    (tmp_path / "claims" / "1.lock").write_text("4242\n/gone\nits API\n")  # left by a killed up: unlocked
    assert first.claim(1, "its API") is None and 1 in first.held


def test_a_port_picked_skips_the_ones_another_stack_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = PortClaims(tmp_path / "sA", directory=tmp_path / "claims")
    mine = PortClaims(tmp_path / "sB", directory=tmp_path / "claims")
    reserved, free = free_port(), free_port()
    assert other.claim(reserved, "its API") is None
    offered = iter([reserved, reserved, free])
    monkeypatch.setattr("gamead_core.port_claims.free_port", lambda host: next(offered))
    assert mine.pick("127.0.0.1", "its embedded nats-server") == free and free in mine.held


def test_a_port_picked_is_never_one_this_stack_holds_already(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """review16: the stack's own API port (or a worker's kept port), free while that child restarts, could be
    picked as a worker's fallback: given out twice, and the worker's release dropped the API's claim."""
    mine = PortClaims(tmp_path / "sA", directory=tmp_path / "claims")
    api, other = free_port(), free_port()
    assert mine.claim(api, "its API") is None
    offered = iter([api, api, other])
    monkeypatch.setattr("gamead_core.port_claims.free_port", lambda host: next(offered))
    assert mine.pick("127.0.0.1", "worker local-1's /metrics") == other
    mine.release(other)
    assert api in mine.held  # the API's claim stands


def test_a_directory_others_can_write_turns_claims_off_with_a_reason(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    claims = PortClaims(tmp_path / "sA", directory=shared / "ports")
    assert claims.unusable and "only this user can write" in claims.unusable
    assert claims.claim(free_port(), "its API") is None and not claims.held  # unclaimed, as before claims


def test_a_workers_planned_metrics_port_another_stack_claims_falls_back_with_a_line(tmp_path: Path) -> None:
    from gamead_cli.commands.up import WorkerMetricsPorts

    other = PortClaims(tmp_path / "sA", directory=tmp_path / "claims")
    mine = PortClaims(tmp_path / "sB", directory=tmp_path / "claims")
    base = free_port()
    assert other.claim(base, "its worker local-1's /metrics") is None  # the other stack's worker is down
    lines: list[str] = []
    ports = WorkerMetricsPorts("127.0.0.1", base, on_fallback=lines.append, claims=mine)
    moved = ports.port_for("local-1")
    assert moved != base and moved in mine.held and base not in mine.held
    assert lines == [(f"metrics: port {base} is reserved by another `gamead up` (pid {os.getpid()}, data dir "
                      f"{(tmp_path / 'sA').resolve()}) for its worker local-1's /metrics: local-1 serves "
                      f"http://127.0.0.1:{moved}/metrics instead")]
    assert ports.port_for("local-1") == moved and len(lines) == 1  # kept, and claimed, for its restarts


def test_lock_files_nobody_holds_are_swept_at_start_and_a_look_leaves_none(tmp_path: Path) -> None:
    """Session 16 left out: the claim files of killed stacks piled up (69 after one session, 141 at the start of
    the next), as did one per port a stack only looked at (:meth:`PortClaims.holder`). Now a new stack removes
    the ones nobody holds when it starts, keeps the ones a running stack holds, and a look creates none."""
    claims = tmp_path / "claims"
    running = PortClaims(tmp_path / "sA", directory=claims)
    held = free_port()
    assert running.claim(held, "its API") is None
    for port in (10001, 10002, 10003):  # left by killed stacks: unlocked
        (claims / f"{port}.lock").write_text(f"{port}\n/gone\nits API\n")
    (claims / "notes.txt").write_text("not a claim")
    fresh = PortClaims(tmp_path / "sB", directory=claims)
    assert fresh.swept == 3
    assert sorted(p.name for p in claims.iterdir()) == sorted([f"{held}.lock", "notes.txt"])
    assert fresh.holder(held) is not None and fresh.holder(free_port()) is None
    assert sorted(p.name for p in claims.iterdir()) == sorted([f"{held}.lock", "notes.txt"])
    running.release_all()
    assert [p.name for p in claims.iterdir()] == ["notes.txt"]
