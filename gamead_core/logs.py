"""Logging set-up: one JSON object per line (or plain text for a terminal), configured once per process.

Ids are fields, never only text: whatever a task logs while it works on one ad carries ``ad_id``,
``worker_id``, ``priority`` and ``delivery`` (set once with :func:`ad_fields`, kept in a context variable, so
every line of that asyncio task has them), and ``trace_id``/``span_id`` of the current OpenTelemetry span
when tracing is on (:mod:`gamead_core.telemetry.tracing`). One ad's story is one filter:
``jq 'select(.ad_id == "01h…")'``. Every line passes :func:`~gamead_core.redact.redact_text`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from gamead_core.config import LogSettings
from gamead_core.log_throttle import LibraryLines
from gamead_core.redact import redact_text
from gamead_core.telemetry.tracing import current_ids

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


#: the ad fields of the current task (see :func:`ad_fields`)
_AD_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("gamead_ad_fields", default=None)


@contextmanager
def ad_fields(**fields: Any) -> Iterator[dict[str, Any]]:
    """``with ad_fields(ad_id=…, worker_id=…, priority=…):`` every log line of this task carries them as
    fields. The yielded dict may be updated inside the block (``delivery`` once it is known)."""
    current = dict(_AD_FIELDS.get() or {})
    current.update(fields)
    token = _AD_FIELDS.set(current)
    try:
        yield current
    finally:
        _AD_FIELDS.reset(token)


def push_ad_fields(fields: dict[str, Any]) -> contextvars.Token[dict[str, Any] | None]:
    """:func:`ad_fields` without the context manager, for a hot path (the worker's one call per delivery):
    ``fields`` (added to the task's current ones) are on every log line of this task until
    :func:`pop_ad_fields` with the returned token. A plain function pair costs ~0.3 µs against ~2 µs for
    the generator-based ``with`` (issue 14)."""
    current = _AD_FIELDS.get()
    return _AD_FIELDS.set({**current, **fields} if current else fields)


def pop_ad_fields(token: contextvars.Token[dict[str, Any] | None]) -> None:
    """End what :func:`push_ad_fields` began (the task's fields are those before it again)."""
    _AD_FIELDS.reset(token)


#: this process's own fields (:func:`node_fields`), on every line that does not set them itself
_NODE_FIELDS: dict[str, Any] = {}


def node_fields(**fields: Any) -> None:
    """Fields of the whole process (``worker_id=`` once a worker knows its id): every later log line carries them,
    but for one whose task or ``extra=`` sets the field itself (the reaper's line names the dead worker's). Before,
    only the lines of an ad's task or an ``extra=`` had ``worker_id``: the reaper lease, long polls, fault
    injection and shutdown lines of ``local-2`` said its id in words or not at all, and ``jq 'select(.worker_id ==
    "local-2")'`` missed them (newcomer59)."""
    _NODE_FIELDS.update(fields)


def current_ad_id() -> str | None:
    """The ``ad_id`` of the current task's ad fields (:func:`ad_fields`), or None (e.g. what a shielded write is for:
    :class:`gamead_core.worker.shield.Shield`)."""
    fields = _AD_FIELDS.get()
    return fields.get("ad_id") if fields else None


class ContextFields(logging.Filter):
    """Adds the task's ad fields, the process's own (:func:`node_fields`) and the current span's
    ``trace_id``/``span_id`` to every record (an ``extra=`` given at the call wins, then the task's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for fields in (_AD_FIELDS.get() or {}, _NODE_FIELDS):  # the task's first: its worker_id wins
            for key, value in fields.items():
                if value is not None and not hasattr(record, key):
                    setattr(record, key, value)
        ids = current_ids()  # None at once when tracing is off
        if ids is not None and not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = ids
        return True


#: extras that only colour a terminal line: uvicorn adds ``color_message`` (the message with ANSI colours) to its
#: records for its own colouring formatter; a JSON line is read by ``jq`` and log stores, never a terminal
TERMINAL_ONLY_FIELDS = frozenset({"color_message"})
#: an ANSI escape sequence (CSI: colours, cursor moves; OSC: titles, links), ECMA-48
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves, OSC titles and links). Pure."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def utc_stamp(created: float) -> str:
    """A log record's ``created`` (epoch s) as ISO 8601 UTC to the millisecond, ``2026-12-05T01:09:35.123Z``: the
    ``ts`` of every line, text and JSON. UTC whatever the host's ``TZ`` (a ``TZ=Pacific/Apia`` node wrote ``+1300``,
    sorting wrongly beside the others as text) and to the millisecond (an ad's submit, start and completion at
    20 ms fell in one second; attack39b F14), as every other time gamead writes. Pure."""
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: C0 and C1 control characters (a line break, a carriage return, ESC, DEL, CSI U+009B…): tab stays
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def escape_controls(text: str) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\r``, else ``\\u001b``-style), so a message holding
    a client's string (a request path: ``/v1/x%0a2026-12-05 … INFO gamead.audit … accepted``) stays one line of
    the log and sends nothing to a terminal (attack39a F4: a caller without a valid token forged a whole audit line
    and cleared the screen with ``ESC[2J`` through a 401's text line). Pure."""
    if not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub(lambda m: _NAMED.get(m[0]) or f"\\u{ord(m[0]):04x}", text)


class UtcFormatter(logging.Formatter):
    """The text lines' formatter: ``%(asctime)s`` is :func:`utc_stamp`, and the message is one line whatever it
    holds (:func:`escape_controls`; a traceback after it keeps its lines)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's
        return utc_stamp(record.created)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record, for machines: no terminal-only extra (:data:`TERMINAL_ONLY_FIELDS`, such as
    uvicorn's ``color_message``) and no ANSI escape sequence in any string field (a coloured message, a library's
    styled exception text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *TERMINAL_ONLY_FIELDS])
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        """The library's fields, then each renamed standard field again from the record, and the static ones
        (the process's ``role``): an extra of the same name (a priority passed as ``level``, a caller's role passed
        as ``role``) never replaces ``level``, ``ts``, ``logger`` (reviewer V10) or ``role`` (attack29a F8: the
        audit lines said ``"role": "viewer"`` on an API's line); name such an extra apart (``actor_role``)."""
        super().add_fields(log_data, record, message_dict)
        for source, shown in self.rename_fields.items():
            if source in record.__dict__:
                log_data[shown] = record.__dict__[source]
        log_data.update(self.static_fields)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's
        return utc_stamp(record.created)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key, value in log_data.items():
            if isinstance(value, str) and "\x1b" in value:
                log_data[key] = strip_ansi(value)
        return super().process_log_record(log_data)


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that masks credentials in any URL of a formatted line (message, extra fields and
    traceback alike), whoever logged it: gamead, uvicorn, nats-py or redis-py."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class ConsoleLines(logging.Handler):
    """Records of this process's loggers (WARNING and up by default, and an INFO record marked ``ends_warning``)
    handed to ``write(record, text)`` as one
    line each, credentials masked: ``gamead up`` prints them with its console's ``!`` prefix, not as Python's
    bare last-resort lines (``autoscaler lease: cannot reach …``). A record with an exception (``log.exception``)
    keeps it on the same line, ``… (ValueError: why, at module.py:42)``: ``gamead up`` has no log file of its own
    (review16: the traceback Python's last resort printed was lost)."""

    def __init__(self, write: Callable[[logging.LogRecord, str], None], level: int = logging.WARNING) -> None:
        super().__init__(min(level, logging.INFO))
        self.threshold = level
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        # below the threshold only a line that ends what a warning said (``extra={"ends_warning": True}``: "the
        # leases bucket works again after 80 s"): the console showed the failure, so it shows its end
        if record.levelno < self.threshold and not getattr(record, "ends_warning", False):
            return
        try:
            self.write(record, " ".join(redact_text(record.getMessage() + _exception_words(record)).split()))
        except Exception:  # noqa: BLE001 - a console line must never break the caller
            self.handleError(record)


def _exception_words(record: logging.LogRecord) -> str:
    """`` (ValueError: why, at module.py:42)`` for a record carrying an exception, where it was raised; else ``""``."""
    if not record.exc_info or record.exc_info[1] is None:
        return ""
    exc = record.exc_info[1]
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f", at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb is not None else ""
    return f" ({type(exc).__name__}: {exc}{where})"


def setup_logging(settings: LogSettings, *, role: str, stream: object = None) -> None:
    """Route the root logger to stderr as JSON lines (``log.format=json``) or text; tag every line with the role.

    Every line passes :func:`~gamead_core.redact.redact_text`: no password in a URL reaches a log."""
    handler = RedactingHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(ContextFields())
    handler.addFilter(LibraryLines())  # the OpenTelemetry exporter's line per failed try, folded
    if settings.format == "json":
        handler.setFormatter(
            JsonLineFormatter(
                _FIELDS,
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                static_fields={"role": role},
            )
        )
    else:
        handler.setFormatter(UtcFormatter(f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access", "nats"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(settings.level)))
