"""A JSON log line's ``level`` is always the record's level name (reviewer V10: the worker's "level 2 of partition
0 cannot be read" WARNING came out as ``"level": 2`` — the priority, passed as an extra named ``level``, replaced
the severity, so a pipeline filtering ``level == "WARNING"`` never saw it)."""

from __future__ import annotations

import json
import logging

from gamead_core.queue import depth
from tests.support import json_log_lines


def _records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_an_unreadable_level_is_logged_as_a_warning_naming_its_priority() -> None:
    with json_log_lines("worker") as out:
        depth._note_unreadable(2, 0, TimeoutError("nats: timeout"))
        depth._note_unreadable(2, 0, None)
    down, back = _records(out.getvalue())
    assert down["level"] == "WARNING" and down["priority"] == 2 and down["consumer"] == "gamead-p2"
    assert back["level"] == "INFO" and back["priority"] == 2


def test_an_extra_named_like_a_standard_field_never_hides_it() -> None:
    with json_log_lines("worker") as out:
        logging.getLogger("gamead_core.test").warning("hello", extra={"level": 3, "logger": "x", "ts": 0})
    (record,) = _records(out.getvalue())
    assert record["level"] == "WARNING" and record["logger"] == "gamead_core.test"
    assert isinstance(record["ts"], str) and record["message"] == "hello"
