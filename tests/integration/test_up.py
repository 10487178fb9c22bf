"""``gamead up``: the whole stack from one command, supervised, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from gamead_core.embedded import free_port
from tests.support import children_of, pid_alive, ad, clean_env, gamead_argv, wait_for, wait_terminal


def _pids_with(*needles: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if all(n in words for n in needles):
            found.append(int(entry.name))
    return found


def test_up_runs_supervises_and_stops_the_stack(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    out = tmp_path / "up.out"
    env = clean_env(GAMEAD_QUEUE__ACK_WAIT="2", GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="2000")
    with open(out, "wb") as sink:
        up = subprocess.Popen(gamead_argv("up", "--workers", "1", "--port", str(port), "--data-dir", str(data)),
                              env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "Press Ctrl-C" in out.read_text(), timeout=40, what="gamead up to be ready")
        text = out.read_text()
        assert url in text and "gamead submit" in text  # the URL and the next commands to try
        assert (data / "jetstream").is_dir()
        with httpx.Client(base_url=url, timeout=10) as client:
            ad_id = client.post("/ads", json=ad("Supervised", 2)).json()["id"]
            wait_for(lambda: client.get(f"/ads/{ad_id}").json()["status"] == "processing", timeout=20,
                     what="the worker to start the ad")
            (victim,) = _pids_with("worker", "local-1")
            os.kill(victim, signal.SIGKILL)
            record = wait_terminal(client, ad_id, timeout=40)
        assert record["status"] == "completed" and record["attempts"] == 2
        assert "died with signal 9" in out.read_text() and "restarted" in out.read_text()
        children = children_of(up.pid)
        assert len(children) == 3  # nats-server, the API, the (restarted) worker
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        assert "stopped" in out.read_text()
        assert not [pid for pid in children if pid_alive(pid)]
        assert not [p for p in _pids_with("-c", str(data / "nats.conf")) if pid_alive(p)]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
