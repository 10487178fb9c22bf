"""OpenTelemetry traces across the queue: API server span → ``send gamead.ads.pN`` producer span →
``process gamead.ads.pN`` consumer span in the worker, one trace, carried by the W3C ``traceparent`` header
(https://www.w3.org/TR/trace-context/) in the NATS message headers (header names in
:mod:`gamead_core.names`). Span names and attributes follow the OpenTelemetry messaging semantic
conventions (``messaging.system=nats``, ``messaging.destination.name``, ``messaging.operation.type``,
``messaging.message.id``; the JetStream delivery count as ``messaging.nats.delivery_count``, gamead-specific).

Configured by the standard variables only (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):

* on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an OTLP endpoint is set
  (``OTEL_EXPORTER_OTLP_ENDPOINT``/``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); off when unset, or when
  ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Off costs one module-level bool test per
  hook: the SDK is not even imported; another exporter name (``zipkin``) is refused at start, as by the SDK;
* ``OTEL_EXPORTER_OTLP_PROTOCOL``/``…_TRACES_PROTOCOL``: ``http/protobuf`` (the default; the exporter
  ships with gamead) or ``grpc`` (needs ``opentelemetry-exporter-otlp-proto-grpc`` installed);
* ``OTEL_SERVICE_NAME`` (default ``gamead-api`` / ``gamead-worker``), ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` (the SDK reads them).

``gamead up`` passes the environment, so the variables, to every process it starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from gamead_core import names
from gamead_core.config.addresses import otlp_endpoint_problem
from gamead_core.errors import ConfigError
from gamead_core.redact import redact_url

log = logging.getLogger(__name__)

_enabled = False
_tracer: Any = None
_health: list[Any] = []  #: an :class:`~gamead_core.telemetry.export_health.ExportHealth` per exporter of this process


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Do the ``OTEL_*`` variables ask for traces? (Pure: see the module docstring.)"""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


#: the variables that name where OTLP spans go (the exporter reads the first set; a set one is checked either way)
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


#: the ``OTEL_TRACES_EXPORTER`` names gamead builds an exporter for (``none``: tracing off)
EXPORTERS = ("otlp", "console")


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    """``OTEL_TRACES_EXPORTER``'s names (the SDK's default ``otlp`` when unset), stripped and lower-cased, in order,
    repeats kept. Pure."""
    return [n.strip().lower() for n in (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")]


def tracing_env_problem(env: Mapping[str, str] | None = None) -> str | None:
    """What keeps the exporters the ``OTEL_*`` variables ask for from sending anywhere, or None (tracing off, or
    exporters and endpoints gamead can use): ``VARIABLE=value (masked): why``. An exporter gamead does not build
    (``zipkin``, ``jaeger``, a typo): the SDK's rule for an unknown ``OTEL_TRACES_EXPORTER`` is an error (its
    auto-configuration refuses to start); gamead counted it as tracing on with no exporter (review47: ``/readyz``
    ``ok``, spans sent nowhere). An OTLP endpoint: :func:`~gamead_core.config.addresses.otlp_endpoint_problem`.
    Pure."""
    env = os.environ if env is None else env
    exporters = _exporter_names(env)
    if not wanted(env):
        return None
    if unknown := [n for n in dict.fromkeys(exporters) if n and n != "none" and n not in EXPORTERS]:
        given = (env.get("OTEL_TRACES_EXPORTER") or "").strip()[:80]
        return (f"OTEL_TRACES_EXPORTER={given}: gamead has no {', '.join(repr(n[:40]) for n in unknown)} exporter; "
                f"it supports {', '.join(EXPORTERS)} (comma-separated), or none (tracing off)")
    if "otlp" not in exporters:
        return None
    grpc = _protocol(env) == "grpc"
    for name in ENDPOINT_VARS:
        base = name == "OTEL_EXPORTER_OTLP_ENDPOINT"  # the exporter adds /v1/traces to it
        if (value := env.get(name)) and (problem := otlp_endpoint_problem(value, grpc=grpc, base=base)) is not None:
            return f"{name}={redact_url(value.strip()[:80])}: {problem}"
    return None


def check_tracing_env(env: Mapping[str, str] | None = None) -> None:
    """Refuse (:class:`ConfigError`: one line, exit 5) an exporter gamead does not build or an OTLP endpoint the
    exporter could not use (:func:`tracing_env_problem`), before a process starts anything: it used to start and
    then log an export error at every batch of spans (attack28a F3's kind)."""
    if (problem := tracing_env_problem(env)) is not None:
        raise ConfigError(f"invalid configuration: {problem}")


def tracing_line(logs: str, env: Mapping[str, str] | None = None) -> str | None:
    """What ``gamead up`` says at its start when its children trace (attack45 F6: only their logs said so), or None
    when tracing is off: where each exporter sends (:func:`export_targets`) and where a failed export is said (a
    spell of the API's on the console, :mod:`gamead_cli.commands.up_soft`; each batch in ``logs``, the children's
    logs). Pure."""
    env = os.environ if env is None else env
    if not wanted(env):
        return None
    service = env.get("OTEL_SERVICE_NAME") or "gamead-api, gamead-worker"
    return (f"tracing is on (OTEL_* variables): spans of the API and workers ({service}) are {export_targets(env)}; "
            f"spans the API cannot send for registry.ttl are said here, each failed batch in their logs ({logs}); "
            "OTEL_SDK_DISABLED=true turns it off")


def export_targets(env: Mapping[str, str] | None = None) -> str:
    """Where the spans go, in words: ``sent by OTLP http/protobuf to http://…/v1/traces`` (the URL the OTLP exporter
    posts to: ``…_TRACES_ENDPOINT`` as given, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces`` for http, the
    SDK's localhost default else; its password masked), ``printed to each process's log (console exporter)``, or
    both joined by ``and``. Pure."""
    env = os.environ if env is None else env
    grpc, where = _protocol(env) == "grpc", []
    for name in dict.fromkeys(_exporter_names(env)):
        if name == "otlp":
            base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
            url = ((env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
                   or (base if grpc else base and f"{base.rstrip('/')}/v1/traces")
                   or ("http://localhost:4317" if grpc else "http://localhost:4318/v1/traces"))
            where.append(f"sent by OTLP {'grpc' if grpc else 'http/protobuf'} to {redact_url(url)}")
        elif name == "console":
            where.append("printed to each process's log (console exporter)")
    return " and ".join(where)


def _protocol(env: Mapping[str, str]) -> str:
    return (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf").strip().lower()


def enabled() -> bool:
    return _enabled


def setup_tracing(role: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the global tracer provider for this process (``role``: ``api`` or ``worker``) when the
    ``OTEL_*`` variables ask for it; returns whether tracing is on. Idempotent. Raises :class:`ConfigError`
    for ``grpc`` without its exporter installed."""
    global _enabled, _tracer, _health
    env = os.environ if env is None else env
    if _enabled or not wanted(env):
        return _enabled
    check_tracing_env(env)
    from opentelemetry import trace
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from gamead_core.telemetry.export_health import IDLE_AFTER, ExportHealth, WatchedExporter

    _health, idle = [], max(IDLE_AFTER, 3 * _schedule_delay(env))  # idle: a spell said as ended (review47 F6)
    service = env.get("OTEL_SERVICE_NAME") or f"gamead-{role}"
    resource = Resource.create({"service.name": service}).merge(OTELResourceDetector().detect())
    resource = resource.merge(Resource.create({"service.name": service}))
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER (SDK default)
    for name in _exporter_names(env):
        if name not in EXPORTERS:
            continue  # none (or an empty name)
        exporter = ConsoleSpanExporter() if name == "console" else _otlp_exporter(env)
        _health.append(ExportHealth(idle_after=idle))  # one each: a console's ends no OTLP spell (review47 F1)
        provider.add_span_processor(BatchSpanProcessor(WatchedExporter(exporter, _health[-1])))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("gamead")
    _enabled = True
    log.info("tracing on: service %s, exporter %s", service, env.get("OTEL_TRACES_EXPORTER") or "otlp")
    return True


def export_readiness() -> str:
    """``/readyz``'s soft ``tracing`` check: ``disabled`` (tracing off), ``ok`` (no span batch failed since the
    last one sent, by any exporter), or ``degraded: spans not exported …`` (:func:`readiness_of`)."""
    if not _enabled:
        return "disabled"  # tracing off imports nothing of the SDK (export_health imports it)
    from gamead_core.telemetry.export_health import readiness_of

    return readiness_of(_health)


def _schedule_delay(env: Mapping[str, str]) -> float:
    """``OTEL_BSP_SCHEDULE_DELAY`` in seconds (ms given; the SDK's 5 s when unset or not a number). Pure."""
    try:
        return max(0.0, float(env.get("OTEL_BSP_SCHEDULE_DELAY") or 5000) / 1000)
    except ValueError:
        return 5.0


def _otlp_exporter(env: Mapping[str, str]) -> Any:
    if _protocol(env) == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: pip install "
                              "opentelemetry-exporter-otlp-proto-grpc (or use http/protobuf)") from exc
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return OTLPSpanExporter()


def shutdown_tracing(timeout: float = 3.0) -> None:
    """Flush and stop the exporter (end of the process), waiting at most ``timeout`` seconds: an
    unreachable collector never holds a stopping process past its drain budget."""
    if not _enabled:
        return
    import threading

    from opentelemetry import trace

    provider = trace.get_tracer_provider()

    def stop() -> None:
        try:
            provider.shutdown()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - never fail a shutdown over traces
            log.debug("tracer shutdown failed: %r", exc)

    thread = threading.Thread(target=stop, name="gamead-otel-shutdown", daemon=True)
    thread.start()
    thread.join(timeout)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, or None (tracing off, or no span)."""
    if not _enabled:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (to keep with a DLQ entry), or None."""
    if not _enabled:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(names.HDR_TRACEPARENT)


def _attributes(subject: str, ad_id: str, operation: str, **extra: Any) -> dict[str, Any]:
    attrs = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.message.id": ad_id,
        "gamead.ad_id": ad_id,
    }
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs


#: what a span helper returns when tracing is off: one shared no-op context manager (``nullcontext`` is
#: reentrant), so a publish or a delivery pays no generator when tracing is off (it is on the submit path)
_OFF: AbstractContextManager[Any] = nullcontext()


def producer_span(subject: str, ad_id: str, headers: dict[str, str], *,
                  link: Mapping[str, str] | None = None) -> AbstractContextManager[None]:
    """``send <subject>`` (kind PRODUCER) around a publish; injects ``traceparent`` into ``headers``. With
    ``link`` (the headers of an earlier message of this ad, e.g. a replayed DLQ entry) the span links to
    that trace. Does nothing (a shared no-op context manager) when tracing is off."""
    if not _enabled:
        return _OFF
    return _producer_span(subject, ad_id, headers, link=link)


@contextmanager
def _producer_span(subject: str, ad_id: str, headers: dict[str, str], *,
                   link: Mapping[str, str] | None = None) -> Iterator[None]:
    from opentelemetry import propagate, trace

    links = []
    if link:
        ctx = trace.get_current_span(propagate.extract(dict(link))).get_span_context()
        if ctx.is_valid:
            links.append(trace.Link(ctx, {"gamead.link": "original"}))
    with _tracer.start_as_current_span(f"send {subject}", kind=trace.SpanKind.PRODUCER, links=links,
                                       attributes=_attributes(subject, ad_id, "send")):
        propagate.inject(headers)
        yield


def consumer_span(subject: str, ad_id: str, headers: Mapping[str, str] | None, *, delivery_count: int,
                  stream_seq: int) -> AbstractContextManager[Any]:
    """``process <subject>`` (kind CONSUMER) in the trace of the message's ``traceparent``: one per delivery,
    so a retry shows as a new ``process`` span in the ad's trace. Yields the span (None when off)."""
    if not _enabled:
        return _OFF
    return _consumer_span(subject, ad_id, headers, delivery_count=delivery_count, stream_seq=stream_seq)


@contextmanager
def _consumer_span(subject: str, ad_id: str, headers: Mapping[str, str] | None, *, delivery_count: int,
                   stream_seq: int) -> Iterator[Any]:
    from opentelemetry import propagate, trace

    parent = propagate.extract(dict(headers or {}))
    attrs = _attributes(subject, ad_id, "process", **{"messaging.nats.delivery_count": delivery_count,
                                                      "messaging.nats.stream_sequence": stream_seq})
    with _tracer.start_as_current_span(f"process {subject}", context=parent, kind=trace.SpanKind.CONSUMER,
                                       attributes=attrs) as span:
        yield span


def mark_span(outcome: str, error_class: str | None = None) -> None:
    """Mark the current (``process``) span's outcome (``completed``, ``retried``, ``dead``) and error class."""
    if not _enabled:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.set_attribute("gamead.outcome", outcome)
    if error_class:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("error.type", error_class)
        span.set_status(Status(StatusCode.ERROR, error_class))


__all__ = [
    "consumer_span",
    "current_ids",
    "current_traceparent",
    "enabled",
    "export_readiness",
    "export_targets",
    "producer_span",
    "mark_span",
    "setup_tracing",
    "shutdown_tracing",
    "tracing_line",
    "wanted",
]
