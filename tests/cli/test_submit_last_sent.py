"""regress45: a second Ctrl-C cancels the batches still waiting for a request slot (named in the summary:
``N caught by the stop``, safe to resend), but the red line's "the input up to X (none after it); resume from the
ad after it" named the last ad *handed out*, cancelled ones included: ``gamead submit --count 20000 --rate 200``,
SIGINT twice: ``sent 500 … 20 caught by the stop: lines ad 501-520``, then ``500 of 20,000 ad(s) sent, the input up
to ad 520 (none after it); resume from the ad after it``: resuming there skips ads 501-520, sent nowhere.

Real nats-server, a real API frozen (SIGSTOP) so every request slot waits, a real ``gamead submit`` process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


from gamead_core.embedded import EmbeddedNats
from tests.cli.test_submit_lookup_bound import ctrl_c_until_summary, submit_to_a_frozen_api
from tests.support import Proc, wait_for

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
    with submit_to_a_frozen_api(fresh_nats().url, procs, tmp_path, "--count", "5000", "--rate", "200",
                                "--batch-size", "10", "--concurrency", str(CONCURRENCY), "--title", "Last sent",
                                "--genre", "RPG") as (cli, err):
        wait_for(lambda: _waiting(cli.pid) >= CONCURRENCY, timeout=60,
                 what="every request slot waiting for the frozen API's answer")
        ctrl_c_until_summary(cli, err)
        out, _ = cli.communicate(timeout=60)
    said = _said(err)
    summary = json.loads(out)
    caught = summary["notSentWhere"]
    assert summary["interrupted"] is True and summary["notSentCaught"] > 0, summary  # batches it cancelled
    # the batches waiting behind the frozen requests went nowhere: the run sent ads 1 to `sent`, no further
    assert summary["lastSent"] == f"ad {summary['sent']}", (summary["lastSent"], summary["sent"], caught, said)
    assert f"the input up to ad {summary['sent']} (none after it)" in said, said
