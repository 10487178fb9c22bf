"""attack45 F6: spans sent to a collector that does not answer were dropped batch after batch and said only in each
process's log. A real ``gamead serve`` whose OTLP endpoint has nothing listening says it in ``/readyz``'s soft
``tracing`` check (``degraded: spans not exported …``, still ready: traces are not the service), and ``ok`` again
once a collector (the OTLP receiver of test_tracing) takes its spans; ``gamead up``'s console line is built from
that check (tests/unit/test_up_soft.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.test_tracing import Receiver
from tests.ports import ReservedPort
from tests.support import ad, start_api, wait_for


def test_readyz_says_spans_are_not_exported_and_when_they_are_again(fresh_nats, procs,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    held = ReservedPort()  # nothing listens there yet (held: no other process can): every export is refused
    port = held.port
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1", "GAMEAD_RATELIMIT__ENABLED": "false"}
    api, url = start_api(fresh_nats().url, tmp_path, **otel)
    procs.append(api)
    seen: list[dict[str, object]] = []
    with httpx.Client(base_url=url, timeout=10) as client:

        def tracing_says(start: str) -> bool:
            client.post("/ads", json=ad("traced ad"))  # spans to send (a server span and a producer span each)
            seen.append(client.get("/readyz").json())
            return str(seen[-1]["checks"]["tracing"]).startswith(start)  # type: ignore[index]

        wait_for(lambda: tracing_says("degraded: spans not exported for "), timeout=60, what="tracing degraded")
        ready = seen[-1]
        assert ready["status"] == "degraded", ready  # still ready (200): the ads flow
        checks = ready["checks"]
        assert "dropped): the exporter could not send them" in checks["tracing"], ready  # type: ignore[index]
        assert str(port) not in str(checks), "what fails, never where"
        receiver = Receiver(held.release())
        try:
            wait_for(lambda: tracing_says("ok"), timeout=60, what="tracing ok once a collector takes the spans")
            assert wait_for(lambda: receiver.spans, timeout=30, what="spans received")
        finally:
            receiver.close()


def test_a_console_exporter_does_not_hide_a_failing_collector(fresh_nats, procs,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    """review47 F1: with ``OTEL_TRACES_EXPORTER=otlp,console`` and no collector, both exporters counted into one
    health: each batch the console printed ended the failing spell the OTLP exporter's batches began, so
    ``checks.tracing`` said ``ok`` between them and its ``for N s`` never grew (gamead up, which says a spell past
    registry.ttl, said nothing). Each exporter is counted on its own now: the spell lasts while ads are posted."""
    held = ReservedPort()  # nothing listens there, for the whole test: every OTLP export is refused
    port = held.port  # and every console one succeeds
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1", "OTEL_TRACES_EXPORTER": "otlp,console",
            "GAMEAD_RATELIMIT__ENABLED": "false"}
    api, url = start_api(fresh_nats().url, tmp_path, **otel)
    procs.append(api)
    seen: list[str] = []
    with httpx.Client(base_url=url, timeout=10) as client:

        def failing_for(seconds: float) -> bool:
            client.post("/ads", json=ad("traced ad"))  # spans for both exporters: the console prints them
            seen.append(str(client.get("/readyz").json()["checks"]["tracing"]))
            said = seen[-1].removeprefix("degraded: spans not exported for ").split(" s ", 1)[0]
            return said.isdigit() and int(said) >= seconds

        try:
            wait_for(lambda: failing_for(4), timeout=60, what="a spell of 4 s while ads are posted")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: the last readings {seen[-6:]}") from None
