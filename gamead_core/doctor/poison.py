"""The doctor's view of poison: work messages no API published (:mod:`gamead_core.worker.poison`), attack31a F3.

* a waiting message without an ad id the API issues, or whose ad has no record and whose body is not that ad's
  record as the API writes it (another ad's, or outside the API's rules), is the note ``poison_message``, not
  ``message_without_record`` ("the worker recreates the record": it never can, and must not);
* what workers terminated before (the trace, :mod:`gamead_core.worker.poison_trace`) is the note
  ``poison_terminated``: how many, and the last one's sequence, reason, subject, size, headers and first bytes.

Both are notes (the exit code stays): nothing in the ads' data is wrong, and ``--repair`` does nothing with them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from gamead_core.doctor.checks import WorkMsg
from gamead_core.doctor.model import Note, ReadStats
from gamead_core.doctor.verdict import add
from gamead_core.ids import is_ad_id
from gamead_core.worker.poison import NotAnAd, message_record, quoted
from gamead_core.worker.poison_trace import read_trace

#: why a message without a usable ``Gamead-Ad-Id`` is poison (the detail of its ``poison_message`` item)
BAD_ID = "no Gamead-Ad-Id header the API issues (an ad id: a lowercase ULID)"
_DETAIL_CHARS = 8192  #: most characters of the trace shown in the note's detail
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")  #: escaped in it: the trace is read from NATS, shown on a terminal


def id_is_poison(ad_id: str | None) -> bool:
    """True when a work message's ``Gamead-Ad-Id`` (``ad_id``, None: absent) is not an id the API issues. Pure."""
    return not ad_id or not is_ad_id(ad_id)


async def note_unrecorded(js: JetStreamContext, stream: str, messages: Sequence[WorkMsg], ad_id: str,
                          stats: ReadStats, notes: dict[str, Note]) -> None:
    """Note the confirmed messages of ``ad_id`` (it has no record) found in ``stream``: each whose body is not
    ``ad_id``'s record as the API writes it under ``poison_message`` (with why), else the ad under
    ``message_without_record`` (the worker recreates its record). Reads each message (one direct get); a message
    gone meanwhile is skipped. Raises NATS errors."""
    poison = 0
    for m in messages:
        stats.api_calls += 1
        try:
            raw = await js.get_msg(stream, m.seq)
        except nats.js.errors.NotFoundError:
            continue
        try:
            message_record(raw.data or b"", ad_id)
        except NotAnAd as exc:
            add(notes["poison_message"], f"{stream} seq {m.seq}", exc.why)
            poison += 1
    if not poison:
        add(notes["message_without_record"], ad_id)


async def note_terminated(js: JetStreamContext, note: Note) -> None:
    """Fill ``note`` (``poison_terminated``) from the workers' trace: its count, and the last message as its one
    item with the details. Nothing when none was ever terminated or the trace cannot be read."""
    try:
        trace = await read_trace(js)
    except (nats.errors.Error, TimeoutError, OSError):
        return
    if trace is None:
        return
    last = trace["last"]
    item = f"{quoted(last.get('stream'))[1:-1]} seq {last.get('seq')} at {quoted(last.get('at'))[1:-1]}"
    headers = last.get("headers") if isinstance(last.get("headers"), dict) else {}
    note.count = int(trace.get("count", 1)) if str(trace.get("count", "")).isdigit() else 1
    note.items.append(item)
    detail = (f"reason {last.get('reason')}: {last.get('why')}; subject {last.get('subject')}, {last.get('size')} "
              f"bytes, headers {headers}, first bytes {last.get('head')!r}; by reason {trace.get('byReason')}")
    note.details[item] = _NOT_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", detail[:_DETAIL_CHARS])


__all__ = ["BAD_ID", "id_is_poison", "note_terminated", "note_unrecorded"]
