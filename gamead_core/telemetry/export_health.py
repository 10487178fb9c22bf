"""Whether this process's spans reach their exporter (attack45 F6): ``/readyz``'s soft ``tracing`` check.

With an OTLP endpoint nothing listens on, the SDK's :class:`BatchSpanProcessor` drops every batch and says so only in
the process's own log (``Failed to export span batch``): ``gamead up``'s console said nothing, the operator saw no
traces and no reason. :class:`WatchedExporter` wraps the exporter the processor calls and counts each batch's
result in an :class:`ExportHealth`; ``/readyz`` reports it as ``checks.tracing`` (``ok``, ``disabled``, ``degraded:
…``), which never makes a node unready (traces are not the service), and ``gamead up`` says a failing spell once
on its console (:mod:`gamead_cli.commands.up_soft`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from gamead_core.count_words import counted


#: seconds after a failed batch with no batch tried since (none in flight) past which the spell is said as ended
#: at that failure (review47 F6): the processor tries a batch every ``OTEL_BSP_SCHEDULE_DELAY`` (5 s by default)
#: while spans wait, so an exporter not called for this long had no span to send
IDLE_AFTER = 30.0


class ExportHealth:
    """The results of the span batches one exporter was asked to send, counted from the last success.
    ``clock``: monotonic seconds (injectable for tests); ``idle_after``: :data:`IDLE_AFTER`. Thread-safe: the
    processor's thread writes, ``/readyz`` reads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, idle_after: float = IDLE_AFTER) -> None:
        self._clock, self.idle_after = clock, idle_after
        self._lock = threading.Lock()
        self.failing_since: float | None = None  #: monotonic: the first failed batch since the last success
        self.failed_at = 0.0  #: monotonic: the last failed batch's end
        self.trying = 0  #: batches being sent now (:meth:`begin` not yet :meth:`record`-ed)
        self.batches_failed = 0  #: batches failed in a row (the present spell)
        self.spans_dropped = 0  #: spans of those batches (dropped: the SDK does not resend a failed batch)
        self.cause = ""  #: the last failure's exception (``ConnectionError: …``), or "" (the exporter said FAILURE)

    def begin(self) -> None:
        """A batch is being sent (its result comes by :meth:`record`)."""
        with self._lock:
            self.trying += 1

    def record(self, ok: bool, spans: int, cause: str = "") -> None:
        """One batch of ``spans`` spans sent (``ok``) or not: a success ends the failing spell."""
        with self._lock:
            self.trying = max(0, self.trying - 1)
            if ok:
                self.failing_since, self.batches_failed, self.spans_dropped, self.cause = None, 0, 0, ""
                return
            self.failed_at = self._clock()
            if self.failing_since is None:
                self.failing_since = self.failed_at
            self.batches_failed += 1
            self.spans_dropped += spans
            self.cause = cause

    def readiness(self) -> str:
        """``ok``, or ``degraded: spans not exported for 12 s (3 batches, 41 spans dropped): <cause>`` (the cause
        left out when the exporter gave none). When no batch was tried for :attr:`idle_after` since the last failed
        (an idle API makes no spans), its ``for N s`` no longer grows as if every second failed (review47 F6: ``for
        3600 s`` with no span sent for an hour): ``degraded: the last span batch failed 340 s ago, none tried since
        (no span to send): 3 batches, 41 spans dropped over 12 s; …``; still degraded, as whether the exporter would
        send now is not known before its next batch. Never a server's address: ``/readyz`` says what fails, not
        where."""
        with self._lock:
            if self.failing_since is None:
                return "ok"
            now, since, last = self._clock(), self.failing_since, self.failed_at
            batches, spans, cause, idle = self.batches_failed, self.spans_dropped, self.cause, not self.trying
        dropped = f"{counted(batches, 'batch', 'batches')}, {counted(spans, 'span')} dropped"
        if idle and now - last > self.idle_after:
            words = (f"degraded: the last span batch failed {now - last:.0f} s ago, none tried since (no span to "
                     f"send): {dropped} over {last - since:.0f} s; the exporter could not send them")
        else:
            words = (f"degraded: spans not exported for {now - since:.0f} s ({dropped}): the exporter could not "
                     "send them")
        return f"{words} ({cause})" if cause else words


def readiness_of(healths: Sequence[ExportHealth]) -> str:
    """The ``tracing`` check of a process with one :class:`ExportHealth` per exporter: the readiness of the one
    failing longest, ``ok`` when none fails (review47 F1: ``OTEL_TRACES_EXPORTER=otlp,console`` counted both into
    one, each batch the console printed ended the OTLP exporter's failing spell: ``ok`` between its failures)."""
    failing = [h for h in healths if h.failing_since is not None]
    return min(failing, key=lambda h: h.failing_since or 0.0).readiness() if failing else "ok"


class WatchedExporter(SpanExporter):
    """``inner`` (an OpenTelemetry :class:`SpanExporter`), each :meth:`export`'s result counted in ``health``. An
    exception the exporter raises is counted as a failure and returned as ``FAILURE`` (the SDK logs and drops the
    batch either way)."""

    def __init__(self, inner: SpanExporter, health: ExportHealth) -> None:
        self.inner, self.health = inner, health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.health.begin()
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # noqa: BLE001 - a failed batch, counted; the service goes on
            self.health.record(False, len(spans), f"{type(exc).__name__}: {exc}"[:200])
            return SpanExportResult.FAILURE
        self.health.record(result == SpanExportResult.SUCCESS, len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> Any:
        return self.inner.force_flush(timeout_millis)


__all__ = ["IDLE_AFTER", "ExportHealth", "WatchedExporter", "readiness_of"]
