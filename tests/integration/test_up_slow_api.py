"""stacks16 item 3: ``gamead up`` waits on a slow API start while the process makes progress, not a fixed 30 s.

Before: at load 20, importing the API took 18.6 s of wall time for 3.3 s of CPU, and ``up`` gave up after its
fixed ``API_READY_TIMEOUT`` (30 s) in 4 starts of 7 ("not ready after 30s … log is empty so far"). Now it waits
while the API's CPU time advances (or it waits for a CPU), up to a cap, says once why it waits, and gives up
after a stall window without progress. A real child process stands for the API, with a short stall window: one
that keeps using CPU for longer than the window is waited for; one asleep is given up on, said to be stuck."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from gamead_cli.commands import up_start as up_module
from gamead_core.errors import GameadError
from gamead_core.proc import port_owned_by
from gamead_core.start_watch import StartWatch
from gamead_core.supervisor import Child, Supervisor
from tests.support import PortTaken, on_a_free_port, wait_for

#: binds argv[1] at once (a port another process took: exit 1, "Address already in use"), spends CPU in small
#: slices for argv[2] s of wall time (a slow import), then answers /readyz 200 there
SLOW_START = """
import sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
port, slow = int(sys.argv[1]), float(sys.argv[2])
class Ready(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", port), Ready)
end = time.monotonic() + slow
while time.monotonic() < end:
    spent = time.process_time()
    while time.process_time() - spent < 0.1:
        pass
    time.sleep(0.2)
server.serve_forever()
"""


def _slow_api(sup: Supervisor, log_dir: Path) -> tuple[Child, int]:
    """The stand-in API started on a picked port, picked again (:func:`tests.support.on_a_free_port`) when another
    process took it before the stand-in bound it; returns it once it holds its port, and the port."""
    def start(port: int) -> tuple[Child, int]:
        api = sup.start("api", [sys.executable, "-c", SLOW_START, str(port), "8"], {}, log_dir / f"api-{port}.log")
        wait_for(lambda: not api.alive or api.pid is not None and port_owned_by(api.pid, port) is not False,
                 timeout=60, what="the stand-in API to bind its port")
        if not api.alive:
            said = (log_dir / f"api-{port}.log").read_text()
            sup.stop("api", 10)
            if "Address already in use" in said:
                raise PortTaken(f"port {port}: {said[-500:]}")
            raise AssertionError(f"the stand-in API exited: {said[-2000:]}")
        return api, port

    return on_a_free_port(start)


@pytest.mark.parametrize("busy", [True, False])
def test_a_start_using_cpu_is_waited_for_past_the_stall_window_and_an_idle_one_is_given_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy: bool) -> None:
    lines: list[str] = []
    monkeypatch.setattr(up_module, "say", lines.append)
    sup = Supervisor()
    nobody = socket.socket()  # bound, never listening: no process answers on its port (the idle start's)
    nobody.bind(("127.0.0.1", 0))
    if busy:
        api, port = _slow_api(sup, tmp_path)
    else:
        port = nobody.getsockname()[1]
        api = sup.start("api", [sys.executable, "-c", "import time; time.sleep(600)"], {}, tmp_path / "api.log")
    try:
        watch = StartWatch(time.monotonic(), stall_after=3.0, cap=300.0, note_after=1.0)
        if busy:
            up_module.wait_api_ready(f"http://127.0.0.1:{port}", port, api, watch)
            assert watch.idle_for(time.monotonic()) < 3.0  # it was ready, never stalled
        else:
            with pytest.raises(GameadError) as caught:
                up_module.wait_api_ready(f"http://127.0.0.1:{port}", port, api, watch)
            assert "stuck, not slow" in caught.value.message and "state S" in caught.value.message, \
                caught.value.message
        said = [line for line in lines if "is still starting after" in line]
        assert len(said) == 1 and f"the API (pid {api.pid})" in said[0] and "up to 300s, or until 3s pass" in said[0]
    finally:
        sup.stop_all(10)
        nobody.close()
