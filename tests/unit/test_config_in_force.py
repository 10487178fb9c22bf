"""``gamead up --workers 0`` prints ``gamead worker --config <data dir>/config-in-force.yaml --nats-url …`` to join a
worker from another terminal, where the stack's ``GAMEAD_*`` variables are not set (attack25 finding 2: the file
was ``{}``, so with ``GAMEAD_QUEUE__PARTITIONS=3`` the pasted command exited 5, and with a simulated latency it ran a
worker configured unlike the stack's). The file now holds every setting of the stack that differs from the
defaults, whatever set it (config file, ``GAMEAD_*``, flags), owner-only since it may hold secrets."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from gamead_cli.commands.up_config import snapshot_config
from gamead_cli.commands.up_console import worker_command
from gamead_core.config import load_settings, masked_dump

from tests.support import drop_gamead_env


def test_the_printed_worker_command_runs_with_the_stacks_env_file_and_flag_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    (tmp_path / "config.yaml").write_text("registry: {ttl: 12}\nauth:\n  tokens:\n"
                                          "    - {name: ops, token: s3cret-token, role: operator}\n")
    monkeypatch.setenv("GAMEAD_QUEUE__PARTITIONS", "3")
    monkeypatch.setenv("GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS", "200")
    stack = load_settings(Path("config.yaml"), worker={"concurrency": 6}, api={"port": 18250})  # as up loads it
    data = tmp_path / "d"
    data.mkdir()
    snapshot = snapshot_config(Path("config.yaml"), stack, data)
    assert snapshot.stat().st_mode & 0o777 == 0o600  # it holds the token

    command = worker_command("gamead", "nats://127.0.0.1:20013", snapshot)
    argv = shlex.split(command)
    given = Path(argv[argv.index("--config") + 1])

    # another terminal, in another directory, without any of the stack's GAMEAD_* variables
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    drop_gamead_env(monkeypatch, elsewhere)
    assert not any(name.startswith("GAMEAD_") for name in os.environ)
    joined = load_settings(given)
    assert (joined.queue.partitions, joined.analysis.simulated_latency_ms) == (3, 200)
    assert (joined.worker.concurrency, joined.registry.ttl, joined.api.port) == (6, 12, 18250)
    assert joined.auth.tokens[0].token.get_secret_value() == "s3cret-token"
    assert masked_dump(joined) == masked_dump(stack)  # every setting, not only those named here


def test_a_leftover_world_readable_tmp_never_holds_the_secret(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """attack26b F5: a ``config-in-force.yaml.tmp`` left by a killed start, world-readable and opened by another
    user's reader beforehand, was truncated and written in place, then chmod-ed: the reader got the token. Now a
    leftover is removed and the new file is owner-only from its creation: the reader's file stays empty."""
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GAMEAD_NATS__TOKEN", "stack-secret-f5")
    data = tmp_path / "d"
    data.mkdir()
    leftover = data / "config-in-force.yaml.tmp"
    leftover.write_bytes(b"")
    leftover.chmod(0o644)
    with leftover.open("rb") as reader:  # opened while it was readable: the same file later, whatever its mode
        snapshot = snapshot_config(None, load_settings(None), data)
        assert "stack-secret-f5" in snapshot.read_text()
        assert b"stack-secret-f5" not in reader.read()
    assert snapshot.stat().st_mode & 0o777 == 0o600 and not leftover.exists()
