"""``gamead up``'s start-up wait: past its deadline the error says what /readyz last answered and what the API's log
holds ("not ready after 30s; see …/logs/api.log" pointed at an empty file)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from gamead_cli.commands.up_start import wait_api_ready
from gamead_core.errors import GameadError
from gamead_core.start_watch import StartWatch


class NotReady(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "not ready", "checks": {"nats": "down"}}).encode()
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("log_text", ["", "INFO starting\nWARNING nats: connection refused\n"])
def test_not_ready_says_what_readyz_answered_and_what_the_log_holds(tmp_path: Path, log_text: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log = tmp_path / "api.log"
    log.write_text(log_text)
    api = SimpleNamespace(alive=True, proc=None, pid=None, log_path=log)
    port = server.server_address[1]
    try:
        with pytest.raises(GameadError) as caught:
            wait_api_ready(f"http://127.0.0.1:{port}", port, api,  # type: ignore[arg-type]
                            StartWatch(time.monotonic(), stall_after=0.5))
    finally:
        server.shutdown()
        server.server_close()
    message = caught.value.message
    assert re.search(r"not ready after \d+s \(last: /readyz answered 503:", message) and '"nats": "down"' in message
    # it answers: its start is done, and no CPU reading buys it time (review16)
    assert re.search(r"it has answered /readyz for \d+s without being ready \(its start is done: not a slow "
                     r"machine\)", message), message
    if log_text:
        assert message.endswith(f"its log {log} ends: WARNING nats: connection refused")
    else:
        assert message.endswith(f"its log {log} is empty so far")
