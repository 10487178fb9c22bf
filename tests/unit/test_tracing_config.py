"""When traces are on (the standard OTEL_* variables only) and what log lines carry: pure, no servers."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gamead_core.config import LogSettings
from gamead_core.logs import ad_fields, setup_logging
from gamead_core.telemetry import tracing


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "x"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_traces_are_on_only_when_otel_variables_ask(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on


def test_off_means_no_span_and_no_header() -> None:
    assert not tracing.enabled()
    headers: dict[str, str] = {}
    with tracing.producer_span("gamead.ads.p2", "ad1", headers):
        pass
    assert headers == {} and tracing.current_ids() is None and tracing.current_traceparent() is None


def test_log_lines_carry_the_ad_fields_and_never_a_password() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    setup_logging(LogSettings(format="json", level="INFO"), role="worker", stream=out)
    try:
        log = logging.getLogger("gamead_core.test")
        with ad_fields(ad_id="01abc", worker_id="w1", priority=2, delivery=1) as fields:
            fields["delivery"] = 2
            log.info("ad %s failed talking to nats://user:hunter2@nats:4222", "01abc")
        log.info("outside")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert {k: first[k] for k in ("ad_id", "worker_id", "priority", "delivery")} == {
        "ad_id": "01abc", "worker_id": "w1", "priority": 2, "delivery": 2}
    assert "hunter2" not in out.getvalue()
    assert "ad_id" not in second


@pytest.mark.parametrize(("env", "said"), [
    ({}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
     "are sent by OTLP http/protobuf to http://127.0.0.1:4318/v1/traces;"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:secret@c:4318/", "OTEL_SERVICE_NAME": "ads"},
     "(ads) are sent by OTLP http/protobuf to http://u:***@c:4318/v1/traces;"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://d:1"},
     "to http://c:4318/custom;"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "by OTLP grpc to http://localhost:4317;"),
    ({"OTEL_TRACES_EXPORTER": "console"}, "are printed to each process's log (console exporter);"),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
], ids=["off", "endpoint", "masked-and-named", "traces-endpoint-wins", "grpc-default", "console", "disabled"])
def test_gamead_up_says_tracing_is_on_and_where_it_exports(env: dict[str, str], said: str | None) -> None:
    """attack45 F6: with OTEL_EXPORTER_OTLP_ENDPOINT set to a port with no collector, ``gamead up``'s console never
    said tracing was on (only the children's logs did, then an export error per batch). Its start now says so
    (``✓ tracing is on …``, as fault injection is said), where the spans go and where a failed export is said."""
    line = tracing.tracing_line("/d/logs", env)
    if said is None:
        assert line is None
        return
    assert line is not None and line.startswith("tracing is on (OTEL_* variables): spans of the API and workers ")
    assert said in line, line
    assert "spans the API cannot send for registry.ttl are said here, each failed batch in their logs (/d/logs)" in line


@pytest.mark.parametrize(("value", "refused"), [
    ("zipkin", "OTEL_TRACES_EXPORTER=zipkin: gamead has no 'zipkin' exporter; it supports otlp, console"),
    ("otlp, Jaeger", "OTEL_TRACES_EXPORTER=otlp, Jaeger: gamead has no 'jaeger' exporter"),
    ("otlp,console", None),
    ("console,none", None),
    ("none", None),  # tracing off
])
def test_an_exporter_gamead_does_not_build_is_refused(value: str, refused: str | None) -> None:
    """review47: ``OTEL_TRACES_EXPORTER=zipkin`` counted as tracing on with no exporter: ``/readyz`` said ``ok`` and
    ``gamead up``'s line "spans … are ;" (sent nowhere). The SDK's auto-configuration refuses an exporter it cannot
    build; so does gamead now (:func:`tracing.check_tracing_env`: one line, exit 5, before anything starts)."""
    env = {"OTEL_TRACES_EXPORTER": value, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    problem = tracing.tracing_env_problem(env)
    assert (problem is None) if refused is None else (problem is not None and problem.startswith(refused)), problem
    if refused is not None:
        assert problem is not None and problem.endswith("or none (tracing off)"), problem
    elif tracing.wanted(env):
        assert tracing.export_targets(env), env  # what is accepted says where its spans go
