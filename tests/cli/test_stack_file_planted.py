"""attack41c F1/F2: a ``.gamead/gamead-up.json`` that no ``gamead up`` wrote (planted, or not a file at all) in the
directory a CLI verb runs in.

Since attack41b F5 a verb run there with no API named talks to the file's ``apiUrl`` even when its ``up`` is gone.
F1: a planted file's ``apiUrl`` of another host got the verb's bearer token (GAMEAD_CLIENT__TOKEN): ``gamead
workers`` sent ``Authorization: Bearer …`` to ``http://0.0.0.0:PORT`` (a listener there saw it, exit 0), and to any
``https://attacker.example``. ``gamead up`` writes ``http://127.0.0.1:PORT`` alone: any other is now refused, exit 5
in one line naming the file, nothing sent. F2: the file a symlink to ``/dev/zero`` made every verb there end
``unexpected MemoryError`` (exit 1, after eating the memory it could get), a FIFO hung it for ever; now such a file
is not read (the verb falls back as for a missing file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_http import HostileServer
from tests.support import clean_env, run_gamead


def _plant(cwd: Path, doc: dict[str, object]) -> None:
    (cwd / ".gamead").mkdir(exist_ok=True)
    (cwd / ".gamead" / "gamead-up.json").write_text(json.dumps(doc))


def test_a_planted_api_url_of_another_host_gets_no_token(tmp_path: Path) -> None:
    """Without the fix (options.py of 84ee7137): the listener got 'Authorization: Bearer planted-secret', exit 0;
    with it: exit 5, one line naming the file, no request."""
    server = HostileServer("record").start()
    try:
        port = server.url.rsplit(":", 1)[1]
        for url in (f"http://0.0.0.0:{port}", f"http://user:pw@127.0.0.1:{port}", "https://attacker.invalid"):
            _plant(tmp_path, {"pid": 999_999_999, "apiUrl": url})
            done = run_gamead("workers", cwd=tmp_path, env=clean_env(GAMEAD_CLIENT__TOKEN="planted-secret"))
            assert not any("planted-secret" in head for head in server.heads), (url, server.heads)
            assert done.returncode == 5, (url, done.returncode, done.stdout, done.stderr)
            said = " ".join(done.stderr.split())
            assert done.stderr.count("\n") == 1 and "gamead-up.json" in said, said
            assert "is not the http://127.0.0.1:PORT URL gamead up writes" in said and "--api" in said, said
            assert "planted-secret" not in said and "pw@" not in said, said
        # the URL up writes is still used, with the token (test_stack_dir has a real stack)
        _plant(tmp_path, {"pid": 999_999_999, "apiUrl": server.url})
        run_gamead("workers", cwd=tmp_path, env=clean_env(GAMEAD_CLIENT__TOKEN="stack-secret"))
        assert any("Bearer stack-secret" in head for head in server.heads), server.heads
    finally:
        server.stop()


def test_a_fifo_as_the_state_file_does_not_hang_a_verb(tmp_path: Path) -> None:
    """Without the fix (datadir.py of 84ee7137): TimeoutExpired (the open of a FIFO with no writer waits for
    ever); with it, the verb falls back to the default URL and says it cannot reach it (exit 3)."""
    (tmp_path / ".gamead").mkdir()
    os.mkfifo(tmp_path / ".gamead" / "gamead-up.json")
    done = run_gamead("workers", cwd=tmp_path,
                      env=clean_env(GAMEAD_CLIENT__TIMEOUT="2", GAMEAD_CLIENT__TOKEN="t"), timeout=30)
    assert done.returncode in (0, 3), (done.returncode, done.stderr)  # 0: something serves 8080 on this machine
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_the_state_file_a_link_to_dev_zero_is_not_read(tmp_path: Path) -> None:
    """In a child limited to 1 GiB of address space: without the fix (datadir.py of 84ee7137) recorded_stack read
    /dev/zero until MemoryError; with it, None at once."""
    (tmp_path / ".gamead").mkdir()
    (tmp_path / ".gamead" / "gamead-up.json").symlink_to("/dev/zero")
    big = tmp_path / "big" / ".gamead"
    big.mkdir(parents=True)
    (big / "gamead-up.json").write_bytes(b'{"pid": 1, "apiUrl": "http://127.0.0.1:1"}' + b" " * (2 << 20))
    code = ("import resource, sys; from pathlib import Path\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from gamead_core.datadir import recorded_stack, DataDir\n"
            "print(recorded_stack(Path(sys.argv[1])), recorded_stack(Path(sys.argv[2])),"
            " DataDir(Path(sys.argv[1])).strays())\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".gamead"), str(big)], capture_output=True,
                          text=True, timeout=60, env=clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "None", "[]"], done.stdout


@pytest.mark.parametrize("doc", [{"started": 5}, {"started": "worker-1"}, {"started": {"pid": 1}}, {"started": None},
                                 [{"pid": 1}], 7])
def test_a_state_file_of_another_shape_names_no_stray(tmp_path: Path, doc: object) -> None:
    """review42 F2: ``DataDir.strays`` (``gamead up``'s first look at the directory, before its stack starts) took
    ``started`` for a list: ``{"started": 5}`` raised TypeError, so ``gamead up`` there ended ``unexpected`` (exit 1)
    instead of starting; a string's characters or a dict's keys were iterated. Now any other shape is no stray."""
    from gamead_core.datadir import DataDir

    (tmp_path / "gamead-up.json").write_text(json.dumps(doc), encoding="utf-8")
    assert DataDir(tmp_path).strays() == []
