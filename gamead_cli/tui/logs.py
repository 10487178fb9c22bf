"""The live log tail of ``gamead top`` (``:logs WORKER``, ``:logs ad AD_ID``, ``l`` in the nodes table): where
the logs are, bounded reads of their tails, and one line per JSON log record. No Textual here; the screen
calls :meth:`LogFollower.read` in a worker thread every refresh, so a large or slow file never blocks the
event loop.

Where: ``gamead top --logs DIR``; without it, the logs of the local ``gamead up`` when its state file
(``<embedded.data_dir>/gamead-up.json``) is there: ``<embedded.data_dir>/logs``. ``gamead up`` writes one file
per process: ``api.log``, ``nats-server.log`` and ``worker-K.log`` for the worker whose id is ``local-K``
(:class:`gamead_core.scaling.local.LocalScaler`). Each line is one JSON object
(:func:`gamead_core.logs.setup_logging`); an ad's lines carry its id in the ``ad_id`` field.

Bounds: the first read of a file takes its last :data:`TAIL_BYTES` only; each later read takes what was
appended, at most :data:`TAIL_BYTES` (a burst larger than that skips to its end); a file replaced (another inode)
or emptied in place and written again (``gamead up``'s copytruncate, :mod:`gamead_core.log_bound`: its first bytes
changed), however much was written since, is read again from its start (its tail past :data:`TAIL_BYTES`). The
screen keeps at most :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gamead_core.datadir import running_stack
from gamead_core.ids import AD_ID_RULE, is_ad_id, normal_id
from gamead_core.safe_text import shown
from gamead_core.scaling.local_ids import local_index

#: bytes read from the end of a file at first, and at most per later read
TAIL_BYTES = 64 * 1024
#: lines the log screen keeps (older ones scroll away)
MAX_LINES = 1000
#: bytes of a file's start a follower keeps and compares at each read (:class:`FileTail`): a log's first line or
#: more (its time, its message); a file emptied and written again is missed only if it starts with those very bytes
HEAD_BYTES = 1024
#: files one ad's story reads at most (a stack with more workers: the first ones by name)
MAX_FILES = 64
#: what ``:logs NAME`` accepts: a node id or a log file's name, never a path
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class LogsUnavailable(Exception):
    """The logs cannot be read; the message says why, on one line."""


def default_log_dir(data_dir: Path, api_url: str) -> Path | None:
    """The logs of the ``gamead up`` running on ``data_dir`` (``data_dir/logs``) if the API watched (``api_url``)
    is that stack's (its ``gamead-up.json`` says so); else None: another stack's dashboard never shows these."""
    stack = running_stack(data_dir)
    if stack is None or stack.api_url is None or not same_api(stack.api_url, api_url):
        return None
    return data_dir / "logs"


def same_api(a: str, b: str) -> bool:
    """Do URLs ``a`` and ``b`` name the same API (scheme, host and port; ``localhost`` is ``127.0.0.1``)? Pure."""
    from urllib.parse import urlsplit

    def key(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
        return parts.scheme.lower(), "127.0.0.1" if host == "localhost" else host, port

    return key(a) == key(b)


def check_dir(log_dir: Path | None) -> Path:
    """``log_dir`` if it is a readable directory, else :class:`LogsUnavailable` saying so in one line."""
    if log_dir is None:
        raise LogsUnavailable("logs not reachable: no `gamead up` running here serves the API watched (its "
                              ".gamead/gamead-up.json); start the dashboard with --logs DIR")
    if not log_dir.is_dir():
        raise LogsUnavailable(f"logs not reachable: {log_dir} is not a directory")
    return log_dir


def worker_log(log_dir: Path, name: str) -> Path:
    """The log file of node ``name`` in ``log_dir``: ``name.log`` (``api``, ``worker-2``), ``worker-NAME.log``,
    ``worker-K.log`` for the worker id ``local-K`` and ``api.log`` for an API node, as ``gamead up`` names them. Raises :class:`LogsUnavailable` for a name that
    is not a plain name (no path may be read through it) or has no log there."""
    if not _NAME.match(name):
        raise LogsUnavailable(f"not a worker name: {name[:40]!r} (a node id as the nodes table shows it)")
    candidates = [log_dir / f"{name}.log", log_dir / f"worker-{name}.log"]
    if (k := local_index(name)) is not None:  # local-K, local-K-<tag> (gamead_core.scaling.local_ids)
        candidates.append(log_dir / f"worker-{k}.log")
    if name.startswith("api-"):  # an API node (api-HOST-PID-RANDOM): gamead up runs one, logging to api.log
        candidates.append(log_dir / "api.log")
    for path in candidates:
        if path.is_file():
            return path
    raise LogsUnavailable(f"no log of {name} in {log_dir} (the logs there: "
                          f"{', '.join(p.stem for p in log_files(log_dir)[:8]) or 'none'})")


def log_files(log_dir: Path) -> list[Path]:
    """The ``*.log`` files of ``log_dir``, by name, at most :data:`MAX_FILES`."""
    try:
        return sorted(p for p in log_dir.glob("*.log") if p.is_file())[:MAX_FILES]
    except OSError:
        return []


def check_ad_id(ad_id: str) -> str:
    """``ad_id`` in lowercase (a ULID in capitals is the same id); raises :class:`LogsUnavailable` if it is none."""
    ad_id = normal_id(ad_id)
    if not is_ad_id(ad_id):
        raise LogsUnavailable(f"not an ad id: {ad_id[:40]!r} ({AD_ID_RULE})")
    return ad_id


def started_over(was: tuple[int, int, bytes] | None, now: tuple[int, int, bytes], offset: int | None,
                 size: int) -> bool:
    """Whether a followed file must be read from its start again: not read yet (``was`` or ``offset`` None), or
    shorter than where the last read ended, or another file (``(st_dev, st_ino)`` of ``now`` differ: replaced),
    or its first bytes changed (``now[2]`` does not start with ``was[2]``: emptied in place and written again,
    whatever its size now). ``was``/``now``: (device, inode, the file's first :data:`HEAD_BYTES`). Pure."""
    if was is None or offset is None or size < offset:
        return True
    return was[:2] != now[:2] or not now[2].startswith(was[2])


@dataclass
class FileTail:
    """Follows one file: :meth:`read` returns the complete lines appended since the last call (the last
    :data:`TAIL_BYTES` at the first call), never more than ``limit`` bytes read at once; a file replaced or
    emptied and written again (:func:`started_over`) is read from its start again, its first line whole."""

    path: Path
    limit: int = TAIL_BYTES
    offset: int | None = None  #: where the next read starts (None: not read yet)
    #: (device, inode, first bytes) of the file at the last read, for :func:`started_over`
    seen: tuple[int, int, bytes] | None = field(default=None, repr=False)

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                size = stat.st_size
                now = (stat.st_dev, stat.st_ino, os.pread(fh.fileno(), HEAD_BYTES, 0))
                first = started_over(self.seen, now, self.offset, size)
                self.seen = now
                start = max(0, size - self.limit) if first else max(self.offset or 0, size - self.limit)
                fh.seek(start)
                data = fh.read(min(self.limit, size - start))
        except FileNotFoundError:
            self.offset = self.seen = None
            return []
        end = data.rfind(b"\n")
        if end < 0:  # no complete line yet (or one longer than the limit: skipped)
            self.offset = start + (len(data) if len(data) >= self.limit else 0)
            return []
        lines = data[: end + 1].decode("utf-8", "replace").splitlines()
        if start > 0 and (first or start > (self.offset or 0)):
            lines = lines[1:]  # began mid-line: drop the piece
        self.offset = start + end + 1
        return [line for line in lines if line.strip()]


def parse(line: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


#: fields a line shows first, in this order; the rest follow as key=value
_HEAD = ("ts", "level", "role", "logger", "message")
_SKIP = frozenset({*_HEAD, "taskName", "color_message"})


def format_line(line: str, *, source: str = "") -> str:
    """One log line for the screen: ``ts LEVEL logger message key=value …`` (``[source]`` first when the
    lines come from several files); a line that is not a JSON object is shown as it is. Either way a control
    character (an ANSI colour of a crash's output, a C1 CSI a client sent) shows escaped (``\\u001b``)."""
    rec = parse(line)
    prefix = f"[{source}] " if source else ""
    if rec is None:
        return shown(prefix + line)
    head = " ".join(str(rec[k]) for k in ("ts", "level", "logger") if rec.get(k) is not None)
    rest = " ".join(f"{k}={v}" for k, v in rec.items() if k not in _SKIP and v is not None)
    return shown(f"{prefix}{head} {rec.get('message', '')}" + (f"  {rest}" if rest else ""))


@dataclass
class LogFollower:
    """What one log screen follows: one worker's file, or every file's lines about one ad.

    :meth:`read` (call it in a thread) returns the new lines, formatted, oldest first; an ad's story is
    merged across files by their ``ts`` field."""

    log_dir: Path
    worker: str | None = None
    ad_id: str | None = None
    tails: dict[Path, FileTail] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"logs of {self.worker}" if self.worker else f"log story of ad {self.ad_id}"

    def files(self) -> list[Path]:
        if self.worker is not None:
            return [worker_log(self.log_dir, self.worker)]
        return log_files(self.log_dir)

    def read(self) -> list[str]:
        """New lines since the last call; raises :class:`LogsUnavailable` when the directory or the worker's
        file is gone."""
        check_dir(self.log_dir)
        out: list[tuple[str, str]] = []
        for path in self.files():
            tail = self.tails.setdefault(path, FileTail(path))
            out += [(path.stem, line) for line in tail.read()]
        if self.worker is not None:
            return [format_line(line) for _, line in out][-MAX_LINES:]
        story = [(rec.get("ts") or "", src, line) for src, line in out
                 if (rec := parse(line)) is not None and about(rec, self.ad_id)]
        story.sort(key=lambda t: str(t[0]))
        return [format_line(line, source=src) for _, src, line in story][-MAX_LINES:]


def about(rec: dict, ad_id: str | None) -> bool:
    """Whether the log record ``rec`` is about ``ad_id``: its ``ad_id``, or one of its ``ad_ids`` (a line about
    several ads, e.g. a worker's hand-back of prefetched ads: the first 20). Pure."""
    ids = rec.get("ad_ids")
    return rec.get("ad_id") == ad_id or (isinstance(ids, list) and ad_id in ids)


def follower(log_dir: Path | None, args: Iterable[str]) -> LogFollower:
    """``:logs`` arguments → a :class:`LogFollower`: ``[WORKER]`` or ``["ad", AD_ID]``. Raises
    :class:`LogsUnavailable` (one line) when the logs cannot be reached or the name / id is not valid."""
    args = list(args)
    where = check_dir(log_dir)
    if len(args) == 2 and args[0] == "ad":
        return LogFollower(where, ad_id=check_ad_id(args[1]))
    if len(args) == 1:
        worker_log(where, args[0])
        return LogFollower(where, worker=args[0])
    raise LogsUnavailable("say logs WORKER or logs ad AD_ID")
