"""Logging set-up: one JSON object per line (or plain text for a terminal), configured once per process."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from gamead_core.config import LogSettings
from gamead_core.redact import redact_text

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that masks credentials in any URL of a formatted line (message, extra fields and
    traceback alike), whoever logged it: gamead, uvicorn, nats-py or redis-py."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def setup_logging(settings: LogSettings, *, role: str, stream: object = None) -> None:
    """Route the root logger to stderr as JSON lines (``log.format=json``) or text; tag every line with the role.

    Every line passes :func:`~gamead_core.redact.redact_text`: no password in a URL reaches a log."""
    handler = RedactingHandler(stream or sys.stderr)  # type: ignore[arg-type]
    if settings.format == "json":
        handler.setFormatter(
            JsonFormatter(
                _FIELDS,
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                static_fields={"role": role},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access", "nats"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(settings.level)))
