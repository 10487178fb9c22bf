"""One run of ``gamead submit``: one ad (its 202 answer, or its final record with ``--wait``) or many (sent in
batches, maybe followed, then the summary); what is printed and the exit code."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from gamead_cli import exitcodes
from gamead_cli.client import ApiClient
from gamead_cli.options import OutputFormat
from gamead_cli.output import emit, error_line, note_line, red_line
from gamead_cli.program import follow_up
from gamead_cli.record_views import ad_view
from gamead_cli.submit.batches import BATCH_SIZE
from gamead_cli.stdout_guard import done_before_output
from gamead_cli.stops import interrupted_code, write_out
from gamead_cli.submit.sending import send_many
from gamead_cli.submit.settling import LOOKUP_SECONDS, settle
from gamead_cli.submit.views import (accepted_line, accepted_view, ended_line, ended_many_line, interrupted_line,
                                     rejections_lines, sent_note, summary_view)
from gamead_cli.submit.waiting import FAILED, wait_for_ad, wait_many
from gamead_core.errors import GameadError, NoAnswer


def submit_one(
    client: ApiClient,
    ad: Mapping[str, Any],
    *,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    output: OutputFormat,
    quiet: bool = False,
) -> int:
    """Submit one ad, print the 202 answer (or, with ``wait``, the final record); return the exit code.

    ``quiet`` prints the ad's id alone (for ``ID=$(gamead submit … -q)``). Raises :class:`NoAnswer` saying what
    to do when the request went out and no answer came (the ad may be queued: with a key, the client sent it
    again first, :mod:`gamead_cli.retry`).
    """
    with write_out("POST /ads", follow_up("ads", "list", again=client.again)):  # Ctrl-C meanwhile: may be queued
        try:
            accepted = client.submit(ad, idempotency_key)
        except NoAnswer as exc:
            settle = (f"send the same command again with --idempotency-key {shlex.quote(idempotency_key or '')} (a "
                      "repeat queues nothing and prints its id)" if idempotency_key else
                      f"look for it with `{follow_up('ads', 'list', again=client.again)}` before sending it again (or "
                      "send it with --idempotency-key KEY, which a repeat cannot queue twice)")
            raise NoAnswer(f"{exc.message}; the ad may be queued: {settle}") from exc
        done_before_output(f"the ad WAS {'already ' if accepted.get('duplicate') else ''}queued: id {accepted['id']}; "
                           "do not resend it")
    if not wait:
        if quiet:
            print(accepted["id"], flush=True)
        else:
            emit(accepted, output, partial(accepted_view, again=client.again))
        return exitcodes.OK
    if output != OutputFormat.json and not quiet:
        note_line(accepted_line(accepted).plain)
    record = wait_for_ad(client, str(accepted["id"]), timeout)
    if quiet:
        print(accepted["id"], flush=True)
    else:
        emit(record, output, partial(ad_view, again=client.again))
    return waited_code(record, said=output != OutputFormat.json or quiet, again=client.again)


def waited_code(record: Mapping[str, Any], *, said: bool, again: str) -> int:
    """The exit code of a wait for one ad that ended as ``record`` (``submit --wait``, ``ads get --wait``): OK, or
    :data:`~gamead_cli.exitcodes.AD_FAILED` for a failed or dead ad, whose red line (``ended_line``, naming the
    command that shows why) goes to stderr when ``said`` (not when ``-o json``'s record on stdout says it)."""
    if record.get("status") not in FAILED:
        return exitcodes.OK
    if said:
        error_line(ended_line(record, again=again))
    return exitcodes.AD_FAILED


def submit_bulk(
    client: ApiClient,
    ads: Iterable[Mapping[str, Any] | GameadError],
    *,
    count: int | None,
    rate: float,
    concurrency: int,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    output: OutputFormat,
    batch_size: int = BATCH_SIZE,
    live: bool = False,
    lookup_for: float = LOOKUP_SECONDS,
) -> int:
    """Send ``ads`` (``count`` of them, if known) in batches, maybe await the analyses, print the summary;
    return the exit code. ``live``: ``ads`` come from a stream (stdin), sent as they arrive
    (:func:`~gamead_cli.submit.sending.send_many`). ``lookup_for``: the seconds the lookup of the "may be queued"
    ads takes at most (``client.lookup_for``; :func:`~gamead_cli.submit.settling.settle`)."""
    summary, ids = send_many(
        client,
        ads,
        total=count,
        rate=rate,
        concurrency=concurrency,
        idempotency_key=idempotency_key,
        batch_size=batch_size,
        keep_items=output == OutputFormat.json,
        follow=wait,
        live=live,
    )
    # which "may be queued" ads exist (F9)
    settle(summary, client, look=not summary.get("interrupted"), seconds=lookup_for)
    ids = ids + summary["queuedFoundIds"] if wait else ids
    if wait and ids and not summary.get("interrupted"):
        summary.update(wait_many(client, ids, timeout=timeout, concurrency=concurrency))
    elif wait:
        summary.update(
            completed=0, failed=0, dead=0, pending=len(ids), latencyP50Seconds=None, latencyP95Seconds=None,
            failedIds=[],
        )
    done_before_output(sent_note(summary))
    emit(summary, output, partial(summary_view, again=client.again))
    if output != OutputFormat.json:
        for line in rejections_lines(summary):
            red_line(line)
    if summary.get("interrupted"):
        error_line(interrupted_line(summary, count if count is None or summary["sent"] <= count else None))
        return interrupted_code()
    if summary.get("inputError"):  # the ads read before it were sent and counted above (review30b F6)
        error_line(f"the input could not be read on after {summary.get('lastSent') or 'its start'} "
                   f"({summary['inputError']}): the ads after it were not read")
        return exitcodes.ERROR
    if wait and summary["failed"] + summary["dead"]:
        if output != OutputFormat.json:  # -o json: its failedIds say which
            error_line(ended_many_line(summary, again=client.again))
        return exitcodes.AD_FAILED
    if (summary["rejected"] or summary.get("pending") or summary.get("maybeQueued") or summary.get("notSent")
            or summary.get("notFollowed") or summary.get("notQueued")):  # not all queued, or not known to be analysed
        return exitcodes.ERROR
    return exitcodes.OK
