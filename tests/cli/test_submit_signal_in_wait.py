"""attack45 F5: a double Ctrl-C of ``gamead submit --count 100000 --rate 100`` once ended ``internal_error:
unexpected RuntimeError: release unlocked lock`` and no summary, ~200 ads queued. CPython raises a Ctrl-C's
KeyboardInterrupt wherever the main thread is: in ``Condition.wait`` (the pacer's ``Event.wait``, the pool's slots,
the wait for the requests in flight) just before it takes its lock back, the ``with cond:`` around it then released
a lock it did not hold. The race is rare by chance (1 run in ~90); here a real ``gamead submit`` process is made to
meet it every time: a trace function of its main thread raises SIGINT (``signal.raise_signal``, whose Python
handler runs there and then) at the moment the k-th and the (k+1)-th ``Condition.wait`` of that thread take their
lock back. A real API on a real NATS; nothing of the submit is replaced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_env, killed_if_left, sigint_reaches_it

#: the submit, run with a trace on its main thread that raises SIGINT as Condition.wait takes its lock back
DRIVER = """
import signal, sys, threading
hits, at = [0], {int(n) for n in sys.argv[1].split(",")}
def tracer(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_name == "_acquire_restore" and code.co_filename == threading.__file__:
        hits[0] += 1
        if hits[0] in at:
            signal.raise_signal(signal.SIGINT)
    return None
sys.argv = ["gamead", *sys.argv[2:]]
from gamead_cli.main import main
sys.settrace(tracer)
main()
"""


@pytest.mark.parametrize("first", [1, 2, 3, 5, 8, 13, 30])
def test_two_ctrl_c_as_a_wait_takes_its_lock_back_print_the_summary_and_exit_130(
        tmp_path: Path, api_url: str, first: int) -> None:
    """Two Ctrl-C, each as the main thread's ``Condition.wait`` takes its lock back (the k-th and (k+1)-th such
    moment): the summary (interrupted, the README's sum over its figures) and exit 130, never ``internal_error``
    (before: ``unexpected RuntimeError: release unlocked lock``, exit 1, no summary)."""
    argv = ["submit", "--count", "100000", "--rate", "100", "--title", f"Lock race {first}", "--genre", "RPG",
            "--api", api_url, "-o", "json"]
    cli = subprocess.Popen([sys.executable, "-c", DRIVER, f"{first},{first + 1}", *argv], cwd=tmp_path,
                           env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           text=True, preexec_fn=sigint_reaches_it)
    with killed_if_left(cli):
        out, err = cli.communicate(timeout=120)
    assert "internal_error" not in out + err and "Traceback" not in err, (out, err)
    assert cli.returncode == 130, (cli.returncode, out, err)
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["sent"] < 100000, summary
    counted = (summary["accepted"] + summary["duplicates"] + sum(summary["rejectedByCode"].values())
               + summary["queuedFound"] + summary["notQueued"] + summary["maybeQueued"] + summary["notSent"])
    assert counted == 100000, summary
    assert "interrupted (Ctrl-C)" in err, err
