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
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    summary: dict[str, Any] = {"maybeQueued": 3, "_unsure": {i: (f"ads.ndjson:{i + 1}", f"01m8ad{i:020d}")
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
