"""What ``gamead up``'s console says of a setting it started with that is not in force (attack32c F1): a limit the
fleet shares (:mod:`gamead_core.queue.limit_rule`: the work streams', the level consumers' ``ack_wait``, the
DLQ's, the audit stream's, the record, registry and jobs buckets') whose live value a start kept. Before, a
restart with ``GAMEAD_QUEUE__ACK_WAIT=10`` after a stack at 30 s said only "every child runs with it as it is now"
while the consumers kept 30 s; the workers' logs, ``/readyz`` and ``gamead doctor`` alone said otherwise.

The API's ``/readyz`` lists the differences (``differs``, one line per setting, each starting with the setting:
:func:`gamead_core.queue.limit_rule.summarize`). :class:`DriftNote` turns a reading of it into one console line
when it appears or changes, naming each setting, its live and asked values and the exact command that applies
them (:func:`restart_command`: the same ``gamead up`` with ``GAMEAD_QUEUE__LOWER_LIMITS=true``), and one when
every setting is in force again. Pure but for :func:`restart_command`'s defaults (``sys.argv``, the cwd).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence

from gamead_core.config import GameadSettings
from gamead_core.queue.limit_rule import GUARDED, SETTINGS
from gamead_core.scaling.nats_watch import Note
from gamead_core.scaling.ready_watch import Reading, differs_of

#: every setting the limit rule guards (``queue.ack_wait``, ``dlq.max_msgs``, …)
GUARDED_SETTINGS = frozenset([*GUARDED.values(), *(s for fields in SETTINGS.values() for s in fields.values())])


def setting_of(line: str) -> str | None:
    """The setting a ``differs`` line names first (``queue.ack_wait``), None if it is none the rule guards. Pure."""
    name = line.split(":", 1)[0].strip()
    return name if name in GUARDED_SETTINGS else None


def env_name(setting: str) -> str:
    """``queue.ack_wait`` → ``GAMEAD_QUEUE__ACK_WAIT`` (how pydantic-settings reads it). Pure."""
    return "GAMEAD_" + setting.upper().replace(".", "__")


def own_value(settings: GameadSettings, setting: str) -> str | None:
    """``setting``'s value in ``settings`` as a ``GAMEAD_*`` variable gives it (``10`` for 10.0 s); None if it has
    none. Pure."""
    section, _, name = setting.partition(".")
    value = getattr(getattr(settings, section, None), name, None)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def restart_command(settings: GameadSettings, names: Sequence[str], program: str, *,
                    args: Sequence[str] | None = None, cwd: str | None = None) -> str:
    """The command that starts this ``gamead up`` again with its settings ``names`` applied: in its directory
    (``cwd``, default this process's: its default data dir and ``./config.yaml`` are relative), with
    ``GAMEAD_QUEUE__LOWER_LIMITS=true`` (the operator's word: README, "One node's settings never rewrite the
    fleet's") and each of ``names`` as the ``GAMEAD_*`` variable of its value in ``settings`` (one given inline
    to the first start, ``GAMEAD_QUEUE__ACK_WAIT=10 make up``, is set again), then ``program`` (how another
    terminal runs this gamead) and ``args`` (default ``sys.argv[1:]``: ``up`` and its flags), shell-quoted."""
    words = list(sys.argv[1:] if args is None else args)
    assignments = ["GAMEAD_QUEUE__LOWER_LIMITS=true"]
    for name in dict.fromkeys(names):
        if (value := own_value(settings, name)) is not None:
            assignments.append(f"{env_name(name)}={shlex.quote(value)}")
    return (f"cd {shlex.quote(cwd or os.getcwd())} && {' '.join(assignments)} {program} "
            f"{' '.join(shlex.quote(w) for w in words)}")


def kept_line(differs: Sequence[str], command: str, *, lowering_on: bool, log: str) -> str:
    """The console line (no markup) of the settings not in force: each ``differs`` line (this node's value called
    this stack's), and what applies them: ``command`` (:func:`restart_command`); with ``lowering_on``
    (``queue.lower_limits`` already set) a count or size held back by what its store holds, said in ``log``. Pure."""
    count = len(differs)
    what = "; ".join(line.replace(", this node's ", ", this stack's ") for line in differs)
    head = (f"{count} setting{'s' if count != 1 else ''} gamead up started with {'are' if count != 1 else 'is'} "
            "not in force")
    if lowering_on:
        return (f"{head}, though queue.lower_limits is on: {what}. A count or size is never set below what its "
                f"stream or bucket holds ({log} says which and why): let it drain or expire, then restart gamead up")
    return (f"{head}: the fleet's live value{'s stay' if count != 1 else ' stays'} (a start never "
            f"lowers one): {what}. To apply {'them' if count != 1 else 'it'}, stop this stack (Ctrl-C), then run: "
            f"{command}")


class DriftNote:
    """What to say as the API's ``differs`` change (:meth:`observe`): a ``!`` line when some appear or change,
    a ``✓`` line when none are left after some were said. ``settings``: what ``gamead up`` started with;
    ``program``: how another terminal runs gamead; ``log``: the API's log."""

    def __init__(self, settings: GameadSettings, program: str, log: str) -> None:
        self.settings = settings
        self.program = program
        self.log = log
        self.said: tuple[str, ...] = ()  #: the differences last said (none at first)

    def observe(self, differs: tuple[str, ...] | None) -> Note | None:
        """The note for one reading of ``differs`` (None: unknown, nothing said), or None if nothing changed."""
        if differs is None or differs == self.said:
            return None
        before, self.said = self.said, differs
        if not differs:
            return Note(True, "every setting gamead up started with is in force now (no live limit the fleet "
                              "shares differs from it)") if before else None
        names = [n for line in differs if (n := setting_of(line)) is not None]
        command = restart_command(self.settings, names, self.program)
        return Note(False, kept_line(differs, command, lowering_on=self.settings.queue.lower_limits, log=self.log))

    def observe_body(self, body: object) -> Note | None:
        """:meth:`observe` of a ``/readyz`` body (:func:`~gamead_core.scaling.ready_watch.differs_of`)."""
        return self.observe(differs_of(body))

    def observe_reading(self, reading: Reading) -> Note | None:
        """:meth:`observe` of one reading of the API's readiness watch."""
        return self.observe(reading.differs)


__all__ = ["GUARDED_SETTINGS", "DriftNote", "env_name", "kept_line", "own_value", "restart_command",
           "setting_of"]
