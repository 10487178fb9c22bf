"""The OpenTelemetry exporter's own lines are folded (attack39b F9: a collector down made 32 WARNING/ERROR lines of
``opentelemetry.exporter.otlp.proto.http.trace_exporter`` in 57 s per process, ~470 bytes each, where gamead's own
failing calls say one line per kind per few seconds). A real OTLP HTTP exporter sends 5 spans, one at a time, to a
loopback port nothing listens on, through gamead's JSON logging."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support import json_log_lines


def test_a_collector_down_is_one_line_per_kind_of_the_exporter_and_gamead_lines_pass(
        closed_port: Callable[[], int]) -> None:
    """Figure without the fold: 8 exporter lines for the 5 spans (retry and give-up lines); with it,
    one of each kind. gamead's own 5 lines all pass."""
    with json_log_lines("api") as out:
        provider = TracerProvider()
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=1)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for _ in range(5):
            with provider.get_tracer("test").start_as_current_span("one"):
                pass
            logging.getLogger("gamead_core.test").warning("an ad refused")
        provider.shutdown()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    exporter_lines = [r["message"].split(" HTTPConnectionPool")[0] for r in lines
                      if r["logger"].startswith("opentelemetry")]
    # one line per kind: the retry and the give-up, and on a loaded machine a third, the give-up once the 1 s
    # export budget is spent before a try ("connect timeout to 0.0": a fresh clone's run of 1ae9f7f)
    assert exporter_lines and len(exporter_lines) == len(set(exporter_lines)) <= 3, exporter_lines
    assert sum(r["logger"] == "gamead_core.test" for r in lines) == 5
