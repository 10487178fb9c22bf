"""A trace crosses API → NATS → worker with one trace id: a real API and a real worker export their spans
with the standard OTLP/HTTP exporter (configured by OTEL_* variables only) to an OTLP receiver in this test
process (a small HTTP server that decodes ``ExportTraceServiceRequest``); no gamead code is stubbed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support import ad, start_api, start_worker, wait_for, wait_terminal


class Receiver:
    """An OTLP/HTTP trace receiver on a loopback ``port`` (0: a free one): every span received, with its service
    name."""

    def __init__(self, port: int = 0) -> None:
        self.spans: list[dict[str, Any]] = []
        lock = threading.Lock()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                with lock:
                    for rs in req.resource_spans:
                        service = next((a.value.string_value for a in rs.resource.attributes
                                        if a.key == "service.name"), None)
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                attrs = {a.key: (a.value.string_value or a.value.int_value) for a in s.attributes}
                                spans.append({"service": service, "name": s.name, "kind": s.kind,
                                              "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                                              "parent": s.parent_span_id.hex(), "attrs": attrs,
                                              "links": [link.trace_id.hex() for link in s.links]})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_one_trace_from_post_ads_through_nats_to_the_worker(receiver: Receiver, fresh_nats, procs,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    # (the receiver is set up first so that it is torn down last: the processes flush their spans on exit)
    otel = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_BSP_SCHEDULE_DELAY": "100",
            "GAMEAD_RATELIMIT__ENABLED": "false", "GAMEAD_WORKER__FAULTS__RATE": "1",
            "GAMEAD_WORKER__FAULTS__MATCH": "^flaky", "GAMEAD_WORKER__FAULTS__ATTEMPTS": "1",
            "GAMEAD_WORKER__BACKOFF_BASE": "0.05"}
    nats = fresh_nats()
    api, url = start_api(nats.url, tmp_path, **otel)
    procs.append(api)
    worker = start_worker(nats.url, tmp_path, worker_id="tw", ready=True, **otel)
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=10) as client:
        ad_id = client.post("/ads", json=ad("traced", priority=2)).json()["id"]
        assert wait_terminal(client, ad_id)["status"] == "completed"

    def the_trace() -> list[dict[str, Any]] | None:
        process = [s for s in receiver.spans if s["name"] == "process gamead.ads.p2"
                   and s["attrs"].get("messaging.message.id") == ad_id]
        if not process:
            return None
        tid = process[0]["trace_id"]
        spans = [s for s in receiver.spans if s["trace_id"] == tid]
        return spans if any(s["name"] == "send gamead.ads.p2" for s in spans) and any(
            s["service"] == "gamead-api" and s["kind"] == 2 for s in spans) else None  # 2 = SERVER

    spans = wait_for(the_trace, timeout=15, what="the ad's spans from both processes")
    by_name = {s["name"]: s for s in spans}
    server = next(s for s in spans if s["kind"] == 2)
    send, process = by_name["send gamead.ads.p2"], by_name["process gamead.ads.p2"]
    assert {server["service"], send["service"], process["service"]} == {"gamead-api", "gamead-worker"}
    assert server["service"] == send["service"] == "gamead-api" and process["service"] == "gamead-worker"
    # one trace: POST /ads → send (child of the server span) → process (child of send, across NATS)
    assert send["parent"] == server["span_id"] and process["parent"] == send["span_id"]
    assert send["kind"] == 4 and process["kind"] == 5  # PRODUCER, CONSUMER
    assert process["attrs"]["messaging.system"] == "nats"
    assert process["attrs"]["messaging.destination.name"] == "gamead.ads.p2"
    assert process["attrs"]["messaging.nats.delivery_count"] == 1
    assert process["attrs"]["gamead.outcome"] == "completed"

    # a retry is a new process span in the same trace; the worker's log line about it carries the ids as fields
    with httpx.Client(base_url=url, timeout=10) as client:
        flaky = client.post("/ads", json=ad("flaky once", priority=2)).json()["id"]
        record = wait_terminal(client, flaky)
    assert record["status"] == "completed" and record["attempts"] == 2

    def retried() -> list[dict[str, Any]] | None:
        got = [s for s in receiver.spans if s["name"] == "process gamead.ads.p2"
               and s["attrs"].get("messaging.message.id") == flaky]
        return got if len(got) == 2 else None

    attempts = sorted(wait_for(retried, timeout=15, what="two process spans of the flaky ad"),
                      key=lambda s: s["attrs"]["messaging.nats.delivery_count"])
    assert attempts[0]["trace_id"] == attempts[1]["trace_id"]
    assert [a["attrs"]["gamead.outcome"] for a in attempts] == ["retried", "completed"]
    assert [a["attrs"]["messaging.nats.delivery_count"] for a in attempts] == [1, 2]
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    retry_line = next(r for r in lines if r.get("ad_id") == flaky and "retry in" in r["message"])
    assert retry_line["trace_id"] == attempts[0]["trace_id"] and retry_line["span_id"] == attempts[0]["span_id"]
    assert retry_line["worker_id"] == "tw" and retry_line["priority"] == 2 and retry_line["delivery"] == 1
    # attack29a F2: the JetStream delivery count is `delivery`, never `attempt` beside a message's "attempt N"
    assert "attempt" not in retry_line

    # a replayed ad's trace links to the trace it died in: a worker whose injected faults are permanent kills it
    # (an ad without letters, the analyser's own permanent error, is refused at submit since attack29b F3)
    worker.stop()
    procs.append(start_worker(nats.url, tmp_path, worker_id="td", ready=True, **{
        **otel, "GAMEAD_WORKER__FAULTS__MATCH": "^doomed", "GAMEAD_WORKER__FAULTS__MODE": "permanent",
        "GAMEAD_WORKER__FAULTS__ATTEMPTS": "0"}))
    with httpx.Client(base_url=url, timeout=10) as client:
        doomed = client.post("/ads", json=ad("doomed ad", priority=2)).json()["id"]
        assert wait_terminal(client, doomed)["status"] == "dead"
        entry = client.get(f"/v1/dlq/{doomed}").json()
        assert client.post("/v1/dlq/replay", json={"ids": [doomed]}).status_code in (200, 201, 202)

    def first_process() -> dict[str, Any] | None:  # spans are exported in batches: it may not be here yet
        return next((s for s in receiver.spans if s["name"] == "process gamead.ads.p2"
                     and s["attrs"].get("messaging.message.id") == doomed), None)

    first = wait_for(first_process, timeout=15, what="the doomed ad's process span")
    assert entry["traceparent"].split("-")[1] == first["trace_id"]

    def replay_send() -> dict[str, Any] | None:
        return next((s for s in receiver.spans if s["name"] == "send gamead.ads.p2"
                     and s["attrs"].get("messaging.message.id") == doomed and s["links"]), None)

    replay = wait_for(replay_send, timeout=15, what="the replay's send span")
    assert replay["links"] == [first["trace_id"]] and replay["trace_id"] != first["trace_id"]
