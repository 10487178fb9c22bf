"""The details screen of one node, DLQ entry or ad record in ``gamead top`` (enter on a row), read like ``gamead dlq
show``/``ads get`` (README: "labels an operator reads and times in UTC with their age"): wire names as words
(``firstFailureAt`` → ``first failure``), times in UTC with their age, durations with their unit, ``yes``/``no``
for a flag, an ad's texts as they read (CJK, emoji) on rows of their own, never JSON's ``\\uXXXX`` (attack32a F5).
Every text still passes :func:`gamead_cli.formats.plain`, which escapes what must be (gamead_core.safe_text).
Pure: no I/O, no Textual."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from gamead_cli.formats import age, ago, counted, page_now, plain, utc_when
from gamead_cli.inputs import strict_dumps

#: wire names whose label is not just their words
LABELS = {"adId": "ad id", "firstFailureAt": "first failure", "lastFailureAt": "last failure",
          "deadAt": "dead at", "submittedAt": "submitted", "startedAt": "started", "completedAt": "completed",
          "heartbeatAt": "last heartbeat", "lastProgressAt": "last progress", "heartbeatAgeSeconds": "heartbeat",
          "uptimeSeconds": "up", "inFlight": "in flight", "processed": "completed ads", "failed": "failed attempts",
          "seq": "DLQ sequence", "sourceSeq": "work sequence", "traceparent": "trace", "callToAction": "call to action",
          "targetAudience": "audience", "visualElements": "visuals", "workerId": "worker", "pid": "pid",
          "clockOffsetSeconds": "clock offset (+: host behind)", "clockErrorSeconds": "clock offset ±"}
#: wire names of a number of seconds without ``Seconds`` in them (the node's settings)
SECONDS = frozenset({"taskTimeout", "ackWait", "heartbeatInterval", "duration", "retryIn"})
#: wire names of a count shown with what it counts (``attempts 1 analysis attempt``, as ``gamead dlq show``; units46:
#: a bare ``attempts 1``)
COUNTED = {"attempts": "analysis attempt"}
#: wire names of an age in seconds, shown as "… ago"
AGES = frozenset({"heartbeatAgeSeconds"})
#: wire names of a measurement that is null until its first sample: a node's host clock against nats-server's, which
#: its first heartbeat carries before any sample of it (gamead_core.clock). Shown as not measured, never as ``-``
MEASURED = frozenset({"clockOffsetSeconds", "clockErrorSeconds"})


def wire_words(key: str) -> str:
    """A wire name in words: ``deadAgain`` → ``dead again``. Pure."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower()


def label(key: str) -> str:
    """``firstFailureAt`` → ``first failure``, ``taskTimeout`` → ``task timeout`` (:data:`LABELS` first)."""
    if key in LABELS:
        return LABELS[key]
    return wire_words(key).removesuffix(" ms").removesuffix(" seconds")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.1f}".removesuffix(".0")


def value_text(key: str, value: Any, now: datetime | None = None) -> str:
    """One scalar for people, by its wire name: a time (``…At``) in UTC with its age (from ``now``: the page's one,
    :func:`gamead_cli.formats.page_now`), seconds and milliseconds with their unit, a flag as ``yes``/``no``, ``-``
    for none (``not measured yet`` for one of :data:`MEASURED`)."""
    if value is None and key in MEASURED:
        return "not measured yet"
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if key in AGES:
            return ago(value)
        if key == "uptimeSeconds":
            return age(value)
        if key in SECONDS or key.endswith("Seconds"):
            return f"{_number(value)} s"
        if key.endswith("Ms") or key in ("p50", "p95", "p99"):
            return f"{_number(value)} ms"
        if key in COUNTED and isinstance(value, int):
            return counted(value, COUNTED[key])
        return _number(value)
    if key.endswith("At") and isinstance(value, str):
        return utc_when(value, now=now)
    return str(value)


def _flat(key: str, value: Mapping[str, Any], now: datetime) -> str:
    """A mapping of scalars on one line: ``p50 12 ms · p95 40 ms · count 3``."""
    unit = "p50" if key.endswith("Ms") else ""
    return " · ".join(f"{label(k)} {value_text(unit if k.startswith('p') and unit else k, v, now)}"
                      for k, v in value.items())


def _rows(grid: Table, data: Mapping[str, Any], indent: str, now: datetime) -> None:
    for key, value in data.items():
        name = Text(indent + label(str(key)))  # a key from the server is never read as markup
        if isinstance(value, Mapping) and value and all(not isinstance(v, (Mapping, list)) for v in value.values())\
                and (key.endswith("Ms") or not indent and key not in ("ad",)):
            grid.add_row(name, plain(_flat(str(key), value, now)))
        elif isinstance(value, Mapping) and not indent:  # the ad, an error: its fields on rows of their own
            grid.add_row(name, Text(""))
            _rows(grid, value, indent + "  ", now)
        elif isinstance(value, list) and all(not isinstance(v, (Mapping, list)) for v in value):
            grid.add_row(name, plain(", ".join(value_text(str(key), v, now) for v in value) or "-"))
        elif isinstance(value, (Mapping, list)):  # deeper (an analysis): JSON, its text as it reads
            grid.add_row(name, plain(strict_dumps(value, indent=2, default=str, ensure_ascii=False)))
        else:
            grid.add_row(name, plain(value_text(str(key), value, now)))


def details_view(data: Mapping[str, Any], now: datetime | None = None) -> Table:
    """Every field of one node, DLQ entry or ad record (``data``, as the API sends it), labelled, with units and
    times in UTC with their age (all from one ``now``: the page's); the fields of a nested object (the ad) on rows of
    their own, indented."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    _rows(grid, data, "", page_now(now))  # every age on the screen from one instant (attack43b F3)
    return grid


__all__ = ["details_view", "label", "value_text"]
