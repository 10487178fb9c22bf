"""Review stats2 #4: printed commands and errors gave away secrets and could not be pasted. An ``--api`` with a
password (``http://alice:s3cret@host``) was printed verbatim in the hints (``check later with: … --api …``) and in
the error lines of ``gamead submit``; and a NoAnswer hint printed ``--idempotency-key run 7; $(touch x)`` unquoted
(a key may hold spaces, ``;``, ``$(…)``: pasted, the shell runs them). Now printed URLs carry ``***`` for the
password and the hint says it was left out; the key is shell-quoted. Shown against a real listener that takes
requests and never answers (as a frozen API does)."""

from __future__ import annotations

import shlex
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.options import reach_again

QUICK = {"GAMEAD_CLIENT__TIMEOUT": "1", "GAMEAD_CLIENT__RETRY_FOR": "0"}
KEY = "run 7; $(touch pwned)"


@pytest.fixture
def silent_api() -> Iterator[int]:
    """A loopback port that accepts connections and reads requests, and never answers one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_the_hints_of_an_unanswered_submit_hide_the_password_and_quote_the_key(
        silent_api: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml, no stack
    url = f"http://alice:s3cret@127.0.0.1:{silent_api}"
    shown = shlex.quote(f"http://alice:***@127.0.0.1:{silent_api}")
    keyed = CliRunner().invoke(app, ["submit", "-t", "Frozen Saga", "-g", "RPG", "--api", url,
                                     "--idempotency-key", KEY], env=QUICK)
    assert keyed.exit_code == 3, keyed.output
    assert "s3cret" not in keyed.output, keyed.output
    assert f"send the same command again with --idempotency-key {shlex.quote(KEY)} " in keyed.stderr, keyed.stderr
    plain = CliRunner().invoke(app, ["submit", "-t", "Frozen Saga", "-g", "RPG", "--api", url], env=QUICK)
    assert plain.exit_code == 3, plain.output
    assert "s3cret" not in plain.output, plain.output
    line = " ".join(plain.stderr.split())
    assert f"ads list --api {shown}" in line, line
    assert "password" in line.split(f"ads list --api {shown}")[1], line  # the hint says it was left out
    batch = CliRunner().invoke(app, ["submit", "--count", "3", "--batch-size", "3", "--api", url], env=QUICK)
    table = " ".join(batch.stdout.replace("│", " ").split())
    assert batch.exit_code == 1 and "s3cret" not in batch.output, batch.output  # the summary's printed command
    assert "find them with: " in table and f"ads list --api {shown}" in table, table


def test_reach_again_never_prints_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GAMEAD_CONFIG", raising=False)
    again = reach_again("http://alice:s3cret@api.example:8080", None)
    assert "s3cret" not in again and again.startswith(" --api 'http://alice:***@api.example:8080'"), again
    assert "password" in again, again
    assert reach_again("http://api.example:8080", None) == " --api http://api.example:8080"  # nothing to say
