"""attack33b F5: ``gamead submit --count`` over a link that resets connections while a batch is in flight.

Before: a keyed batch (``--idempotency-key``) whose connection was reset before the API had ever answered the run was
not sent again (``retried: 0``: the client waited only for an API that had answered), so one reset ended a 400-ad
run after 20, said "no answer in time" of a reset 0.13 s in, and ``-o json`` said nowhere why it stopped. Now a
request that is safe to resend is resent after a reset within ``client.retry_for``, a reset is called a reset, and
a run that stops says why (``stoppedBecause``).

Real nats-server, a real API process, a real ``gamead submit`` process; between the CLI and the API a TCP proxy
(tests/link_proxy.py) that resets the first connection(s) as the API's answer to them comes back: the request
reached the API and was acted on, the answer never reaches the client."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.link_proxy import LinkProxy
from tests.support import Proc, clean_env, run_gamead, start_api

COUNT = 400


def _submit(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_gamead("submit", "--count", str(COUNT), "--title", "Cut", "--genre", "RPG", "--api", url, *args,
                      env=clean_env(COLUMNS="400", GAMEAD_CLIENT__RETRY_FOR="30"), timeout=120)


def _records(url: str) -> int:
    with httpx.Client(base_url=url, timeout=10) as http:
        return int(http.get("/ads", params={"limit": 1}).json()["total"])


def test_a_keyed_run_whose_connections_are_reset_mid_batch_sends_every_ad_exactly_once(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """The first two connections are reset as their batch's answer comes back (the API queued those ads): the
    keyed batches are sent again, answered duplicate, and every one of the 400 ads is queued once — before: the run
    stopped after the first batch, 380 ads not sent, exit 1. Those duplicates were queued by this very run (their
    ``submittedAt`` after it sent them), so they count as accepted, in ``acceptedIds`` — before (attack58): said
    ``duplicates`` (not newly queued), missing from ``acceptedIds``."""
    api, url = start_api(fresh_nats().url, tmp_path, GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    proxy = LinkProxy(("127.0.0.1", int(url.rsplit(":", 1)[1])), reset_first=2).start()
    try:
        run = _submit(proxy.url, "--rate", "400", "--idempotency-key", "cut-K1", "-o", "json")
    finally:
        proxy.stop()
    assert proxy.resets == 2, (proxy.resets, run.stderr)
    assert run.returncode == 0, (run.returncode, run.stderr, run.stdout[-2000:])
    summary = json.loads(run.stdout)
    assert summary["sent"] == COUNT and summary["accepted"] == COUNT and summary["duplicates"] == 0, {
        k: summary[k] for k in ("sent", "accepted", "duplicates")}
    assert len(set(summary["acceptedIds"])) == COUNT, len(summary["acceptedIds"])
    assert summary["maybeQueued"] == 0 and summary["rejectedByCode"] == {} and summary["notSent"] == 0, summary
    assert summary["retried"] >= 2 and "stoppedBecause" not in summary, summary
    assert _records(url) == COUNT  # each ad queued once: the resent batches were answered duplicate


def test_an_unkeyed_run_whose_first_batch_is_reset_names_the_reset_and_says_why_it_stopped(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Without a key a batch reset in flight may have been queued: not resent, its ads "may be queued", and the run
    stops there (nothing was accepted yet). The text says the connection was reset (not "no answer in time") and
    why the sending stopped; ``-o json`` says both in fields (``maybeQueuedLost``, ``stoppedBecause``)."""
    api, url = start_api(fresh_nats().url, tmp_path, GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    port = int(url.rsplit(":", 1)[1])
    for output in ("json", "table"):
        proxy = LinkProxy(("127.0.0.1", port), reset_first=1).start()
        try:
            run = _submit(proxy.url, "--concurrency", "1", "--batch-size", "20", "-o", output)
        finally:
            proxy.stop()
        assert run.returncode == 1, (output, run.returncode, run.stderr, run.stdout)
        if output == "json":
            summary = json.loads(run.stdout)
            assert summary["maybeQueuedUnknown"] == 20 and summary["maybeQueuedLost"] == {"reset": 20}, summary
            assert summary["sent"] < COUNT and summary["notSent"] == COUNT - summary["sent"], summary
            assert summary["retried"] == 0, summary
            assert summary["stoppedBecause"] == ("a batch got no answer before any ad was accepted (connection "
                                                 "reset before the answer came; not resent: it may have been "
                                                 "queued, and only a batch with --idempotency-key is safe to send "
                                                 "twice)"), summary
        else:
            text = " ".join(run.stdout.split())
            assert "may be queued 20 ads (connection reset before the answer came, still unknown" in text, text
            assert "no answer in time" not in text, text
            assert ("(stopped: a batch got no answer before any ad was accepted (connection reset before the answer "
                    "came; not resent") in text, text


def test_a_reset_batch_after_which_every_ad_was_sent_is_said_as_no_stop(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack52 F5: both batches of a 40-ad run out at once, the first reset before any ad was accepted: sending stops
    there, but nothing was left to send. The summary said ``stoppedBecause: a batch got no answer before any ad was
    accepted`` beside ``notSent: 0`` (read as a run cut short, with every ad sent); a stop that stopped nothing is
    not said. The reset batch is still "may be queued" (exit 1)."""
    api, url = start_api(fresh_nats().url, tmp_path, GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    # the other batch's answer held 1 s: the reset comes first, while no ad was accepted yet
    proxy = LinkProxy(("127.0.0.1", int(url.rsplit(":", 1)[1])), reset_first=1, delay=1.0).start()
    try:
        run = run_gamead("submit", "--count", "40", "--title", "Cut", "--genre", "RPG", "--api", proxy.url,
                         "--concurrency", "2", "--batch-size", "20", "-o", "json",
                         env=clean_env(COLUMNS="400", GAMEAD_CLIENT__RETRY_FOR="30"), timeout=120)
    finally:
        proxy.stop()
    assert run.returncode == 1, (run.returncode, run.stderr, run.stdout)
    summary = json.loads(run.stdout)
    assert summary["sent"] == 40 and summary["notSent"] == 0, summary
    assert summary["accepted"] == 20 and summary["maybeQueuedUnknown"] == 20, summary
    assert "stoppedBecause" not in summary, summary


def test_a_keyed_batch_refused_after_its_answer_was_lost_may_be_queued_not_never_sent(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack58: a keyed batch whose answer was lost (the API SIGKILLed as it answered: the ads were queued), then
    every connection refused until the run's stop. Before: its ads were "not sent" (never queued, safe to resend) by
    the last try's refusal; a drill's 900 "not sent" of 3,000 held 75 queued ads (a rerun with the key answered them
    duplicate). Now the lost try counts: they "may be queued", their keys listed to settle them."""
    api, url = start_api(fresh_nats().url, tmp_path, GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    proxy = LinkProxy(("127.0.0.1", int(url.rsplit(":", 1)[1])), reset_first=1, down_after=True).start()
    try:
        run = run_gamead("submit", "--count", "20", "--title", "Cut", "--genre", "RPG", "--api", proxy.url,
                         "--concurrency", "1", "--batch-size", "20", "--idempotency-key", "cut-K2", "-o", "json",
                         env=clean_env(COLUMNS="400", GAMEAD_CLIENT__RETRY_FOR="3"), timeout=120)
    finally:
        proxy.stop()
    assert proxy.resets == 1 and _records(url) == 20, (proxy.resets, run.stderr)  # the API queued all 20
    summary = json.loads(run.stdout)
    assert summary["notSent"] == 0 and summary["maybeQueued"] == 20, {
        k: summary.get(k) for k in ("notSent", "maybeQueued", "maybeQueuedLost", "stoppedBecause", "error")}
    assert len(summary["maybeQueuedKeys"]) == 20, summary
