"""``gamead up`` says when a setting it was started with is not in force (attack32c F1): restarted in the same data
dir with a lower ``queue.ack_wait`` (and ``dlq.max_msgs``), the live limits stay (a start never lowers one: README,
"One node's settings never rewrite the fleet's"), and the console said only "every child runs with it as it is now
(the settings in force …)". Now it names each setting, its live and asked values, and the command that applies them;
that command, run verbatim, does (the line goes, ``/readyz`` is ready). A real ``gamead up``, nats-server and API."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support import clean_env, up_stack

#: small bounds so the stops take seconds; no queue.ack_wait: the first stack runs the default 30 s
QUICK = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_LOG__LEVEL": "WARNING"}
HEAD = "2 settings gamead up started with are not in force"


def _readyz(url: str, said: str = "") -> dict[str, object]:
    """``/readyz`` of a stack that said it is ready; refused, the assertion shows what ``gamead up`` printed
    (a loaded full run once saw it refused after "Press Ctrl-C": not reproduced alone)."""
    try:
        return dict(httpx.get(f"{url}/readyz", timeout=10).json())
    except httpx.ConnectError as exc:
        raise AssertionError(f"{url}/readyz refused ({exc}) after gamead up said it is ready:\n{said[-3000:]}") from exc


@pytest.mark.timeout(600)  # three stack starts, each slow on a loaded machine
def test_a_restart_with_a_lower_ack_wait_says_it_is_not_in_force_and_the_command_it_prints_applies_it(
    tmp_path: Path,
) -> None:
    first = up_stack(tmp_path, "--workers", "0", **QUICK).start()
    try:
        first.wait_ready()
    finally:
        first.stop()
    asked = {"GAMEAD_QUEUE__ACK_WAIT": "10", "GAMEAD_DLQ__MAX_MSGS": "500"}
    # a port of its own (picked, again if taken): the restart is about the data dir, and a kept port is anybody's
    # while no stack runs (flake55)
    lower = up_stack(tmp_path, "--workers", "0", data_dir=first.data_dir, name="lower", **QUICK, **asked).start()
    try:
        output = lower.wait_ready()
        body = _readyz(lower.url, output)
    finally:
        lower.stop()
    assert body["status"] == "degraded", body  # what /readyz said already, and the console did not
    line = next((ln for ln in output.splitlines() if HEAD in ln), None)
    assert line is not None, output[-3000:]
    assert line.startswith("! ")
    assert "queue.ack_wait: live 30 s on consumers gamead-p1" in line and "this stack's 10 s" in line
    assert "dlq.max_msgs: live 1,000,000 on stream GAMEAD_DLQ, this stack's 500" in line
    assert "the settings in force" not in output  # the config line no longer claims every setting is
    assert "but for 2 limits the fleet shares, whose live value stays (below)" in output
    command = re.split(r"then run: ", line, maxsplit=1)[1].strip()
    assert command.split(" && ", 1)[1].startswith("GAMEAD_QUEUE__LOWER_LIMITS=true ")
    assert " GAMEAD_QUEUE__ACK_WAIT=10 " in command and " GAMEAD_DLQ__MAX_MSGS=500 " in command

    # the printed command, verbatim, without the variables the restart had
    # its --port is lower's: picked again (in the command) only if another process took it meanwhile
    applied = up_stack(tmp_path, port=lower.port, data_dir=first.data_dir, name="applied", kept=True, **QUICK)
    applied.argv = ["bash", "-c", command]  # bash execs its last command: its pid is gamead up's
    applied.env = clean_env(**QUICK)
    applied.start()
    try:
        said = applied.wait_ready()
        body = _readyz(applied.url, said)
    finally:
        applied.stop()
    assert "not in force" not in said, said[-3000:]
    assert "every child runs with it as it is now (the settings in force" in said
    assert (body["status"], body["differs"]) == ("ready", []), body
