"""Settling a bulk submit's "may be queued" ads: a Ctrl-C (or SIGTERM, raised as one) during the lookup."""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gamead_cli.client import ApiClient
from gamead_cli.submit.settling import settle


def test_a_ctrl_c_during_the_lookup_marks_the_run_interrupted() -> None:
    """review30b F3: the first Ctrl-C or SIGTERM during the lookup of "may be queued" ads was swallowed: the run
    went on (the recheck, ``--wait``) and exited 1, not 143. An API (a small HTTP server here: the lookup's own
    request is what is being interrupted) receives the first lookup and the process gets SIGINT before it answers:
    the summary says interrupted, and the ads stay "may be queued"."""
    seen = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not seen.is_set():
                seen.set()
                os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, while the lookups run
            body = json.dumps({"error": {"code": "not_found", "message": "no ad"}}).encode()
            try:
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the interrupted client aborted its sockets: expected
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    summary: dict[str, Any] = {"maybeQueued": 3, "_unsure": {i: (f"ads.ndjson:{i + 1}", f"01m8ad{i:020d}", False)
                                                            for i in range(3)}}
    try:
        with ApiClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=10) as client:
            settle(summary, client)
    finally:
        signal.signal(signal.SIGINT, before)
        server.shutdown()
        server.server_close()
    assert seen.is_set()
    assert summary["interrupted"] is True, summary  # before: no "interrupted", the run went on and exited 1
    assert summary["maybeQueued"] == 3 and summary["maybeQueuedWhere"] == ["ads.ndjson:1-3"], summary


def test_a_lookup_refused_throughout_stops_after_a_run_of_failures_and_says_why() -> None:
    """review30b F4: every lookup refused (401 here: a token the API does not take) went on to the last of the ids
    (100,000 of them: 100,000 requests, each futures held at once) and the summary read as "looked up: still
    unknown". Now the lookup stops after :data:`GIVE_UP_AFTER` failures in a row, and the note and -o json say how
    many could not be looked up and why."""
    from gamead_cli.submit.settling import GIVE_UP_AFTER, LOOKUP_CONCURRENCY

    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            body = json.dumps({"error": {"code": "unauthorized", "message": "a bearer token is required"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    summary: dict[str, Any] = {"maybeQueued": 500, "_unsure": {i: (f"ads.ndjson:{i + 1}", f"01m8ad{i:020d}", False)
                                                              for i in range(500)}}
    try:
        with ApiClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=10) as client:
            settle(summary, client)
    finally:
        server.shutdown()
        server.server_close()
    assert GIVE_UP_AFTER <= len(asked) < GIVE_UP_AFTER + LOOKUP_CONCURRENCY, len(asked)  # before: all 500
    assert summary["maybeQueued"] == 500 and summary["notLookedUp"] == 500, summary
    assert summary["notLookedUpWhy"] == {
        f"not tried after {GIVE_UP_AFTER} lookups in a row failed": 500 - len(asked),
        "HTTP 401 unauthorized": len(asked)}, summary


def test_the_note_on_failed_lookups_names_each_reason_with_its_count() -> None:
    from collections import Counter

    from gamead_cli.submit.settling import failed_line, why_failed
    from gamead_core.errors import ApiClientError, ApiUnreachable, NoAnswer

    assert failed_line(Counter({"API unreachable (connection refused)": 812})) == \
        "could not look up 812 of them: API unreachable (connection refused)"
    assert failed_line(Counter({"API unreachable (no answer)": 20, "not tried within the lookup's 30 s": 792})) == \
        "could not look up 812 of them: 792 not tried within the lookup's 30 s, 20 API unreachable (no answer)"
    assert why_failed(ApiUnreachable("cannot reach the gamead API at http://127.0.0.1:9 (connection refused) — is "
                                     "`gamead up` running?")) == "API unreachable (connection refused)"
    assert why_failed(NoAnswer("the gamead API at http://h:1 got the request but gave no answer (no answer within "
                               "2.5s): a read: nothing was changed")) == "API unreachable (no answer)"
    assert why_failed(ApiClientError("too many", status=429, api_code="rate_limited")) == "HTTP 429 rate_limited"
