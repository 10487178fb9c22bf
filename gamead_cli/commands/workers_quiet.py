"""``gamead workers quiet ID`` / ``gamead workers resume ID`` (``--all``: every live worker): tell a worker to take
no new ad while it finishes what it runs and stays alive (Sidekiq's quiet), or to take ads again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from gamead_cli.formats import command_text, counted, empty_text
from gamead_cli.options import ApiOpt, ConfigOpt, OutputFormat, OutputOpt, api_client
from gamead_cli.output import emit
from gamead_cli.program import follow_up
from gamead_cli.stdout_guard import done_before_output
from gamead_cli.stops import write_out
from gamead_core.errors import NotFound
from gamead_core.ids import WORKER_ID_RULE, is_worker_id

#: as :data:`gamead_core.worker.quiet.Verb` (not imported: a client command loads no nats-py)
Verb = Literal["quiet", "resume"]
IdArg = Annotated[list[str] | None, typer.Argument(
    metavar="[ID]...", show_default=False,
    help="The worker's id, as `gamead workers` lists it; several ids: each told in turn, as --all tells each.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every live worker.")]


def answer_line(doc: dict[str, Any], verb: Verb) -> Text:
    """One worker's answer for people: ``w1 is quiet: it takes no new ad (the 2 ads it runs finish first)`` (``was
    already quiet`` when asked twice; ``no ad running`` when it runs none, as ``resume``'s ``(no ad running)``: words58,
    quiet said ``none running`` where resume said ``0 ads running``). Pure."""
    who, n = doc.get("workerId"), doc.get("inFlight") or 0
    running = counted(n, "ad") if n else "no ad"
    if doc.get("draining"):  # stopping: quiet or resumed, it takes no ad (probe49 F7: "resumed: it takes ads")
        then = ": quiet it once gamead workers lists it" if verb == "quiet" else ""  # a clean stop keeps no quiet
        return Text(f"{who} is stopping (draining): it takes no new ad, resumed or not ({running} running); one "
                    f"started again under its id (gamead up restarts a stopped worker) takes ads{then}",
                    style="bold yellow")
    if verb == "quiet":
        now = "is quiet" if doc.get("changed", True) else "was already quiet"
        rest = f"the {running} it runs finish first" if n > 1 else "the ad it runs finishes first" if n else \
            "no ad running"
        return Text(f"{who} {now}: it takes no new ad ({rest})", style="bold")
    now = "resumed" if doc.get("changed", True) else "was not quiet"
    return Text(f"{who} {now}: it takes ads ({running} running)", style="bold")


def undo_words(answers: list[dict[str, Any]], every: bool) -> tuple[tuple[str, ...], str] | None:
    """What undoes the answers' changes: the arguments of the command that does it and a note. ``(("--all",), "")``
    when ``every`` (``--all``) and each one changed; else the ids that changed, ``(("local-2", "local-3"), " (not
    --all: local-1 already was)")`` (``--all`` would undo an earlier operator's act, e.g. resume the worker quiet
    for inspection: probe49; newcomer57: this was ``resume ID … (ID: local-2, local-3; …)``, which did not run as
    printed); None when none changed (nothing to undo; a draining worker changes nothing that lasts: its clean stop
    keeps no quiet). Pure."""
    changed = [str(a.get("workerId")) for a in answers if a.get("changed", True) and not a.get("draining")]
    if not changed:  # a draining worker keeps nothing: its next start takes ads (attack55: "shown as quiet …")
        return None
    if every and len(changed) == len(answers):
        return ("--all",), ""
    kept = [str(a.get("workerId")) for a in answers if not a.get("changed", True) and not a.get("draining")]
    if not kept:
        return tuple(changed), ""
    return tuple(changed), f" ({'not --all: ' if every else ''}{', '.join(kept)} already " \
        f"{'was' if len(kept) == 1 else 'were'})"


def missed_words(worker_id: str, verb: Verb, again: str, *, silent: bool) -> str:
    """The line for a worker listed live that ``verb`` did not reach: ``silent`` (listed, no answer in time: frozen,
    or its NATS link down), else no process answered for it (it died or stopped meanwhile). A worker started again
    under its id (``gamead up`` restarts ``local-k`` within a second of a crash) takes its dead predecessor's
    ``quiet`` (.worker.quiet.restored), so it takes ads after a ``quiet`` that missed it, and after a ``resume`` that
    missed it stays quiet if it was (attack52: ``quiet --all`` during a poison ad's crash loop missed one restarting
    worker in 4 of 5 runs and said "not live any more (it stopped meanwhile)" of a worker back taking ads a second
    later); ``again``: the command that asks it again. Pure."""
    if silent:
        return (f"{worker_id}: no answer in time (frozen, or its NATS link down): it may still "
                f"{'go quiet' if verb == 'quiet' else verb} when it wakes; gamead workers shows its state")
    now = "not quiet: one started again under its id takes ads" if verb == "quiet" else \
        "not resumed: one started again under its id stays quiet if it was"
    return (f"{worker_id}: no process answered for it (it died or stopped meanwhile), {now} (gamead up restarts a "
            f"worker that died); ask it again once gamead workers lists it: {again}")


def asked_text(verb: Verb, answers: list[dict[str, Any]]) -> str:
    """``quiet WAS asked of local-1, local-2``: the workers whose answers to ``verb`` came (said when an interrupt
    or an unwritable stdout cuts the command short). Pure."""
    return f"{verb} WAS asked of {', '.join(str(a.get('workerId')) for a in answers)}"


def not_done(verb: Verb, gone: list[str], silent: set[str], done: Sequence[str] = (), *,
             said: bool = False) -> NotFound:
    """The error of a ``verb`` not done for some of the workers it was for (named, or listed live for ``--all``):
    those no running worker answers for (``gone`` less ``silent``) and those that gave no answer in time
    (``silent``: frozen, they may still carry it out when they wake), each said, after those it was ``done`` for
    (``quiet done for w-2, not for gone-3: …``: attack57b, a partial success exited 0 as a whole one; leftout59:
    ``--all`` with a frozen worker too); ``said``: each was said above (``--all``'s lines), so named only. Exit 4
    (``worker_not_live``) as for one such id. Pure."""
    details = {"notLive": gone, "noAnswer": sorted(silent), **({"done": list(done)} if done else {})}
    if said:
        head = f"{verb} done for {', '.join(done)}, not for" if done else f"{verb} not done for"
        return NotFound(f"{head} {', '.join(gone)} (each said above)", code="worker_not_live", details=details)
    dead = [wid for wid in gone if wid not in silent]
    parts = [f"none of the workers {', '.join(dead)} is live: no running worker answers for these ids"
             if len(dead) > 1 else f"worker {dead[0]} is not live: no running worker answers for this id"] if dead \
        else []
    if silent:
        late = ", ".join(sorted(silent))
        parts.append(f"{late} did not answer in time (frozen, or its NATS link down): not done now, but it may still "
                     f"{'go quiet' if verb == 'quiet' else verb} when it wakes")
    then = "gamead workers shows their state" if silent else "gamead workers lists the live ones"
    said_done = f"{verb} done for {', '.join(done)}, not for {', '.join(gone)}: " if done else ""
    return NotFound(f"{said_done}{'; '.join(parts)} ({then})", code="worker_not_live", details=details)


def _ids(client: Any, worker_ids: list[str], every: bool) -> list[str]:
    if every == bool(worker_ids):
        raise typer.BadParameter("name worker IDs or --all, not both" if every else "name a worker ID (or several), "
                                 "or --all", param_hint="ID")
    for worker_id in worker_ids:
        if not is_worker_id(worker_id):  # never sent: the API refuses it too (404 not_found)
            raise typer.BadParameter(f"{worker_id[:40]!r} is not a worker id ({WORKER_ID_RULE})", param_hint="ID")
    if worker_ids:
        return list(dict.fromkeys(worker_ids))  # each told once
    body = client.request("GET", "/v1/workers", params={"role": "worker"})  # a dict of items (answer_shapes)
    return [n["id"] for n in body.get("items") or [] if n.get("state") != "gone" and isinstance(n.get("id"), str)]


def control(verb: Verb, worker_ids: list[str] | None, every: bool, output: OutputFormat, api: str | None,
            config: Any) -> None:
    """``POST /v1/workers/{id}/{verb}`` for the worker named, or for each of several named or each live one
    (``--all``: one that is gone meanwhile is named in a line of its own; any not done, named or listed: the
    answers, then exit 4 naming the ids not done; leftout59: ``--all`` exited 0 with one frozen)."""
    with api_client(config, api) as client:
        ids = _ids(client, worker_ids or [], every)
        many = every or len(worker_ids or []) > 1  # as typed: `quiet w-1 w-1 -o json` has items as several do
        answers: list[dict[str, Any]] = []
        gone: list[str] = []
        silent: set[str] = set()  #: no answer in time (frozen): it may still carry the request out when it wakes
        for wid in ids:  # an interrupt names the worker asked, and those asked before it (probe49 F8: "ID")
            before = f" ({asked_text(verb, answers)})" if answers else ""
            with write_out(f"POST /v1/workers/{wid}/{verb}{before}", follow_up("workers", again=client.again)):
                try:
                    body = client.request("POST", f"/v1/workers/{wid}/{verb}")
                except NotFound as exc:
                    if not many:
                        raise
                    gone.append(wid)
                    silent |= {wid} if isinstance(exc.details, dict) and exc.details.get("answered") is False else set()
                    continue
            answers.append(body)  # its shape checked (gamead_cli.answer_shapes)
        if answers:
            done_before_output(asked_text(verb, answers))
        elif not every:  # several named, none answered (a frozen one too): as one named (README: exit 4)
            raise not_done(verb, gone, silent)
    other = "resume" if verb == "quiet" else "quiet"
    #: one shape however many ids (leftout59: one id's bare answer, several ids' document: `quiet $IDS` varied)
    doc: dict[str, Any] = {"items": answers, "notLive": gone, "noAnswer": sorted(silent)}

    def view(_: dict[str, Any]) -> RenderableType:
        if every and not answers and not gone:
            return empty_text("no live workers", None, "none sent a heartbeat within registry.ttl")
        parts: list[RenderableType] = [answer_line(a, verb) for a in answers]
        parts += [Text(missed_words(wid, verb, follow_up("workers", verb, wid, again=client.again),
                                    silent=wid in silent), style="yellow") for wid in gone if every]  # named: below
        undo = undo_words(answers, every)
        if undo is not None:
            back = follow_up("workers", other, *undo[0], again=client.again)
            parts.append(command_text(f"{'shown' if verb == 'quiet' else 'no longer shown'} as quiet in gamead "
                                      f"workers within a heartbeat; undo with: {back}{undo[1]}"))
        return Group(*parts)

    emit(doc, output, view)
    if gone:  # some not done, named or listed (--all): the done ones said above, exit 4 naming the others
        raise not_done(verb, gone, silent, [str(a.get("workerId")) for a in answers],
                       said=every and output != OutputFormat.json)  # --all's lines said each (attack57b, leftout59)


def quiet(worker_ids: IdArg = None, every: AllOpt = False, output: OutputOpt = OutputFormat.table,
          api: ApiOpt = None, config: ConfigOpt = None) -> None:
    """Tell a worker to take no new ad: it hands back what it prefetched, keeps no long poll at NATS, finishes and
    settles what it runs, and stays alive, heartbeating (STATE quiet). The autoscaler counts no capacity for it.

    A worker that is not live or gives no answer in time (frozen), named or listed for --all: exit 4
    (worker_not_live), after the others' answers. It stays quiet across NATS and API restarts; a worker
    restarted under its id after a crash stays quiet too, one that stopped cleanly starts taking ads.

    [bold]Examples[/bold]

      gamead workers quiet local-1
      gamead workers quiet local-2 local-3
      gamead workers quiet --all -o json
    """
    control("quiet", worker_ids, every, output, api, config)


def resume(worker_ids: IdArg = None, every: AllOpt = False, output: OutputOpt = OutputFormat.table,
           api: ApiOpt = None, config: ConfigOpt = None) -> None:
    """Tell a quiet worker to take ads again: it subscribes its long polls and looks at the queue at once.

    [bold]Examples[/bold]

      gamead workers resume local-1
      gamead workers resume --all
    """
    control("resume", worker_ids, every, output, api, config)


__all__ = ["answer_line", "control", "quiet", "resume", "undo_words"]
