"""What ``gamead up`` says on its console: one line at a time (dropped once the terminal is gone), its own
logged warnings, and the fixed lines of a start (credentials, queue, config in force, fault injection, the
commands to try next, the autoscaler's decisions)."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from gamead_cli.options import config_named
from gamead_core.api.auth import allowed_roles, route_class
from gamead_core.config import ROLES, GameadSettings
from gamead_core.count_words import counted
from gamead_core.scaling.lease_rule import Lease
from gamead_core.scaling.stacks import follower_line



class _Console(Console):
    """rich's console, but a reader gone from its pipe (``gamead up 2>&1 | tee up.log``, tee killed with the
    terminal) is an ``OSError`` :func:`say` drops the console for: rich's own ends the process with
    ``SystemExit(1)`` (its stdout put on /dev/null), which stopped the stack at its next line, and in the terminal
    watch's thread ended the thread unseen before it asked the stop (attack57b: the stack ran on)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("the console's reader is gone")


console = _Console(stderr=True, highlight=False)
_console_ok = {"ok": True}


def say(message: str) -> None:
    """One console line; once the terminal is gone (SIGHUP), lines are dropped, never fatal."""
    if not _console_ok["ok"]:
        return
    try:
        console.print(message, highlight=False, soft_wrap=True)
    except (OSError, ValueError):
        _console_ok["ok"] = False


def log_line(record: logging.LogRecord, text: str) -> None:
    """A warning (or worse) logged in this process, as a console line with its ``!`` (red from ERROR); the end of
    what one said (an INFO record marked ``ends_warning``) with a ``✓``."""
    if record.levelno < logging.WARNING:
        say(f"[green]✓[/] {escape(text)}")
    else:
        say(f"[{'red' if record.levelno >= logging.ERROR else 'yellow'}]![/] {escape(text)}")


def credentials_line(made: bool, snapshot: Path, token: bool = False) -> str:
    """What ``gamead up`` says of its embedded nats-server's credentials (never the secret itself); ``token``:
    ``nats.token`` is configured (else ``nats.user``/``nats.password``: never both, the settings refuse it)."""
    if made:
        return f"requiring this stack's own token (nats.token in {snapshot}, which its children read)"
    return f"requiring the configured {'nats.token' if token else 'nats.user/nats.password'}"


def partitions_line(partitions: int) -> str:
    """What ``gamead up`` says of the queue: ``queue: 3 partitions (work streams GAMEAD_ADS, GAMEAD_ADS_1,
    GAMEAD_ADS_2)``, ``queue: 1 partition (work stream GAMEAD_ADS)`` (``queue.partitions``)."""
    from gamead_core.queue.partitions import work_streams

    streams = ", ".join(work_streams(partitions))
    if partitions == 1:
        return f"queue: 1 partition (work stream {streams}; queue.partitions)"
    return f"queue: {partitions} partitions (work streams {streams}; queue.partitions)"


def config_line(path: Path | None, snapshot: Path, kept: int = 0) -> str:
    """What ``gamead up`` says of its configuration, once its API is ready: the file in force (or none) and that
    every child reads the settings of the start (:func:`snapshot_config`), so an edit waits for the next ``gamead up``;
    ``kept``: how many of its settings are not in force, the live limits the fleet shares kept (said on the next
    line: :mod:`.up_drift`; attack32c F1: "every child runs with it" while the consumers kept another ack_wait)."""
    what = escape(config_named(path))  # absolute: for any terminal
    if kept:
        return (f"[green]✓[/] config: {what}; every child runs with it as it is now (GAMEAD_* and flags included: "
                f"{escape(str(snapshot))}), but for {counted(kept, 'limit')} the fleet shares, whose "
                "live value stays (below); an edit takes effect at the next gamead up")
    return (f"[green]✓[/] config: {what}; every child runs with it as it is now (the settings in force, "
            f"GAMEAD_* and flags included: {escape(str(snapshot))}); an edit takes effect at the next gamead up")


def next_commands(api_url: str, program: str = "gamead", *,
                  worker: str | None = None, auth: bool = False) -> list[str]:
    """What to try next, each runnable verbatim in another terminal (``program`` is how it runs gamead, see
    :func:`gamead_program`). Every ``gamead`` line says ``--api api_url``, the default port's too: without it,
    run where another stack's ``./.gamead`` lies (or with ``GAMEAD_API_URL`` or a config's ``client.api_url``
    set), it would reach that other API (README, "Which API a command talks to"); only ``--api`` wins from
    anywhere.

    ``worker``: the command that starts a worker on this stack (:func:`worker_command`), given when ``gamead up``
    runs none (``--workers 0``): it comes first, and the submit hint has no ``--wait`` (with no worker an ad is
    never analysed, and ``--wait`` would only wait out its timeout).

    ``auth``: tokens are required (:func:`gamead_core.api.auth.auth_required`). The first line is then a shell
    comment saying to ``export GAMEAD_TOKEN=…`` (a token of ``auth.tokens``; never the token itself), the gamead
    lines read it from the environment, and the curl line sends it as ``Authorization: Bearer $GAMEAD_TOKEN``:
    given the export, every line runs verbatim."""
    api = f" --api {api_url}"
    wait = "" if worker else " --wait"
    header = ' -H "Authorization: Bearer $GAMEAD_TOKEN"' if auth else ""
    hints = [  # (line, what the note calls it, the request it needs: who may run it is the grant table's)
        (f"{program} submit --title 'Dragon Kingdom' --genre Strategy --cta 'Download Now'{wait}{api}", "the submits",
         "POST", "/ads"),
        (f"{program} submit --count 100 --rate 50{api}", "the submits", "POST", "/ads/batch"),
        (f"{program} ads list{api}", "ads list", "GET", "/ads"),
        (f"{program} top{api}", "top", "GET", "/v1/stats"),
        (f"{program} scale status{api}", "scale status", "GET", "/v1/scale"),
        (f"curl -s{header} '{api_url}/ads?limit=5'", "curl", "GET", "/ads"),
    ]
    return [*([_token_note(hints)] if auth else []), *([worker] if worker else []), *(line for line, *_ in hints)]


def _token_note(hints: list[tuple[str, str, str, str]]) -> str:
    """The first line under auth: export a token, and which of ``hints`` each role's token runs (from
    :func:`~gamead_core.api.auth.allowed_roles`, so it names every role and stays true to the grants)."""
    said = []
    for role in sorted(ROLES, key=lambda r: r != "operator"):  # the operator first, then submitter, viewer
        mine = [label for _, label, method, path in hints if role in allowed_roles(method, route_class(path))]
        if len(mine) == len(hints):
            said.append(f"{'an' if role[0] in 'aeiou' else 'a'} {role}'s runs every line below")
        elif mine:
            names = list(dict.fromkeys(mine))
            said.append(f"a {role}'s {', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else
                        f"a {role}'s {names[0]}")
        else:
            said.append(f"a {role}'s none of them")
    return f"# auth is on: first export GAMEAD_TOKEN=<a token of auth.tokens> ({'; '.join(said)})"


def worker_command(program: str, nats_url: str | None, config: Path | None) -> str:
    """``gamead worker`` joining this stack from another terminal: ``--nats-url`` of the embedded nats-server
    (None: NATS comes from the config, as for ``gamead up``) and ``--config`` of ``config`` (``gamead up`` gives
    the copy of the configuration it started with, which its own children read: the joining worker runs as they do)."""
    parts = [program, "worker"]
    if config is not None:
        parts += ["--config", shlex.quote(str(config.resolve()))]
    if nats_url is not None:
        parts += ["--nats-url", nats_url]
    return " ".join(parts)


def fault_banner(settings: GameadSettings) -> str | None:
    """One line saying fault injection is on, and how, or None when it is off."""
    faults = settings.worker.faults
    if faults.rate <= 0:
        return None
    which = f"ads whose title matches /{escape(faults.match)}/" if faults.match else "every ad"
    # the rate is per attempt (gamead_core.worker.faults.pick_fault), not per ad: at 50 % a retried ad mostly
    # completes (attack29a F1: "50 % of ads fail on every attempt" read as half of them dead-lettered)
    drawn = f"attempts 1-{faults.attempts} only, each" if faults.attempts else "each"
    return (f"[bold yellow]![/] fault injection is ON: {faults.rate:.0%} of the attempts at {which} fail on purpose "
            f"({drawn} attempt drawn anew), mode [bold]{faults.mode}[/] (worker.faults: rate, match, attempts, "
            "mode; GAMEAD_WORKER__FAULTS__RATE=0 turns it off)")


def show_decision(entry: dict[str, object]) -> None:
    if entry.get("error"):
        say(f"[red]![/] autoscaler: {escape(str(entry['reason']))}: {escape(str(entry['error']))}")
    elif entry.get("desired") != entry.get("current"):
        say(f"[cyan]↕[/] autoscaler: {escape(str(entry['reason']))}")


class OtherLeader:
    """The autoscaler's ``on_follow`` hook of a ``gamead up`` whose stack is ``here``: says once (and again for a new
    holder) that another stack's autoscaler leads this NATS, and whose workers it moves (attack44 F4: a second stack
    on one ``nats.url`` was told nothing, and its workers never scaled)."""

    def __init__(self, here: str) -> None:
        self.here = here
        self._said: tuple[str, str | None] | None = None

    def __call__(self, lease: Lease | None) -> None:
        # none, released, this stack's own, or advice only (an acting gamead up takes it at once)
        if lease is None or not lease.holder or lease.stack == self.here or not lease.acts:
            self._said = None
            return
        if (lease.holder, lease.stack) != self._said:
            self._said = (lease.holder, lease.stack)
            say(f"[yellow]![/] {escape(follower_line(lease.holder, lease.stack))}")
