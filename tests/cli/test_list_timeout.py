"""``gamead ads list`` waits for a page longer than one answer's ``client.timeout`` (list37; regress36 F1: with
``api.list_scan_limit`` 40,000 a 500-ad page took ~8 s on a busy stack and page 9 of a walk failed, exit 3 "got the
request but gave no answer (no answer within 10s)"). The API reads up to ``api.list_scan_limit`` records for one
page, and a read that stalls answers 503 ``scan_incomplete`` by itself, so the list's answer is waited for
``client.list_timeout`` (120 s) instead."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, all_threads_stopped, start_api, wait_for

#: the client gives up on an answer after 1 s and sends nothing again (the README's `client.*` settings)
QUICK = {"GAMEAD_CLIENT__TIMEOUT": "1", "GAMEAD_CLIENT__RETRY_FOR": "0"}
SLOW = 3.0  #: seconds the API is stopped while the CLI waits for its page: longer than client.timeout


def test_a_list_page_slower_than_client_timeout_is_waited_for(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """The API stopped (SIGSTOP by its PID) for 3 s with the request in its socket: the page comes once it goes on.
    Figure before: exit 3, ``error: the gamead API at … got the request but gave no answer (no answer within 1s): a
    read: nothing was changed``."""
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=10) as http:
        ids = {http.post("/ads", json=ad(f"Slow page {i}")).json()["id"] for i in range(3)}
    os.kill(api.pid, signal.SIGSTOP)
    resume = threading.Timer(SLOW, os.kill, (api.pid, signal.SIGCONT))
    try:
        wait_for(lambda: all_threads_stopped(api.pid), timeout=10, interval=0.005, what="the API to stop")
        resume.start()
        cli = CliRunner().invoke(app, ["ads", "list", "--api", url, "-o", "json"], env=QUICK)
    finally:
        resume.cancel()
        os.kill(api.pid, signal.SIGCONT)
    assert cli.exit_code == 0, cli.output
    page = json.loads(cli.stdout)
    assert {item["id"] for item in page["items"]} == ids and page["complete"], page
