"""The dashboard's command line (``:``) and command palette (``ctrl+p``): what each command means, how a line
is parsed, and what completes it. Pure: no Textual, no I/O, so every example of the help is a test.

A line is ``name [args]``: ``dlq``, ``workers``, ``audit``, ``doctor``, ``level 2``, ``scale 4 for 10m``,
``replay class=TaskTimeout``, ``purge class=TaskTimeout``, ``logs local-1``, ``logs ad ID``, ``help``, ``pause``, ``quit``. Bad input raises
:class:`CommandError` (its message is shown on one line); nothing here reaches NATS: ``scale`` and ``replay``
go to the API, which validates again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gamead_core.bound_text import Range
from gamead_core.ids import AD_ID_RULE, is_ad_id, normal_id
from gamead_core.scaling.bounds import MAX_OVERRIDE_REPLICAS, MAX_OVERRIDE_SECONDS

#: the ``scale`` hold the command line accepts, in whole seconds: 1s up to the API's longest override (7d), as
#: ``gamead scale set --for`` (newcomer56: 1d here, while the CLI took 7d)
HOLD_RANGE = Range(1, MAX_OVERRIDE_SECONDS, seconds=True)
#: the worker count it holds: the API's bounds, named and set as ``gamead scale set REPLICAS``'s (newcomer56: 1000
#: here, 10,000 there)
REPLICAS_RANGE = Range(0, MAX_OVERRIDE_REPLICAS)
#: longest command line accepted (an input box, not a document)
MAX_LINE = 200


class CommandError(ValueError):
    """A command line that cannot be run; the message says what is wrong, on one line."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    meaning: str
    acts: bool = False  #: changes the service: absent from a read-only dashboard


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("dlq", "dlq", "go to the dead letters"),
    CommandSpec("workers", "workers", "go to the nodes"),
    CommandSpec("level", "level N", "a level's oldest ads (N: 1-5)"),
    CommandSpec("audit", "audit", "operator actions, newest first"),
    CommandSpec("logs", "logs WORKER / ad ID", "follow a log, or an ad's story"),
    CommandSpec("doctor", "doctor", "check once; verdict in the header"),
    CommandSpec("scale", "scale N for 10m", "hold N workers (s, m, h or d)", acts=True),
    CommandSpec("replay", "replay class=TaskTimeout", "replay a whole error class", acts=True),
    CommandSpec("purge", "purge class=TaskTimeout", "purge a whole error class", acts=True),
    CommandSpec("pause", "pause", "pause / resume refreshing"),
    CommandSpec("help", "help", "every key and command"),
    CommandSpec("quit", "quit", "leave the dashboard"),
)
BY_NAME = {c.name: c for c in COMMANDS}
#: what ``class=`` may be: an exception class name as workers report it
_CLASS = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")
#: what ``logs`` takes: a node id or a log file's name (``local-1``, ``worker-1``, ``api``), never a path
_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Command:
    """A parsed line: ``name`` and its arguments (``level``; ``replicas``/``seconds``; ``filter``)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def acts(self) -> bool:
        return BY_NAME[self.name].acts


def duration(text: str) -> int:
    """``90`` / ``90s`` → 90, ``10m`` → 600, ``2h30m`` → 9000: read by
    :func:`gamead_core.durations.parse_duration`, as ``gamead scale set --for`` reads it, to whole seconds in
    :data:`HOLD_RANGE`, else refused in the one sentence of a number out of range, as the CLI's (polish47)."""
    from gamead_core.durations import parse_duration

    try:
        seconds = round(parse_duration(text))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not HOLD_RANGE.holds(seconds):
        raise CommandError(HOLD_RANGE.refusal("a hold", text))
    return seconds


def parse(line: str) -> Command:
    """One command line (with or without its leading ``:``) → :class:`Command`; raises :class:`CommandError`."""
    if len(line) > MAX_LINE:
        raise CommandError(f"a command line is at most {MAX_LINE} characters")
    words = line.strip().lstrip(":").split()
    if not words:
        raise CommandError("no command: try dlq, workers, level 2, audit, doctor, scale 4 for 10m")
    name, rest = words[0].lower(), words[1:]
    spec = BY_NAME.get(name) or _unique_prefix(name)
    if spec is None:
        raise CommandError(f"no command {name[:30]!r}: try " + ", ".join(c.name for c in COMMANDS))
    name = spec.name
    if name == "level":
        if len(rest) != 1 or not (rest[0].isascii() and rest[0].isdigit()) or not 1 <= int(rest[0]) <= 5:
            raise CommandError("say level N, N from 1 to 5")
        return Command(name, {"level": int(rest[0])})
    if name == "scale":
        if len(rest) != 3 or rest[1].lower() != "for" or not (rest[0].isascii() and rest[0].isdigit()):
            raise CommandError("say scale N for 10m")
        replicas = int(rest[0])
        if not REPLICAS_RANGE.holds(replicas):
            raise CommandError(REPLICAS_RANGE.refusal("the worker count", rest[0]))
        return Command(name, {"replicas": replicas, "seconds": duration(rest[2])})
    if name == "logs":
        if len(rest) == 2 and rest[0].lower() == "ad":
            ad_id = normal_id(rest[1])  # a ULID in capitals is the same id
            if not is_ad_id(ad_id):
                raise CommandError(f"not an ad id: {rest[1][:30]!r} ({AD_ID_RULE})")
            return Command(name, {"ad_id": ad_id})
        if len(rest) != 1 or not _NODE.match(rest[0]):
            raise CommandError("say logs WORKER (a node id, e.g. local-1) or logs ad AD_ID")
        return Command(name, {"worker": rest[0]})
    if name in ("replay", "purge"):
        if len(rest) != 1 or not rest[0].lower().startswith("class="):
            raise CommandError(f"say {name} class=ErrorClass (the marked entries: space, then {name[0]})")
        cls = rest[0].split("=", 1)[1]
        if not _CLASS.match(cls):
            raise CommandError(f"not an error class: {cls[:30]!r}")
        return Command(name, {"filter": {"errorClass": cls}})
    if rest:
        raise CommandError(f"{name} takes no arguments")
    return Command(name)


#: what a paste that no input takes opens, by its first character: as typing that character would
PASTE_OPENS = {":": "command", "/": "filter"}


def pasted(text: str) -> tuple[str, str] | None:
    """What a terminal's paste of ``text`` (one bracketed paste) opens when no input has the focus: ``("command",
    rest)`` for a first line that starts with ``:``, ``("filter", rest)`` for ``/``; ``rest`` is that line after its
    first character, left typed, not run: a newline in a paste is not an enter, the operator confirms (Textual's own
    inputs take a paste's first line the same way). None: any other paste, ignored as before (regress41b F7). Pure."""
    line = text.splitlines()[0] if text else ""
    opens = PASTE_OPENS.get(line[:1])
    return (opens, line[1:]) if opens else None


def _unique_prefix(word: str) -> CommandSpec | None:
    found = [c for c in COMMANDS if c.name.startswith(word)] if word else []
    return found[0] if len(found) == 1 else None


def suggestions(*, readonly: bool = False, error_classes: Iterable[str] = (),
                workers: Iterable[str] = ()) -> list[str]:
    """Every line the completion offers, most useful first: the commands, ``level 1``…``level 5``, ``logs W``
    for the workers in view, a scale example, and ``replay class=X`` / ``purge class=X`` for the error classes in view (none when read-only)."""
    out: list[str] = []
    for spec in COMMANDS:
        if readonly and spec.acts:
            continue
        if spec.name == "level":
            out += [f"level {n}" for n in range(1, 6)]
        elif spec.name == "scale":
            out.append("scale 4 for 10m")
        elif spec.name == "logs":
            out += [f"logs {w}" for w in workers if _NODE.match(w)] + ["logs ad "]
        elif spec.name in ("replay", "purge"):
            out += [f"{spec.name} class={c}" for c in error_classes if _CLASS.match(c)]
        else:
            out.append(spec.name)
    return out


def complete(text: str, *, readonly: bool = False, error_classes: Iterable[str] = (),
             workers: Iterable[str] = ()) -> str | None:
    """The first suggestion that starts with ``text`` (case-insensitive), or None."""
    low = text.lstrip(":").lower()
    if not low:
        return None
    return next((s for s in suggestions(readonly=readonly, error_classes=error_classes, workers=workers)
                 if s.startswith(low)), None)
