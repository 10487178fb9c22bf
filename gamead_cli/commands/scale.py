"""Show what the worker autoscaler decided and why; hold a worker count for a while.

[bold]Examples[/bold]

  gamead scale status
  gamead scale status -o json | jq '.decisions[0]'
  gamead scale set 8 --for 30m      (a manual override: wins over the policy until it expires)
  gamead scale clear                (back to the policy at the next decision)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from gamead_cli.bounds import OutOfRange, checked
from gamead_cli.commands.scale_refusals import too_short
from gamead_cli.commands.scale_undo import undo_text
from gamead_cli.formats import (age as age_text, command_text, counted, empty_text, page_now, plain, short_time,
                                short_window, time_column)
from gamead_cli.options import ApiOpt, ConfigOpt, OutputFormat, OutputOpt, api_client
from gamead_cli.output import emit
from gamead_cli.per_worker import per_worker_text
from gamead_cli.program import follow_up
from gamead_cli.stdout_guard import done_before_output
from gamead_cli.stops import write_out
from gamead_core.bound_text import Range, past_int_digits
from gamead_core.errors import ApiClientError
from gamead_core.rate_window import RATE_WINDOW_SECONDS, window_words
from gamead_core.scaling.applies import applied_by
from gamead_core.scaling.bounds import MAX_OVERRIDE_REPLICAS, MAX_OVERRIDE_SECONDS  # the API's own bounds
from gamead_core.scaling.reason import rate_figure
from gamead_core.scaling.stacks import another_stack_text, holder_words

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode="rich")

#: the API's bounds of an override (:mod:`gamead_core.scaling.bounds`), as a refusal says them
REPLICAS_RANGE = Range(0, MAX_OVERRIDE_REPLICAS)
FOR_RANGE = Range(0, MAX_OVERRIDE_SECONDS, low_open=True, seconds=True)
#: what a refusal of the count calls it (attack45 F9: one sentence for both bounds)
REPLICAS_WHAT = "REPLICAS (the worker count)"


def parse_duration(value: str) -> float:
    """``--for``: a duration read by :func:`gamead_core.durations.parse_duration` (``30s``, ``10m``, ``2h30m``,
    ``1d4h``, ``90`` seconds…) → seconds. Pure.

    Raises ``typer.BadParameter`` (a usage error, exit 2) for anything else (naming the forms read), and
    :class:`~gamead_cli.bounds.OutOfRange` outside (0, 7d]: ``--for must be more than 0 and at most 7d, not 8d``.
    """
    from gamead_core.durations import parse_duration as read

    try:
        seconds = read(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--for") from None
    return checked(seconds, FOR_RANGE, value, param_hint="--for")


def _n(value: Any) -> str:
    return "-" if value is None else str(value)


def _seconds(value: float | None) -> str:
    """``12.3 s``; ``-`` for None (nothing pending: no oldest ad), as ``gamead top`` shows it."""
    return "-" if value is None else f"{value:.1f} s"


def _reason_text(d: dict[str, Any]) -> Text:
    """A decision line's REASON cell. A line of folded ticks (``repeats`` > 1) says whose reason it shows: the
    newest tick's, labelled with its time (``lastAt``), then the first tick's (``firstReason`` at ``at``) when it
    read otherwise — the figures of one line may change from its first tick to its last."""
    text = Text()
    folded = d.get("repeats", 1) > 1
    if folded:
        text.append(f"latest {short_time(d.get('lastAt'))}: ", style="dim")
    text.append_text(plain(d.get("reason") or ""))
    if d.get("error") and d["error"] not in (d.get("reason") or ""):
        text.append(f" — {d['error']}", style="red")
    first = d.get("firstReason")
    if folded and first and first != d.get("reason"):
        text.append(f"\nfirst {short_time(d.get('at'))}: {plain(first).plain}", style="dim")
    return text


def _decisions_table(decisions: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column(time_column("TIME"), no_wrap=True)
    table.add_column("TICKS", justify="right", no_wrap=True)  # ticks folded into the line (record_decision)
    table.add_column("FROM", justify="right", no_wrap=True)
    table.add_column("TO", justify="right", no_wrap=True)
    table.add_column("APPLIED", no_wrap=True)
    table.add_column("REASON")
    for d in decisions:
        applied = d.get("applied")
        if "applied" in d and applied is None:
            mark = Text("unknown", style="red")  # no answer to the call, and the count could not be read back
        else:
            mark = Text("yes", style="green") if applied else Text("no", style="red" if d.get("error") else "yellow")
        reason = _reason_text(d)
        times = short_time(d.get("at"))
        if d.get("repeats", 1) > 1:
            times += f"–{short_time(d.get('lastAt'))}"
        table.add_row(times, str(d.get("repeats", 1)), _n(d.get("current")), _n(d.get("desired")), mark, reason)
    if not decisions:
        table.caption = "no decisions recorded yet"
    return table


def _epoch(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp() if value else None
    except ValueError:
        return None


def short_why(doc: dict[str, Any]) -> str:
    """Why the leader's rates (``observed``) cover under a minute: ``the leader restarted`` when it has led for less
    than a minute before they were sampled (its sampler is that young), else ``samples missing: …`` (its sampler is
    older, but could not read the queue or the registry for part of the minute). Pure."""
    since, at = _epoch((doc.get("leader") or {}).get("since")), _epoch((doc.get("observed") or {}).get("sampledAt"))
    if since is not None and at is not None and at - since >= RATE_WINDOW_SECONDS:
        return "samples missing: the leader could not read the queue or the registry for part of it"
    return "the leader restarted"


def when_utc(value: Any) -> str:
    """An ISO time of the scale verbs as the autoscaler's reason line says one (``clock_utc``): ``16:04:55 UTC``, with
    its date when it is not today's on the service's clock, ``2026-12-07 16:04:55 UTC`` (attack46 F8: ``scale set 3
    --for 2d`` said ``until 20:21:58 UTC``, a time of today that had just passed). ``- UTC`` for none."""
    text = str(value or "")
    day = text[:10] if len(text) >= 19 and text[10] in "T " else None
    return f"{day} " * (day is not None and day != page_now().strftime("%Y-%m-%d")) + f"{short_time(value)} UTC"


def leader_text(leader: dict[str, Any] | None) -> Text:
    """The ``leader`` row of ``scale status``: its id and since when, and a warning when its holder is not a registered
    node (``registered`` false: attack31b F2), or another ``gamead up`` stack's (``thisStack`` false: attack44 F4)."""
    if not leader:
        return Text("none (no autoscaler holds the lease)", style="yellow")
    text = plain(f"{leader['id']} (since {when_utc(leader.get('since'))})")
    who = holder_words(str(leader["id"]), leader.get("stack"))
    if who.startswith("gamead up pid") and leader.get("thisStack") is not False:  # what `up-vm-10194` is (newcomer56)
        text.append(f"  ({who}: its autoscaler)", style="dim")
    if leader.get("registered") is False:
        ends = short_time(leader.get("expiresAt"))
        text.append(f"  (not a registered node: it may be gone; its lease ends by {ends} UTC, or sooner once another "
                    "node sees it unrenewed for its TTL; gamead doctor --repair releases it)", style="yellow")
    if leader.get("thisStack") is False:
        text.append(f"  ({another_stack_text(leader)})", style="yellow")
    return text


def status_view(doc: dict[str, Any]) -> RenderableType:
    """``GET /v1/scale`` for people: the facts, then the last decisions, newest first."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("backend", plain(doc.get("backend")))
    leader = doc.get("leader")
    here = leader_text(leader)
    if leader and (doc.get("appliedBy") or {}).get("leaderIsThisNode") is False:  # a follower answered (regress45)
        here.append("  (not the API node that answered)", style="dim")
    facts.add_row("leader", here)
    workers = Text(f"current {_n(doc.get('current'))} → desired {_n(doc.get('desired'))}")  # which is which (r44 F5)
    workers.append(f"   (min {doc.get('minReplicas')}, max {doc.get('maxReplicas')})", style="dim")
    if doc.get("draining"):
        workers.append(f", {doc['draining']} draining", style="yellow")
    if "applied" in doc and doc["applied"] is None and doc.get("desired") is not None:
        workers.append("   (last scale call: outcome unknown)", style="red")
    facts.add_row("workers", workers)
    if doc.get("reason"):
        facts.add_row("reason", plain(doc["reason"]))
    if doc.get("error"):
        facts.add_row("error", Text(str(doc["error"]), style="red"))
    ov = doc.get("override")
    if ov:
        left = age_text(max(0.0, float(ov.get("remainingSeconds") or 0)))  # 29m53s, as every duration is printed
        workers = counted(ov['replicas'], 'worker')
        facts.add_row("override", Text(f"{workers} until {when_utc(ov.get('until'))} ({left} left)",
                                       style="bold magenta"))
    else:
        facts.add_row("override", Text("none", style="dim"))
    obs = doc.get("observed") or {}
    if obs:  # "queued": submittedPerSec grows with DLQ replays too (attack43b F1)
        facts.add_row("observed", plain(
            f"pending {counted(obs.get('pending', 0))}, ack pending {counted(obs.get('ackPending', 0))}, oldest "
            f"{_seconds(obs.get('oldestAgeSeconds'))}, queued {rate_figure(obs.get('submittedPerSec') or 0)} ads/s "
            f"({window_words(obs.get('windowSeconds'))})"))  # every rate says its window (attack43b F5)
        facts.add_row("per worker", plain(per_worker_text(obs.get("perWorkerPerSec"), obs.get("perWorkerBasis"),
                                                            obs.get("windowSeconds"))))
        short = short_window(obs.get("windowSeconds"))  # the rates above: under a minute of the leader's samples
        if short:
            facts.add_row("rates over", Text(f"{short} (under a minute of samples: {short_why(doc)})", style="yellow"))
    updated = Text(f"{short_time(doc.get('updatedAt'))} UTC")
    if doc.get("stale"):  # a live lease: a leader whose tick hangs, not none (attack30b F3)
        age = doc.get("ageSeconds")
        updated.append("  (stale: " + (f"its leader has not recorded for {age:.0f}s: its tick may hang)"
                                       if doc.get("leader") and age is not None else "no leader is recording)"),
                       style="yellow")
    facts.add_row("updated", updated)
    decisions = doc.get("decisions") or []
    listed: RenderableType = _decisions_table(decisions) if decisions else empty_text(
        "no decisions recorded yet", None, "its leader decides every autoscaler.interval")
    return Group(facts, Text(""), Text("last decisions (times in UTC)", style="bold"), listed)


def who_applies(body: dict[str, Any], again: str = "") -> str:
    """Who will act on an override: ``appliedBy.text`` of a ``POST``/``DELETE /v1/scale/override`` answer, or of its
    ``status`` read by :func:`gamead_core.scaling.applies.applied_by` (an API from before ``appliedBy``). Pure. A
    leader whose last call failed is not promised to apply it: the failure is named, and the command to follow it
    (``again``: the flags of the command it names, :func:`gamead_cli.options.reach_again`)."""
    applied = body.get("appliedBy")
    if not isinstance(applied, dict) or not isinstance(applied.get("text"), str):
        applied = applied_by(body.get("status") or {})
    if applied.get("by") == "leader_failing":
        return f"{applied['text']} ({follow_up('scale', 'status', again=again)})"
    return str(applied["text"])


def override_text(ov: dict[str, Any]) -> str:
    """An override of the API (``replaced``, ``removed``) for people: ``5 workers until 00:28:09 UTC, set by
    alice at 00:18:09 UTC``. Pure."""
    by = f" by {ov['setBy']}" if ov.get("setBy") else ""
    return (f"{counted(ov.get('replicas'), 'worker')} until {when_utc(ov.get('until'))}, set{by} at "
            f"{when_utc(ov.get('setAt'))}")


def replaced_text(body: dict[str, Any]) -> str:
    """What a ``scale set`` replaced (a concurrent operator's write loses with 409, naming what stands: drill attack25
    F6): `` (replaced 5 workers until …, set by alice at …)``, or `` (no override was set before)`` (newcomer49: it
    said ``(no override stood)``). Pure."""
    return f" (replaced {override_text(body['replaced'])})" if body.get("replaced") else " (no override was set before)"


def _expect_dict(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiClientError(f"the API answered {what} with unexpected data")
    return body


@app.command("status")
def status(output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None) -> None:
    """Backend, leader, current and desired workers, the override, and the last decisions with reasons.

    Example: gamead scale status -o json | jq '.decisions[0]'
    """
    with api_client(config, api) as client:
        doc = _expect_dict(client.request("GET", "/v1/scale"), "GET /v1/scale")
    emit(doc, output, status_view)


class _CountCommand(TyperCommand):
    """A command whose argument is a count: a negative one (``-1``) would read as an unknown option ("No such
    option: -1"); it is refused saying what a count must be instead (a usage error, exit 2). ``-0`` is 0, as
    everywhere gamead reads a number (attack46 F3: it was refused as "must be 0 to 10,000, not -0")."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        valued = {o for p in self.get_params(ctx) if p.param_type_name == "option" and not getattr(p, "is_flag", True)
                  for o in p.opts}
        read, tokens = [], iter(args)
        for token in tokens:
            if token in valued:
                read += [token, *([] if (value := next(tokens, None)) is None else [value])]  # e.g. --for 10m
                continue  # (none: click says the option needs one, review47 F7; not "cannot read duration ''")
            too_long = token.isdigit() and past_int_digits(len(token))  # 5,000 digits (attack55)
            if too_long or re.fullmatch(r"-0*[1-9]\d*", token):
                raise OutOfRange(REPLICAS_RANGE, token, what=REPLICAS_WHAT, ctx=ctx)
            read.append("0" if re.fullmatch(r"-0+", token) else token)  # -0 is 0 (attack46 F3)
        return super().parse_args(ctx, read)


def _replicas(value: int) -> int:
    """The count past the top bound refused in the same sentence as a negative one (:class:`_CountCommand`)."""
    return checked(value, REPLICAS_RANGE, what=REPLICAS_WHAT)


@app.command("set", cls=_CountCommand)
def set_override(
    replicas: Annotated[int, typer.Argument(metavar="REPLICAS", callback=_replicas,
                                            help=f"Workers to hold (0 to {MAX_OVERRIDE_REPLICAS:,}).")],
    for_: Annotated[str, typer.Option("--for", metavar="DURATION",
                                                    help="How long: 30s, 10m, 2h30m, 1d (at most 7d).")] = "10m",
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Hold REPLICAS workers for a while, whatever the policy says (clamped to min/max replicas).

    Example: gamead scale set 8 --for 30m
    """
    seconds = parse_duration(for_)
    with api_client(config, api) as client, write_out("POST /v1/scale/override",
                                                      follow_up("scale", "status", again=client.again)):
        try:
            answer = client.request("POST", "/v1/scale/override", json={"replicas": replicas, "forSeconds": seconds})
        except ApiClientError as exc:
            if (bad := too_short(exc, for_)) is not None:
                raise bad from None
            raise
        body = _expect_dict(answer, "POST /v1/scale/override")
        stood = body.get("override") or {}
        done_before_output(f"the override WAS set: {counted(stood.get('replicas'), 'worker')} until "
                           f"{stood.get('until')}; do not set it again")

    def view(b: dict[str, Any]) -> RenderableType:
        ov = b.get("override") or {}
        line = Text(f"override: {counted(ov.get('replicas'), 'worker')} until {when_utc(ov.get('until'))}",
                    style="bold")
        line.append(replaced_text(b))
        if b.get("note"):
            line.append(f" — {b['note']}", style="yellow")
        undo = command_text(f"{who_applies(b, client.again)}; {undo_text(b, client.again)}")
        return Group(line, undo)

    emit(body, output, view)


@app.command("clear")
def clear(output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None) -> None:
    """End the manual override: the policy decides again at the next decision.

    Example: gamead scale clear
    """
    with api_client(config, api) as client, write_out("DELETE /v1/scale/override",
                                                      follow_up("scale", "status", again=client.again)):
        body = _expect_dict(client.request("DELETE", "/v1/scale/override"), "DELETE /v1/scale/override")
        done_before_output("the override WAS cleared" if body.get("removed") or body.get("cleared")
                           else "no override was set: nothing was cleared")
    def view(b: dict[str, Any]) -> RenderableType:
        said = (f"override cleared (it was {override_text(b['removed'])})" if b.get("removed")
                else "override cleared" if b.get("cleared") else "no override was set")
        if not b.get("cleared"):
            return Text(said)
        return Group(Text(said), command_text(f"back to the policy: {who_applies(b, client.again)}"))

    emit(body, output, view)
