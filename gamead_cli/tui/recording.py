"""``gamead top --record FILE`` and ``gamead top --replay FILE``: a dashboard session as JSON lines.

One line per snapshot the dashboard received: ``{"v": 1, "at": <epoch s>, "snapshot": <Snapshot.as_json()>}``.
The sparkline history (``stats.history``, one point per second with its times in ``t``) is written whole in
the first line only; later lines carry the points newer than the previous line's (``"historyDelta": true``),
and the parts that did not change since the previous line (the DLQ page, the audit records, the nodes: see
:data:`KEPT`) are left out and named in ``"same"``; so an hour at one refresh a second is a few MB, not the
70 MB of whole snapshots. The recorder stops at a
size cap (it never grows a file without bound) and says so; the player reads one line at a time (memory is
one frame plus 16 bytes a line) and refuses a device, a line over :data:`MAX_LINE` bytes and a first line that is
not a recording's as it indexes the file (a later one when it is played).
"""

from __future__ import annotations

import copy
import time
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from gamead_cli.atomic import PendingFile
from gamead_cli.inputs import (
    BadInputFile,
    bounded_lines,
    json_line,
    load_json,
    open_input,
    strict_dumps,
)
from gamead_cli.tui.view import Snapshot
from gamead_cli.tui.view_tables import dlq_id
from gamead_core.errors import ConfigError, NotFound

FORMAT = 1
DEFAULT_MAX_MB = 200  #: about 6 h at one refresh a second with 8 workers (~10 KB a snapshot, measured)
#: the longest line a replay accepts (a recorded snapshot is tens of KB)
MAX_LINE = 8 * 1024 * 1024
#: the most snapshots a replay indexes (its offsets: 16 bytes each; 23 days at one refresh a second)
MAX_FRAMES = 2_000_000
#: parts of a snapshot left out of a line when equal to the previous line's
KEPT = ("workers", "dlq", "dlqError", "audit", "auditError")
HINT = "--replay"  #: the option a fault of a recording is reported under


# --- the history delta (pure) -------------------------------------------------------------------------------


def _series(history: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The list-valued series of a history: ``(key, None)`` or ``(key, sub)`` for ``pending.{level}``."""
    out: list[tuple[str, str | None]] = []
    for key, value in history.items():
        if isinstance(value, list):
            out.append((key, None))
        elif isinstance(value, Mapping):
            out += [(key, sub) for sub, v in value.items() if isinstance(v, list)]
    return out


def history_delta(history: Mapping[str, Any], since: float | None) -> dict[str, Any] | None:
    """The points of ``history`` whose time (``t``) is after ``since``, every series cut alike; None when it
    cannot be cut (no ``t`` series, or no ``since``): then the whole history is written."""
    times = history.get("t")
    if since is None or not isinstance(times, list):
        return None
    keep = sum(1 for t in times if isinstance(t, (int, float)) and t > since)
    out: dict[str, Any] = {k: v for k, v in history.items() if not isinstance(v, (list, Mapping))}
    for key, sub in _series(history):
        values = history[key] if sub is None else history[key][sub]
        cut = values[len(values) - keep:] if keep else []
        if sub is None:
            out[key] = cut
        else:
            out.setdefault(key, {})[sub] = cut
    return out


def apply_delta(previous: Mapping[str, Any], delta: Mapping[str, Any], points: int) -> dict[str, Any]:
    """``previous`` history with ``delta``'s points appended, each series kept to its last ``points``."""
    out: dict[str, Any] = {k: v for k, v in delta.items() if not isinstance(v, (list, Mapping))}
    for key, sub in _series(delta):
        new = delta[key] if sub is None else delta[key][sub]
        old = previous.get(key) if sub is None else (previous.get(key) or {}).get(sub)
        joined = (list(old) if isinstance(old, list) else []) + list(new)
        joined = joined[-points:] if points > 0 else []
        if sub is None:
            out[key] = joined
        else:
            out.setdefault(key, {})[sub] = joined
    return out


def _last_time(history: Any) -> float | None:
    times = history.get("t") if isinstance(history, Mapping) else None
    if isinstance(times, list) and times and isinstance(times[-1], (int, float)):
        return float(times[-1])
    return None


# --- recording ----------------------------------------------------------------------------------------------


class Recorder:
    """Appends every snapshot to ``path`` as a JSON line until the file would pass ``max_bytes``; then it stops
    (``full`` turns True) and writes nothing more. The lines go to a temporary file beside ``path``
    (:class:`gamead_cli.atomic.PendingFile`; a killed dashboard leaves what it recorded there) that
    :meth:`close` renames over ``path`` once at least one snapshot is in it: a session that recorded nothing
    (the API down) leaves an existing ``path`` as it was."""

    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_MB * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.written = 0
        self.frames = 0
        self.full = False
        self._since: float | None = None
        self._last: dict[str, Any] = {}
        try:
            self._pending: PendingFile | None = PendingFile(self.path)
            self._file: IO[str] | None = self._pending.file
        except OSError as exc:
            raise ConfigError(f"cannot record to {path}: {exc.strerror or exc}") from exc

    def write(self, snap: Snapshot, at: float | None = None) -> bool:
        """Record one snapshot; False (and nothing written) once the cap is reached or the file closed. Raises
        :class:`~gamead_cli.exitcodes.OutputFailed` naming the file when it cannot take it (a full disk, a pipe
        whose reader left)."""
        if self._file is None or self.full:
            return False
        doc = snap.as_json()
        stats = doc.get("stats")
        history = stats.get("history") if isinstance(stats, Mapping) else None
        line: dict[str, Any] = {"v": FORMAT, "at": time.time() if at is None else at}
        if isinstance(history, Mapping):
            delta = history_delta(history, self._since)
            if delta is not None:
                doc = {**doc, "stats": {**stats, "history": delta}}  # type: ignore[dict-item]
                line["historyDelta"] = True
            self._since = _last_time(history) or self._since
        same = [k for k in KEPT if k in self._last and self._last[k] == doc.get(k)]
        if same:
            line["same"] = same
        self._last = {k: doc.get(k) for k in KEPT}
        line["snapshot"] = {k: v for k, v in doc.items() if k not in same}
        text = strict_dumps(line, separators=(",", ":"), default=str) + "\n"
        size = len(text.encode("utf-8"))
        if self.written + size > self.max_bytes:
            self.full = True
            self._file.flush()
            return False
        self._file.write(text)
        self._file.flush()  # a killed dashboard keeps what it recorded
        self.written += size
        self.frames += 1
        return True

    def close(self) -> None:
        """End the recording: its file replaces ``path`` if a snapshot was recorded, else it is deleted (an old
        ``path`` stays). Raises :class:`gamead_cli.exitcodes.OutputFailed` (exit 1) if what was recorded cannot be
        written (a full disk) or the rename fails."""
        pending, self._pending, self._file = self._pending, None, None
        if pending is None:
            return
        if not self.frames:
            pending.discard()
            return
        try:
            pending.commit()
        except OSError as exc:
            from gamead_cli.exitcodes import OutputFailed

            raise OutputFailed(f"cannot record to {self.path}: {exc.strerror or exc}") from exc


# --- replaying ----------------------------------------------------------------------------------------------


class Player:
    """A recording played back: :meth:`frame` gives the snapshot at a position (0 … ``len - 1``). It is also a
    read-only :class:`~gamead_cli.tui.source.DataSource` for the parts the recording has (no drill-down: every
    other call raises :class:`NotFound` "not in the recording")."""

    def __init__(self, path: str | Path, history: int = 300) -> None:
        self.path = Path(path)
        self.api_url = f"replay of {self.path.name}"
        self.history = history
        #: each frame's byte offset and 1-based line number in the file (blank lines are skipped): 16 bytes a frame
        self._offsets, self._lines = array("q"), array("q")
        self.position = -1
        self.reading = -1
        self._current: Snapshot | None = None
        self._history: dict[str, Any] = {}
        self._at: float | None = None
        where = str(path)
        # a regular file only (a device never ends: gamead_cli.inputs), and stdin only when it is one (read twice)
        self._file = open_input(path, hint=HINT, seekable=True)
        try:
            offset = 0
            for number, line in bounded_lines(self._file, MAX_LINE):
                if line is None:
                    raise BadInputFile(where, f"longer than {MAX_LINE // 1024 // 1024} MB: not a recording", number,
                                       HINT)
                if line.strip():
                    if not self._offsets:  # a file that is not a recording: refused at its first line, now
                        self._decoded(number, line, first=True)  # (the others as played: parsing each twice
                    if len(self._offsets) >= MAX_FRAMES:  # made a 440 MB replay 1.8x slower)
                        raise BadInputFile(where, f"more than {MAX_FRAMES:,} snapshots: split the recording", number,
                                           HINT)
                    self._offsets.append(offset)
                    self._lines.append(number)
                offset += len(line)
            if not self._offsets:
                raise BadInputFile(where, "an empty recording (record one with gamead top --record FILE)", hint=HINT)
        except BaseException:
            self._file.close()
            raise

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def at(self) -> float | None:
        """When the current frame was received (epoch seconds)."""
        return self._at

    def line_of(self, i: int) -> int:
        """The file's 1-based line number of frame ``i`` (0-based; clamped to the recording)."""
        return self._lines[max(0, min(len(self._lines) - 1, i))]

    def _read(self, i: int) -> dict[str, Any]:
        """Frame ``i``'s line, decoded (:meth:`_decoded`)."""
        self._file.seek(self._offsets[i])
        return self._decoded(self.line_of(i), self._file.readline(MAX_LINE + 1), first=i == 0)

    def _decoded(self, number: int, data: bytes, *, first: bool) -> dict[str, Any]:
        """Line ``number`` of the file (``data``, its bytes), decoded; raises :class:`BadInputFile` naming the file
        and line for one that is not JSON (:func:`gamead_cli.inputs.json_line`, the reader of every input file)
        or not a recording's line (a JSON object with a ``snapshot`` object)."""
        try:
            line = json_line(number, data, str(self.path), MAX_LINE, hint=HINT)
        except BadInputFile as exc:  # an ad.json of several lines is valid JSON: say what it is not
            if first and exc.problem.startswith("not valid JSON") and (lines := self._one_document()):
                raise BadInputFile(str(self.path), f"not a gamead top recording (one JSON document over {lines} "
                                   "lines; a recording is one snapshot a line, from gamead top --record FILE)",
                                   number, HINT) from None
            raise
        if not isinstance(line, dict) or not isinstance(line.get("snapshot"), dict):
            kind = {dict: "object without a snapshot", list: "array", str: "string", bool: "true/false",
                    type(None): "null"}.get(type(line), "number")
            what = f"a JSON {kind}"
            raise BadInputFile(str(self.path), f"not a gamead top recording ({what}; a recording is one snapshot a "
                               "line, from gamead top --record FILE)", number, HINT)
        return line

    def _one_document(self) -> int:
        """The number of lines of the file when it is, whole, one JSON document (not JSON lines), else 0."""
        self._file.seek(0)
        data = self._file.read(MAX_LINE + 1)
        if len(data) > MAX_LINE:
            return 0
        try:
            load_json(data, str(self.path), hint=HINT)
        except BadInputFile:
            return 0
        return data.count(b"\n") + (not data.endswith(b"\n"))

    def frame(self, i: int) -> Snapshot:
        """The snapshot at position ``i`` (clamped to the recording). Going back rebuilds the history from the
        start (history deltas only go forward)."""
        i = max(0, min(len(self) - 1, i))
        start = self.position + 1 if i > self.position else 0
        if start == 0:
            self._history = {}
            self._kept: dict[str, Any] = {}
        line: dict[str, Any] = {}
        for j in range(start, i + 1):
            self.reading = j  # the line a fault of the recording's shapes is on (0-based)
            line = self._read(j)
            same = line.get("same") if isinstance(line.get("same"), list) else []
            line["snapshot"] = {**{k: self._kept.get(k) for k in same if k in KEPT}, **line["snapshot"]}
            self._kept = {k: line["snapshot"].get(k) for k in KEPT}
            stats = line["snapshot"].get("stats")
            hist = stats.get("history") if isinstance(stats, dict) else None
            if isinstance(hist, dict):
                points = hist.get("points") if isinstance(hist.get("points"), int) else self.history
                self._history = (apply_delta(self._history, hist, points) if line.get("historyDelta")
                                 else copy.deepcopy(hist))
        if not line:  # i == position: nothing new
            assert self._current is not None
            return self._current
        doc = line["snapshot"]
        stats = doc.get("stats")
        if isinstance(stats, dict) and self._history:
            stats = {**stats, "history": copy.deepcopy(self._history)}
        self.position = i
        self._at = line.get("at") if isinstance(line.get("at"), (int, float)) else None
        self._current = Snapshot(stats=stats, nodes=doc.get("workers") or [], dlq=doc.get("dlq"),
                                 dlq_error=doc.get("dlqError"), audit=doc.get("audit"),
                                 audit_error=doc.get("auditError"))
        return self._current

    # --- DataSource: what the recording holds, nothing else ---

    def _now(self) -> Snapshot:
        return self._current or self.frame(0)

    def stats(self, history: int) -> dict[str, Any]:
        return dict(self._now().stats or {})

    def workers(self) -> dict[str, Any]:
        nodes = list(self._now().nodes)
        return {"items": nodes, "count": len(nodes)}

    def dlq(self, limit: int = 30) -> dict[str, Any]:
        if self._now().dlq is None:
            raise NotFound("the DLQ is not in the recording")
        return dict(self._now().dlq or {})

    def audit(self, limit: int = 8) -> dict[str, Any]:
        if self._now().audit is None:
            raise NotFound("the audit trail is not in the recording")
        return dict(self._now().audit or {})

    def dlq_entry(self, entry_id: str) -> dict[str, Any]:
        for item in (self._now().dlq or {}).get("items") or []:
            if isinstance(item, dict) and dlq_id(item) == entry_id:
                return dict(item)
        raise NotFound(f"DLQ entry {entry_id} is not in the recording")

    def whoami(self) -> dict[str, Any]:
        return {"name": "replay", "role": None, "mayAct": False}

    def _absent(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise NotFound("not in the recording: a replay shows what the dashboard received, nothing more")

    oldest = ad = doctor = scale = replay = purge = _absent

    def count(self, flt: dict[str, Any]) -> int:
        self._absent()
        return 0  # pragma: no cover

    def close(self) -> None:
        self._file.close()
