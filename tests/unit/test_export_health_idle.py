"""review47 F6: on an idle API (no ad submitted: no span made) a finished failing spell kept reading ``spans not
exported for N s`` with N growing for ever, as if every second failed, though no batch was tried after the last
failure. The check now says when the last batch failed and that none was tried since (still degraded: whether the
exporter sends again is not known before its next batch); a batch sent ends it (``ok``). The SDK's own console
exporter, writing to a closed stream (fails) then an open one (sends); the check's clock is the test's."""

from __future__ import annotations

import io

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExportResult

from gamead_core.telemetry.export_health import ExportHealth, WatchedExporter, readiness_of


def _spans(n: int) -> list:  # type: ignore[type-arg]
    tracer = TracerProvider().get_tracer("test")
    spans = [tracer.start_span(f"s{i}") for i in range(n)]
    for span in spans:
        span.end()
    return spans


def test_a_failed_spell_on_an_idle_api_says_its_last_failure_not_a_growing_for() -> None:
    now = [100.0]
    health = ExportHealth(clock=lambda: now[0], idle_after=30.0)
    closed = io.StringIO()
    closed.close()
    failing = WatchedExporter(ConsoleSpanExporter(out=closed), health)
    assert failing.export(_spans(3)) == SpanExportResult.FAILURE  # I/O on a closed file
    now[0] = 112.0
    assert failing.export(_spans(2)) == SpanExportResult.FAILURE
    now[0] = 120.0  # 8 s after the last failure: the spell may still be running (a batch every 5 s)
    assert readiness_of([health]).startswith("degraded: spans not exported for 20 s (2 batches, 5 spans dropped)")
    now[0] = 112.0 + 3600  # an hour with no ad: no batch tried
    said = readiness_of([health])
    assert said.startswith("degraded: the last span batch failed 3600 s ago, none tried since (no span to send): "
                           "2 batches, 5 spans dropped over 12 s; the exporter could not send them (ValueError: "), said
    assert "not exported for 3612 s" not in said  # before: "spans not exported for 3612 s (2 batches, …)"
    sent = WatchedExporter(ConsoleSpanExporter(out=io.StringIO()), health)  # the next ad's spans go through
    assert sent.export(_spans(1)) == SpanExportResult.SUCCESS
    assert readiness_of([health]) == "ok"


def test_a_batch_being_sent_keeps_the_spell_running() -> None:
    """A batch in flight (an OTLP export waiting on its timeout) is a try: the spell is not said as ended."""
    now = [0.0]
    health = ExportHealth(clock=lambda: now[0], idle_after=30.0)
    health.begin()
    health.record(False, 4, "ConnectionError: refused")
    health.begin()  # the next batch, still waiting on the collector
    now[0] = 45.0
    assert readiness_of([health]) == ("degraded: spans not exported for 45 s (1 batch, 4 spans dropped): the exporter "
                                      "could not send them (ConnectionError: refused)")
