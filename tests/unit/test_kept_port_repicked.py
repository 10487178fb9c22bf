"""flake55: a ``gamead up`` a test restarts on the port an earlier stack of it had (``up_stack(…, kept=True)``) is
picked again when another process took that port in the gap, as a picked one is (before: exit 5 "port 23250 is
taken by another process", the test failed) — its ``--port`` changed where it is written, a word of its own or
inside the printed restart command run by ``bash -c`` (:func:`tests.support.with_port`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import up_stack, with_port

COMMAND = ("cd /x && GAMEAD_QUEUE__LOWER_LIMITS=true GAMEAD_QUEUE__ACK_WAIT=10 /v/bin/gamead up --port 4711 "
           "--data-dir /d")


def test_a_port_of_its_own_word_is_changed() -> None:
    argv = ["python", "-m", "gamead_cli", "up", "--port", "4711", "--data-dir", "/d"]
    assert with_port(argv, 4711, 5000) == ["python", "-m", "gamead_cli", "up", "--port", "5000", "--data-dir", "/d"]
    assert argv[5] == "4711"  # a new list


def test_the_port_in_a_printed_command_is_changed_and_nothing_else() -> None:
    assert with_port(["bash", "-c", COMMAND], 4711, 5000) == ["bash", "-c", COMMAND.replace("4711", "5000")]


@pytest.mark.parametrize("argv", [["bash", "-c", COMMAND.replace("--port 4711", "--port 47112")],
                                  ["bash", "-c", COMMAND.replace("--port 4711 ", "")]])
def test_no_such_port_is_said(argv: list[str]) -> None:
    with pytest.raises(AssertionError, match="no --port 4711"):
        with_port(argv, 4711, 5000)


def test_a_kept_port_is_picked_again_a_fixed_one_is_not(tmp_path: Path) -> None:
    kept = up_stack(tmp_path, port=4711, kept=True, name="kept")
    kept.argv = ["bash", "-c", COMMAND]
    kept.out.write_text("error: cannot listen on 127.0.0.1:4711 (api.port): port 4711 is taken by another process")
    assert kept._lost() == "--port"
    fixed = up_stack(tmp_path, port=4711, name="fixed")
    fixed.out.write_text(kept.out.read_text())
    assert fixed._lost() is None  # a port the test needs: its refusal is the test's to judge
