"""attack30c F4: `tail -f ads.ndjson | gamead submit --ndjson -` held up to 99 ads unsent for as long as the stream
stayed open, and Ctrl-C dropped the ads read and not sent ("sent 0"). A real pipe into a real CLI process and a
live API: the ads are queued while the pipe stays open, and a Ctrl-C sends the ads it holds."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from gamead_cli.submit.feeding import Feed, StreamLines
from tests.forked_popen import GameadPopen
from tests.support import clean_env, ctrl_c, gamead_argv, killed_if_left, sigint_reaches_it, wait_for


def _line(title: str) -> str:
    return json.dumps({"title": title, "description": "A trickle of ads arriving slowly today!", "genre": "Puzzle",
                       "callToAction": "Play", "duration": 10}) + "\n"


def _titles_queued(api_url: str, tag: str) -> set[str]:
    ads = httpx.get(f"{api_url}/ads", params={"limit": 500}, timeout=10).json()["items"]
    return {ad["ad"]["title"] for ad in ads if tag in ad["ad"]["title"]}


def _streaming(api_url: str, *extra: str) -> subprocess.Popen[str]:
    return GameadPopen(gamead_argv("submit", "--ndjson", "-", "--api", api_url, "-o", "json", *extra),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=clean_env(), preexec_fn=sigint_reaches_it)


def test_ads_piped_in_are_queued_while_the_pipe_stays_open(api_url: str) -> None:
    """Three lines written and the pipe left open: the three ads are queued (the batch of 100 is never full);
    Ctrl-C then ends the run (as it ends `tail -f`) with the three counted."""
    tag = f"Trickle {uuid.uuid4().hex[:8]}"
    cli = _streaming(api_url)
    with killed_if_left(cli):
        assert cli.stdin is not None
        cli.stdin.write("".join(_line(f"{tag} Ad {i}") for i in range(3)))
        cli.stdin.flush()
        wait_for(lambda: len(_titles_queued(api_url, tag)) == 3, timeout=30,
                 what="the 3 ads queued while stdin stays open")
        assert cli.poll() is None  # still reading the stream
        summary, _ = ctrl_c(cli)  # the stream still open
    assert summary["sent"] == 3 and summary["accepted"] == 3 and summary["interrupted"] is True, summary


def test_ctrl_c_sends_the_ads_read_from_the_stream_and_not_sent_yet(api_url: str) -> None:
    """--rate 0.01 sends the first ad at once and holds the next ones (one every 100 s): Ctrl-C then sends the
    batch in hand (the second ad) rather than drop it, and names the ad read ahead of it (the third: not sent,
    its line given; review30b F1), never silent: before, the two were dropped and "sent 0" said nothing."""
    tag = f"Held {uuid.uuid4().hex[:8]}"
    cli = _streaming(api_url, "--rate", "0.01")
    with killed_if_left(cli):
        assert cli.stdin is not None
        cli.stdin.write("".join(_line(f"{tag} Ad {i}") for i in range(3)))  # one write: read together
        cli.stdin.flush()
        wait_for(lambda: len(_titles_queued(api_url, tag)) == 1, timeout=30, what="the first ad queued")
        summary, _ = ctrl_c(cli)  # stdin still open
    assert summary["interrupted"] is True and summary["sent"] == 2 and summary["accepted"] == 2, summary
    assert summary["rejectedByCode"] == {} and summary["notSent"] == 1, summary  # left39b: rejected not_sent before
    assert summary["notSentWhere"] == ["stdin:3"], summary
    assert _titles_queued(api_url, tag) == {f"{tag} Ad {i}" for i in range(2)}


def test_a_feed_hands_out_a_partial_run_once_the_stream_pauses() -> None:
    """The batch cutter of a stream (no server): a run of 2 of 100 comes out while the stream is still open,
    and what was read and not handed out is returned by rest()."""
    import threading

    gate = threading.Event()

    def stream():  # type: ignore[no-untyped-def]
        yield 0, "a"
        yield 1, "b"
        gate.wait(30)  # the stream stays open
        yield 2, "c"

    feed = Feed(stream(), idle=0.05, max_age=5)
    runs = feed.chunks(lambda: 100)
    assert next(runs) == [(0, "a"), (1, "b")]
    gate.set()
    wait_for(lambda: feed._queue.qsize() or feed.held, timeout=10, what="the third item read")
    assert feed.rest() == [(2, "c")]


def test_stream_lines_cut_a_pipe_as_the_buffered_reader_does(tmp_path: Path) -> None:
    """StreamLines (stdin read without the interpreter's buffered reader) gives the lines, bounded and in pieces,
    that BufferedReader.readline gives for the same bytes: long lines, a last line without its newline."""
    import os
    import random

    from gamead_cli.inputs import bounded_lines

    rng = random.Random(7)
    data = b"".join(rng.choice([b"x" * rng.randrange(0, 300), b"\n", b"{}\n", b"\xff" * 5]) for _ in range(3000))
    path = tmp_path / "lines"
    path.write_bytes(data + b"tail")
    for limit in (1, 7, 64, 1000):
        with path.open("rb") as buffered:
            want = list(bounded_lines(buffered, limit))
        fd = os.open(path, os.O_RDONLY)
        try:
            got = list(bounded_lines(StreamLines(fd, chunk=97), limit))
        finally:
            os.close(fd)
        assert got == want, limit


def test_ctrl_c_to_a_paced_stream_sends_the_batch_in_hand_and_names_what_was_read_ahead(api_url: str) -> None:
    """review30b F1: the reader reads up to 1,000 ads ahead of a paced sender; a Ctrl-C sent them all at once,
    unpaced (~1,000 more ads queued after the operator asked to stop). Now it sends the run in hand and the partial
    one, and names the ads read ahead, ``notSent`` (their lines, ``notSentWhere``: resend them)."""
    tag = f"Paced {uuid.uuid4().hex[:8]}"
    cli = _streaming(api_url, "--rate", "2")  # a batch of 1 every 0.5 s
    with killed_if_left(cli):
        assert cli.stdin is not None
        cli.stdin.write("".join(_line(f"{tag} Ad {i}") for i in range(200)))  # ~30 KB: within the pipe's buffer
        cli.stdin.flush()
        wait_for(lambda: len(_titles_queued(api_url, tag)) >= 1, timeout=30, what="the first ad queued")
        summary, _ = ctrl_c(cli)
    queued = _titles_queued(api_url, tag)
    print(f"queued {len(queued)}, summary sent {summary['sent']}, rejected {summary['rejected']}")
    assert len(queued) <= 10, len(queued)  # before: all 200, at once
    assert summary["rejectedByCode"] == {} and summary["notSent"] >= 150, summary  # left39b: rejected not_sent before
    assert summary["sent"] == summary["accepted"] == len(queued), summary


def test_a_signal_during_a_hand_over_lands_after_it() -> None:
    """review30b F2: a Ctrl-C (or SIGTERM, raised as one) between handing a run to the pool and forgetting it had
    the interrupt path send that run again (each ad queued twice). The hand-over holds the signals back."""
    import os
    import signal
    import threading

    from gamead_cli.stops import signals_held

    class Stopped(Exception):
        pass

    def stop(*_: object) -> None:
        raise Stopped

    handed: list[int] = []
    quit_other = threading.Event()
    other = threading.Thread(target=quit_other.wait, daemon=True)  # a thread the kernel may give the signal to
    other.start()  # (as the submit's reader and senders are: review30b F2b, a masked signal went there)
    before = signal.signal(signal.SIGINT, stop)
    try:
        try:
            with signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                handed.append(1)  # still runs: the signal waits for the block's end,
                handed.append(sum(range(2_000_000)))  # however long the block computes
                handed.append(2)
        except Stopped:
            handed.append(3)  # and then acts: after the block
    finally:
        signal.signal(signal.SIGINT, before)
        quit_other.set()
    assert handed[0] == 1 and handed[2:] == [2, 3], handed


def test_a_ctrl_c_during_a_hand_over_counts_the_run_it_handed_over(api_url: str, monkeypatch) -> None:
    """regress41 F2: a Ctrl-C held through a hand-over was raised as the block ended, before the line that counted
    the run: `submit --count 2000 --rate 100` then Ctrl-C said "sent 100, accepted 110" and "not sent 1900 …
    none of these is queued, safe to resend", 10 of them queued. Here the first hand-over gets a SIGINT: its run
    is sent, accepted and counted sent, the ads after it not sent (without the fix: sent 0, accepted 5)."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from gamead_cli.client import ApiClient
    from gamead_cli.submit import sending

    class Interrupting(ThreadPoolExecutor):
        """The stdlib pool, with a Ctrl-C arriving while the first run is handed to it."""

        handed = 0

        def submit(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            Interrupting.handed += 1
            if Interrupting.handed == 1:
                os.kill(os.getpid(), signal.SIGINT)  # held by the hand-over, raised as it ends
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(sending, "ThreadPoolExecutor", Interrupting)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    tag = f"Handed {uuid.uuid4().hex[:8]}"
    try:
        with ApiClient(api_url) as client:
            summary, _ = sending.send_many(client, [json.loads(_line(f"{tag} Ad {i}")) for i in range(20)],
                                           total=20, rate=0, concurrency=1, idempotency_key=None, batch_size=5)
    finally:
        signal.signal(signal.SIGINT, before)
    assert summary["interrupted"], summary
    assert summary["sent"] == summary["accepted"] == 5 and summary["lastSent"] == "ad 5", summary
    assert summary["notSent"] == 15 and len(_titles_queued(api_url, tag)) == 5, summary


def test_a_second_ctrl_c_as_the_summary_is_written_never_cuts_it(api_url: str, monkeypatch) -> None:
    """README, ``submit``'s "Stopping it": a Ctrl-C once or twice at any moment, the summary and exit 130 always
    come. The first here at the run's first hand-over (noted: the run stops), the second as the summary begins.
    Before (signals56): the second was raised in the unwind of the first (``signals_interrupt`` raised a repeat):
    no summary, ``error: interrupted`` alone, 130 (a real ``submit --count 100000 --rate 300 --wait`` Ctrl-C'd twice
    20 ms apart: 1 run in 8)."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from gamead_cli.submit import runs, sending
    from tests.cli.test_review_c4 import invoke

    class Interrupting(ThreadPoolExecutor):
        """The stdlib pool, with a Ctrl-C arriving while the first run is handed to it."""

        handed = 0

        def submit(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            Interrupting.handed += 1
            if Interrupting.handed == 1:
                os.kill(os.getpid(), signal.SIGINT)  # the first: held by the hand-over, noted as it ends
            return super().submit(*args, **kwargs)

    summary_begins = runs.done_before_output

    def ctrl_c_again(note: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the second: Python runs its handler as this call returns
        summary_begins(note)

    monkeypatch.setattr(sending, "ThreadPoolExecutor", Interrupting)
    monkeypatch.setattr(runs, "done_before_output", ctrl_c_again)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a CLI starts
    try:
        code, out, err = invoke("submit", "--count", "20", "--batch-size", "5", "--concurrency", "1",
                                "--api", api_url, "-o", "json")
    finally:
        signal.signal(signal.SIGINT, before)
    assert code == 130 and out.strip(), f"no summary: {err}"
    summary = json.loads(out)
    assert summary["interrupted"] and summary["notSent"] == 15, summary
    assert err.strip().splitlines()[-1].startswith("error: interrupted (Ctrl-C): 5 of 20 ad(s) sent"), err


def test_a_non_blocking_stdin_is_read_as_a_blocking_one(api_url: str) -> None:
    """review30b F6: a pipe whose reading end a parent left non-blocking (Node, some IDEs) ended `submit --ndjson -`
    at its first pause with "unexpected BlockingIOError" and no summary. Read through it: the ads written before
    and after a pause are all queued, exit 0."""
    import os

    tag = f"Nonblocking {uuid.uuid4().hex[:8]}"
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    cli = GameadPopen(gamead_argv("submit", "--ndjson", "-", "--api", api_url, "-o", "json"), stdin=read_end,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    os.close(read_end)
    with killed_if_left(cli):
        os.write(write_end, "".join(_line(f"{tag} Ad {i}") for i in range(2)).encode())
        wait_for(lambda: len(_titles_queued(api_url, tag)) == 2, timeout=30, what="the first 2 ads queued")
        os.write(write_end, _line(f"{tag} Ad 2").encode())  # after a pause: the read found nothing for a while
        os.close(write_end)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert json.loads(out)["accepted"] == 3 and len(_titles_queued(api_url, tag)) == 3


def test_an_input_that_fails_mid_stream_still_gets_its_summary(api_url: str) -> None:
    """review30b F6: an input whose read fails part-way (EIO of a terminal gone, a socket reset) left send_many
    with the error before its summary: "unexpected OSError", nothing said of the ads already queued. The ads
    read before it are sent and counted, and the summary says where the input stopped."""
    from gamead_cli.client import ApiClient
    from gamead_cli.submit.sending import send_many

    tag = f"Cut {uuid.uuid4().hex[:8]}"

    def ads() -> Iterator[dict[str, object]]:
        for i in range(3):
            yield json.loads(_line(f"{tag} Ad {i}"))
        raise OSError(5, "Input/output error")

    with ApiClient(api_url) as client:
        summary, _ = send_many(client, ads(), total=None, rate=0, concurrency=2, idempotency_key=None, live=True)
    assert summary["accepted"] == 3 and summary["inputError"] == "OSError: [Errno 5] Input/output error", summary
    assert summary["lastSent"] == "ad 3" and len(_titles_queued(api_url, tag)) == 3, summary


def test_a_sigterm_to_a_paced_stream_names_it_in_the_ads_it_did_not_send(api_url: str) -> None:
    """The ads read ahead and not sent say which signal stopped the run (a new user's drill: SIGTERM read
    "read ahead when Ctrl-C came"); exit 143."""
    import signal

    tag = f"Termed {uuid.uuid4().hex[:8]}"
    cli = _streaming(api_url, "--rate", "2")
    with killed_if_left(cli):
        assert cli.stdin is not None
        cli.stdin.write("".join(_line(f"{tag} Ad {i}") for i in range(50)))
        cli.stdin.flush()
        wait_for(lambda: len(_titles_queued(api_url, tag)) >= 1, timeout=30, what="the first ad queued")
        cli.send_signal(signal.SIGTERM)
        cli.wait(timeout=60)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 143, err
    said = {i["message"] for i in json.loads(out)["items"] if i["outcome"] == "notSent"}  # left39b: rejections
    assert said == {"not sent: read ahead when SIGTERM came"}, said
