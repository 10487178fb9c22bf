"""regress45: a second Ctrl-C cancels the batches still waiting for a request slot (named in the summary:
``N caught by the stop``, safe to resend), but the red line's "the input up to X (none after it); resume from the
ad after it" named the last ad *handed out*, cancelled ones included: ``gamead submit --count 20000 --rate 200``,
SIGINT twice: ``sent 500 … 20 caught by the stop: lines ad 501-520``, then ``500 of 20,000 ad(s) sent, the input up
to ad 520 (none after it); resume from the ad after it``: resuming there skips ads 501-520, sent nowhere.

Real nats-server, a real API frozen (SIGSTOP) so every request slot waits, a real ``gamead submit`` process."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import GameadPopen
from tests.support import Proc, clean_env, frozen, gamead_argv, killed_if_left, sigint_reaches_it, start_api, wait_for

CONCURRENCY = 2


def _said(path: Path) -> str:
    return " ".join(path.read_text().split())


def _waiting(pid: int) -> int:
    """Threads of ``pid`` waiting on a socket (a request waiting for its answer). Linux ``/proc``."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            count += "poll" in (task / "wchan").read_text()
        except OSError:
            continue
    return count


def test_the_red_line_names_the_last_ad_sent_not_one_a_second_ctrl_c_cancelled(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    err = tmp_path / "submit.err"
    with err.open("w") as sink:
        cli = GameadPopen(gamead_argv("submit", "--count", "5000", "--rate", "200", "--batch-size", "10",
                                      "--concurrency", str(CONCURRENCY), "--title", "Last sent", "--genre", "RPG",
                                      "--api", url, "-o", "json"),
                          env=clean_env(GAMEAD_CLIENT__TIMEOUT="60"), stdout=subprocess.PIPE, stderr=sink,
                          stdin=subprocess.DEVNULL, text=True, preexec_fn=sigint_reaches_it)
    with killed_if_left(cli):
        with httpx.Client(base_url=url, timeout=10) as http:
            wait_for(lambda: http.get("/ads", params={"limit": 20}).json()["count"] >= 10, timeout=60,
                     what="some ads of the run queued")
        with frozen(api.pid):
            wait_for(lambda: _waiting(cli.pid) >= CONCURRENCY, timeout=60,
                     what="every request slot waiting for the frozen API's answer")

            def pressed() -> bool:  # one Ctrl-C more, until the summary is out
                if "interrupted (Ctrl-C)" in _said(err) or cli.poll() is not None:
                    return True
                cli.send_signal(signal.SIGINT)
                return False

            wait_for(pressed, timeout=60, interval=0.5, what="the summary after Ctrl-C, twice or more")
            out, _ = cli.communicate(timeout=60)
    said = _said(err)
    summary = json.loads(out)
    caught = summary["notSentWhere"]
    assert summary["interrupted"] is True and summary["notSentCaught"] > 0, summary  # batches it cancelled
    # the batches waiting behind the frozen requests went nowhere: the run sent ads 1 to `sent`, no further
    assert summary["lastSent"] == f"ad {summary['sent']}", (summary["lastSent"], summary["sent"], caught, said)
    assert f"the input up to ad {summary['sent']} (none after it)" in said, said
