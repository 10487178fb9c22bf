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
from tests.support import Proc, thread_waits, wait_for

CONCURRENCY = 2


def _said(path: Path) -> str:
    return " ".join(path.read_text().split())


def _held_up(pid: int) -> bool:
    """True once the run of ``gamead submit`` (``pid``) is held up behind its frozen requests: ``CONCURRENCY``
    requests wait for their answers (every request thread) and then its main thread sleeps in a wait (``futex``:
    the next batch's turn under ``--rate``, or a free request slot) with the next batch in hand, not in the middle
    of handing one out. Its requests never end (the API is frozen), so from then on a batch waits behind them
    whenever the first Ctrl-C comes: the one in hand (sent by the Ctrl-C, queued behind them) or one handed out
    since. Two requests waiting were not enough (a full run's failure, ``notSentCaught`` 0): the main thread can
    hand a batch to the second request's thread and have the Ctrl-C land before it takes the next one in hand, no
    batch then left to wait. The main thread is read last: the request threads wait on sockets, so a ``futex`` then
    is no wait for the GIL."""
    main, others = thread_waits(pid)
    return sum("poll" in wait for wait in others) >= CONCURRENCY and "futex" in main


def test_the_red_line_names_the_last_ad_sent_not_one_a_second_ctrl_c_cancelled(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    with submit_to_a_frozen_api(fresh_nats().url, procs, tmp_path, "--count", "5000", "--rate", "200",
                                "--batch-size", "10", "--concurrency", str(CONCURRENCY), "--title", "Last sent",
                                "--genre", "RPG") as (cli, err):
        wait_for(lambda: _held_up(cli.pid), timeout=60,
                 what="every request waiting for the frozen API's answer, the next batch in hand")
        ctrl_c_until_summary(cli, err)
        out, _ = cli.communicate(timeout=60)
    said = _said(err)
    summary = json.loads(out)
    caught = summary["notSentWhere"]
    assert summary["interrupted"] is True and summary["notSentCaught"] > 0, summary  # batches it cancelled
    # the batches waiting behind the frozen requests went nowhere: the run sent ads 1 to `sent`, no further
    assert summary["lastSent"] == f"ad {summary['sent']}", (summary["lastSent"], summary["sent"], caught, said)
    assert f"the input up to ad {summary['sent']} (none after it)" in said, said
