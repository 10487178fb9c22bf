"""`gamead up`'s hints run verbatim in another terminal, where the venv is not active (issue 10 item 4)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from gamead_cli.commands.up_console import next_commands
from gamead_cli.program import gamead_program
from gamead_core.embedded import free_port
from gamead_core.proc import port_free

VENV_BIN = Path(sys.executable).parent


@pytest.mark.skipif(not (VENV_BIN / "gamead").is_file(), reason="gamead is not installed beside this Python")
def test_a_hint_names_the_venv_gamead_when_the_path_does_not_find_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a fresh terminal after `make up`: no venv on the PATH
    monkeypatch.chdir(VENV_BIN.parent.parent)  # the checkout, where `make up` runs
    program = gamead_program()
    assert program == str(VENV_BIN.absolute() / "gamead")  # absolute: a hint works from any directory
    assert all(cmd.startswith(f"{program} ") for cmd in next_commands("http://127.0.0.1:9", program)[:5])


@pytest.mark.skipif(not (VENV_BIN / "gamead").is_file(), reason="gamead is not installed beside this Python")
def test_a_hint_says_gamead_when_the_path_finds_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{VENV_BIN}:/usr/bin:/bin")  # an active venv
    assert gamead_program() == "gamead"


def test_elsewhere_the_hint_is_an_absolute_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    program = gamead_program()
    assert program == "gamead" or Path(program).is_absolute()


def _taken_port_after_a_free_one() -> tuple[socket.socket, int]:
    """A listening socket on port P whose port P - 1 is free (a few tries on the ephemeral range)."""

    for _ in range(50):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        if port_free("127.0.0.1", port - 1):
            return sock, port
        sock.close()
    raise AssertionError("no free port below a taken one in 50 tries")


def test_worker_metrics_ports_follow_the_api_port_and_a_taken_one_falls_back_with_a_line() -> None:
    """The reviewer's finding: worker /metrics ports under ``gamead up`` were random. local-k gets base + k - 1
    (base: the API port + 1, or --metrics-port), kept across restarts; a taken port falls back, said once."""
    from gamead_cli.commands.up import WorkerMetricsPorts

    lines: list[str] = []
    taken, busy = _taken_port_after_a_free_one()  # what would be local-2's port
    with taken:
        base = busy - 1
        ports = WorkerMetricsPorts("127.0.0.1", base, on_fallback=lines.append)
        assert ports.args("local-1") == ["--metrics-port", str(base)] and not lines
        second = ports.port_for("local-2")
        assert second != busy and lines == [f"metrics: port {busy} is taken: local-2 serves "
                                            f"http://127.0.0.1:{second}/metrics instead"]
        assert ports.port_for("local-2") == second and len(lines) == 1  # a restart keeps its port, said once
    assert ports.urls() == (f"local-1 http://127.0.0.1:{base}/metrics, "
                            f"local-2 http://127.0.0.1:{second}/metrics")
    assert ports.rule(4) == f"local-k on port {base - 1}+k, up to local-4"
    assert WorkerMetricsPorts("127.0.0.1", 8081).planned("local-3") == 8083
    assert WorkerMetricsPorts("127.0.0.1", 8081, enabled=False).args("local-1") == []


def test_a_workers_kept_metrics_port_taken_while_it_was_down_falls_back_at_its_restart_with_a_line() -> None:
    """Session 16 (a CI run of the frozen-worker test): a worker's /metrics port, kept for its restarts, can be
    taken while it is down (another process; an outgoing connection given it as its local port). Restarted on
    it, the worker refused to start for as long as it stayed taken (exit 5, back-off growing to 30 s, the
    stack a worker short). A restart now gets another port, said in one line."""
    from gamead_cli.commands.up import WorkerMetricsPorts

    lines: list[str] = []
    ports = WorkerMetricsPorts("127.0.0.1", free_port(), on_fallback=lines.append)
    kept = ports.port_for("local-1")
    assert ports.port_for("local-1") == kept and not lines  # still free: the restart keeps it
    with socket.socket() as other:  # taken while local-1 was down
        other.bind(("127.0.0.1", kept))
        other.listen()
        moved = ports.port_for("local-1")
        assert moved != kept and port_free("127.0.0.1", moved)
        assert lines == [f"metrics: port {kept}, local-1's until it stopped, is taken now: local-1 serves "
                         f"http://127.0.0.1:{moved}/metrics instead"]
    assert ports.port_for("local-1") == moved and len(lines) == 1  # its new port, kept from now on
    assert ports.urls() == f"local-1 http://127.0.0.1:{moved}/metrics"


def test_up_names_the_partitions_and_their_streams() -> None:
    from gamead_cli.commands.up_console import partitions_line

    assert partitions_line(1) == "queue: 1 partition (work stream GAMEAD_ADS; queue.partitions)"
    assert partitions_line(3) == ("queue: 3 partitions (work streams GAMEAD_ADS, GAMEAD_ADS_1, GAMEAD_ADS_2; "
                                  "queue.partitions)")


def test_every_gamead_hint_names_its_api_even_on_the_default_port() -> None:
    """stacks16 item 2: a stack on the default 8080 printed its hints without ``--api``; run from a directory
    whose ``./.gamead`` is another stack's (or with GAMEAD_API_URL set), ``gamead ads list`` / ``scale status``
    reached that other stack (README, "Which API a command talks to"). Only ``--api`` wins from anywhere."""
    default = "http://127.0.0.1:8080"
    for worker in (None, "gamead worker --nats-url nats://127.0.0.1:4222"):
        commands = next_commands(default, "gamead", worker=worker)
        gamead_lines = [c for c in commands if c.startswith("gamead ") and " worker " not in f" {c} "]
        assert len(gamead_lines) == 5
        assert all(c.endswith(f" --api {default}") for c in gamead_lines), gamead_lines


def test_a_wildcard_hosts_metrics_port_held_on_one_address_is_not_kept_nor_planned() -> None:
    """review54: with ``worker.metrics_host`` 0.0.0.0 the port was judged free on 127.0.0.1 alone, but the worker
    binds the wildcard, which a listener on any one address (here 127.0.0.2) refuses. port54 made the worker's
    'port P is taken' a retry on a new pick, and the pick kept P again: restarted on it forever, each exit said as
    'picked by gamead up, was taken by another process first'. Judged where the worker binds, P is not used."""
    from gamead_cli.commands.up import WorkerMetricsPorts

    lines: list[str] = []
    with socket.create_server(("127.0.0.2", 0)) as other:  # another process, on one address only
        busy = other.getsockname()[1]
        planned = WorkerMetricsPorts("0.0.0.0", busy, on_fallback=lines.append)
        assert planned.port_for("local-1") != busy and lines[0].startswith(f"metrics: port {busy} is taken")
        kept = WorkerMetricsPorts("0.0.0.0", free_port(), on_fallback=lines.append)
        kept.ports["local-1"] = busy  # local-1's until it stopped (a restart after its exit 5)
        assert kept.port_for("local-1") != busy and port_free("0.0.0.0", kept.ports["local-1"])
        assert kept.local_url("local-1") == f"http://127.0.0.1:{kept.ports['local-1']}/metrics"  # reached on loopback
