"""``tests.forked_shell``: a shell script's ``gamead`` lines, as written, run as forks of the fork server (no
interpreter start and imports of their own), and still give what the venv's ``gamead`` gives: stdout (a command
substitution's too), stderr, stdin, exit codes, death by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests import forked_shell
from tests.support import ForkServer, clean_env, wait_for

SCRIPT = """set -u
V=$(gamead --version)
echo "[$V]"
gamead nosuch || echo "exit $?"
echo '{"title": "x"}' | gamead submit - --api http://127.0.0.1:9 -o json >/dev/null 2>&1 || echo "submit $?"
"""


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", SCRIPT], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_scripts_gamead_lines_are_forked_and_answer_as_the_venvs(tmp_path: Path) -> None:
    """Figure (load58A): the README's CLI tour, 10 ``gamead`` lines, 6.7 → 0.9 CPU-s on the client side."""
    env = {**clean_env(GAMEAD_CLIENT__RETRY_FOR="0"), "PATH": f"{forked_shell.VENV_GAMEAD.parent}{os.pathsep}"
           f"{os.environ['PATH']}"}
    plain = _run(env, tmp_path)
    server = ForkServer.get()
    assert server is not None
    before = set(server.started)
    forked = _run(forked_shell.on_path(env), tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert forked.stdout.startswith("[gamead ") and "exit 2" in forked.stdout and "submit " in forked.stdout
    runs = [args for request, args in server.started.items() if request not in before]
    assert [args[:1] for args in runs] == [["--version"], ["nosuch"], ["submit"]], runs


def test_a_signal_to_the_script_reaches_the_forked_gamead(tmp_path: Path) -> None:
    """SIGTERM to the ``gamead`` a shell started (waiting on its stdin) reaches the forked child, which ends as the
    venv's does (143: gamead's own exit for SIGTERM), and the shell's ``gamead`` ends with its code."""
    server = ForkServer.get()
    assert server is not None
    before = set(server.started)
    with subprocess.Popen(["bash", "-c", "exec gamead submit - --api http://127.0.0.1:9"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=forked_shell.on_path(clean_env()),
                          cwd=tmp_path, text=True) as script:
        child = wait_for(lambda: next((n for n in server.started if n not in before), None), timeout=60,
                         what="the forked gamead")
        script.send_signal(signal.SIGTERM)
        _, err = script.communicate(timeout=60)
    assert server.wait_exit(child, 60) == 143 == script.returncode, err
