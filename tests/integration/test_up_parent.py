"""``gamead up`` and the process that started it (attack28a F5): ``make up``'s stack stops with the ``make``, even
when the ``make`` is SIGKILLed (a CI timeout, an IDE's stop button); ``nohup gamead up &`` from a shell that then
goes away keeps running (``--die-with-parent`` is opt-in, and the Makefile passes it).

Real processes throughout: the real ``make up`` recipe (its venv step skipped with ``-o``) or a small Python
parent, a real ``gamead up`` with its nats-server, API and worker. Every PID is read from
``<data_dir>/gamead-up.json`` with its start time, and a failing test SIGKILLs, by PID, whatever is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gamead_core.proc import die_with_parent, start_time
from tests.support import PortTaken, ad, clean_env, gamead_argv, on_a_free_port, pid_alive, wait_for, wait_terminal

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent  #: the venv the tests run in: the Makefile's $(VENV)
#: small bounds so the drain takes seconds, not the production defaults
FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING"}
#: a parent that starts its arguments as a child and waits (as a shell waits on `nohup gamead up &` until it exits)
PARENT = "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(600)"


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without GAMEAD_* and without an outer ``make``'s (``make test``'s) variables."""
    env = clean_env(**{**FAST, **extra})
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


@dataclass
class Started:
    """A parent process the test started, whose child is a ``gamead up`` writing ``data_dir/gamead-up.json``."""

    parent: subprocess.Popen[bytes]
    data_dir: Path
    out: Path
    seen: dict[int, int | None] = field(default_factory=dict)  #: pid → start time: up and every child it started

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def up_pid(self) -> int | None:
        """``gamead up``'s PID (its state file's ``pid``), recording it and every child it started so far."""
        try:
            doc = json.loads((self.data_dir / "gamead-up.json").read_text())
        except (OSError, ValueError):
            return None
        for pid in [doc["pid"], *(e["pid"] for e in doc["started"])]:
            self.seen.setdefault(int(pid), start_time(int(pid)))
        return int(doc["pid"])

    def names(self) -> set[str]:
        try:
            return {e["name"] for e in json.loads((self.data_dir / "gamead-up.json").read_text())["started"]}
        except (OSError, ValueError):
            return set()

    def wait_ready(self) -> int:
        """Wait for the stack (its "Press Ctrl-C" line, nats-server, the API and worker-1 started): up's PID."""
        def ready() -> int | None:
            if "choose another with --port" in self.output():  # the port picked was taken first (exit 5)
                raise PortTaken(self.output()[-1000:])
            if self.parent.poll() is not None:
                raise AssertionError(f"the parent exited with {self.parent.returncode}:\n{self.output()[-3000:]}")
            pid = self.up_pid()
            if "Press Ctrl-C" in self.output() and {"nats-server", "api", "worker-1"} <= self.names():
                return pid
            return None

        pid = wait_for(ready, timeout=240, interval=0.1, what="gamead up to be ready")
        self.up_pid()  # every child recorded, with its start time
        return pid

    def alive(self) -> list[int]:
        """The recorded PIDs still running (same PID *and* start time: never a later process reusing it)."""
        return [pid for pid, start in self.seen.items() if pid_alive(pid) and start_time(pid) == start]

    def kill_everything(self) -> None:
        for pid in [self.parent.pid, *self.alive()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.parent.wait(10)


def _start(argv: list[str], tmp_path: Path, data_dir: Path, *, name: str = "up", **env: str) -> Started:
    out = tmp_path / f"{name}.out"
    with open(out, "ab") as sink:  # the parent dies with pytest, however pytest dies
        parent = subprocess.Popen(argv, env=_env(**env), stdout=sink, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True,
                                  preexec_fn=die_with_parent())
    return Started(parent, data_dir, out)


def _ready_on_a_free_port(argv: Callable[[int], list[str]], tmp_path: Path, data_dir: Path,
                          **env: str) -> tuple[Started, int, int]:
    """``_start(argv(port))`` ready (:meth:`Started.wait_ready`): the stack, up's PID and its API port, picked again
    (:func:`on_a_free_port`) if another process took it before ``up`` claimed it; SIGKILLed if it is not ready."""
    def start(port: int) -> tuple[Started, int, int]:
        stack = _start(argv(port), tmp_path, data_dir, name=f"up-{port}", **env)
        try:
            return stack, stack.wait_ready(), port
        except BaseException:
            stack.kill_everything()
            raise

    return on_a_free_port(start)


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_sigkilling_the_make_of_make_up_stops_the_whole_stack(tmp_path: Path) -> None:
    """attack28a F5: ``make up``, then ``kill -9`` of the ``make`` left ``gamead up``, nats-server, the API and the
    workers running and serving. Now ``gamead up`` (passed ``--die-with-parent`` by the Makefile) notices within a
    second, says so and stops as on SIGTERM: every process it started is gone, and it said ``stopped``."""
    data_dir = tmp_path / "data"
    stack, up, _ = _ready_on_a_free_port(
        lambda port: ["make", "-s", "-C", str(ROOT), "-o", f"{VENV}/.installed", f"VENV={VENV}", "up",
                      f"ARGS=--port {port} --data-dir {data_dir} --workers 1 --max-workers 1"], tmp_path, data_dir)
    try:
        assert _ppid(up) == stack.parent.pid  # the repro: `gamead up` is make's own child
        assert len(stack.alive()) == 4  # up, nats-server, api, worker-1
        os.kill(stack.parent.pid, signal.SIGKILL)
        stack.parent.wait(10)
        wait_for(lambda: not stack.alive(), timeout=60, what="gamead up and every process it started to be gone")
        said = stack.output()
        assert (f"the process that started gamead up (pid {stack.parent.pid}) is gone (--die-with-parent): "
                "stopping the stack as on SIGTERM") in said
        assert "stopping: workers drain first" in said and said.rstrip().endswith("stopped")
        assert json.loads((data_dir / "gamead-up.json").read_text())["started"] == []
    finally:
        stack.kill_everything()


def test_without_the_flag_a_stack_whose_starter_is_gone_keeps_running_and_serving(tmp_path: Path) -> None:
    """``nohup gamead up &`` from a shell that then exits: the stack is orphaned on purpose and must keep running
    (``--die-with-parent`` is off by default). Its parent SIGKILLed, ``gamead up`` is reparented, and the stack
    still accepts and analyses an ad, every process of it running, nothing said of its parent."""
    data_dir = tmp_path / "data"
    stack, up, port = _ready_on_a_free_port(lambda port: [sys.executable, "-c", PARENT, *gamead_argv(
        "up", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1", "--no-autoscale")],
        tmp_path, data_dir)
    try:
        assert _ppid(up) == stack.parent.pid
        os.kill(stack.parent.pid, signal.SIGKILL)
        stack.parent.wait(10)
        wait_for(lambda: _ppid(up) != stack.parent.pid, timeout=10, what="gamead up to be reparented")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            answer = client.post("/ads", json=ad("Orphaned On Purpose", 1))
            assert answer.status_code == 202, answer.text
            assert wait_terminal(client, answer.json()["id"], timeout=60)["status"] == "completed"
            assert client.get("/readyz").status_code == 200
        assert sorted(stack.alive()) == sorted(stack.seen)  # up, nats-server, api, worker-1: all still there
        assert "is gone" not in stack.output() and "stopping" not in stack.output()
    finally:
        stack.kill_everything()


@pytest.mark.skipif(shutil.which("nohup") is None, reason="needs nohup")
def test_nohup_gamead_up_outlives_its_shell_and_the_terminals_sighup_and_still_stops_on_sigterm(
        tmp_path: Path) -> None:
    """``nohup gamead up &``, then the terminal closes: the shell goes away and sends its jobs SIGHUP. ``nohup``
    leaves SIGHUP ignored, and ``gamead up`` used to install its stop handler over it, so the stack stopped. Now it
    says SIGHUP is ignored, keeps running and analysing through the SIGHUP, and SIGTERM still stops everything."""
    data_dir = tmp_path / "data"
    stack, up, port = _ready_on_a_free_port(lambda port: [sys.executable, "-c", PARENT, "nohup", *gamead_argv(
        "up", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1", "--no-autoscale")],
        tmp_path, data_dir)
    try:
        assert ("SIGHUP was ignored when gamead up started (nohup?): closing the terminal leaves the stack running; "
                f"stop it with Ctrl-C or `kill {up}` (SIGTERM)") in stack.output()
        os.kill(stack.parent.pid, signal.SIGKILL)  # the shell gone …
        stack.parent.wait(10)
        os.kill(up, signal.SIGHUP)  # … and the SIGHUP it sends its jobs as the terminal closes
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            answer = client.post("/ads", json=ad("Past The Hangup", 1))
            assert answer.status_code == 202, answer.text
            assert wait_terminal(client, answer.json()["id"], timeout=60)["status"] == "completed"
        assert sorted(stack.alive()) == sorted(stack.seen) and "stopping" not in stack.output()
        os.kill(up, signal.SIGTERM)
        wait_for(lambda: not stack.alive(), timeout=60, what="gamead up and every process it started to be gone")
        assert stack.output().rstrip().endswith("stopped")
    finally:
        stack.kill_everything()


@pytest.mark.parametrize("then", ["the parent killed", "SIGHUP"])
def test_neither_a_parent_dying_nor_a_sighup_during_the_drain_hurries_it(tmp_path: Path, then: str) -> None:
    """review28 U1: ``timeout -k 5 10 make up`` (a CI step killed with a grace period): SIGTERM, forwarded, starts
    the drain; the parent is SIGKILLed meanwhile, and the parent watch sent a second SIGTERM, which hurried the
    workers (the ad handed back instead of finishing) and said the stack was stopping "as on SIGTERM" while it
    already was. Once a stop has begun the parent's death changes nothing: the drain goes on unhurried. Nor does
    a SIGHUP (``timeout`` around ``script``: its SIGTERM, then the terminal closed; before, the SIGHUP counted as
    a second stop signal and hurried the workers)."""
    data_dir = tmp_path / "data"
    # the ad hangs (a fault drill) so that the drain lasts its whole drain_timeout: the parent dies well within it
    stack, up, port = _ready_on_a_free_port(
        lambda port: [sys.executable, "-c", PARENT, *gamead_argv(
            "up", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1", "--no-autoscale",
            "--die-with-parent")], tmp_path, data_dir, GAMEAD_WORKER__DRAIN_TIMEOUT="10",
        GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="hang",
        GAMEAD_WORKER__FAULTS__MATCH="^Still Draining")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            ad_id = client.post("/ads", json=ad("Still Draining", 1)).json()["id"]
            wait_for(lambda: client.get(f"/ads/{ad_id}").json().get("workerId"), timeout=30,
                     what="the worker to start the ad")
        os.kill(up, signal.SIGTERM)  # the stop begins …
        wait_for(lambda: "stopping: workers drain first" in stack.output(), timeout=20, what="the drain to begin")
        if then == "SIGHUP":
            os.kill(up, signal.SIGHUP)  # … and its terminal closes
        else:
            os.kill(stack.parent.pid, signal.SIGKILL)  # … or the parent is killed during it
            stack.parent.wait(10)
        wait_for(lambda: not stack.alive(), timeout=90, what="gamead up and every process it started to be gone")
        said = stack.output()
        assert "is gone" not in said and "stopping now: workers hand their ads back" not in said, said[-3000:]
        assert said.rstrip().endswith("stopped")
    finally:
        stack.kill_everything()


#: ``gamead up`` whose stop handlers' last reset (:func:`up_signals.after_stop`) is followed at once by a SIGHUP:
#: a terminal closing in that instant, made deterministic (the reset is where ``up`` ends its stop)
LATE_HANGUP = """
import runpy, signal, sys
from gamead_cli.commands import up_signals
real = up_signals.after_stop
def then_a_hangup():
    real()
    signal.raise_signal(signal.SIGHUP)
up_signals.after_stop = then_a_hangup
sys.argv[0] = "gamead"
runpy.run_module("gamead_cli", run_name="__main__")
"""


#: the same, a SIGHUP just before the supervisor hands its signals back to ``up``'s stop handlers (it had set them
#: to the default action first, through asyncio's ``remove_signal_handler``: the SIGHUP ended ``up`` mid-stop)
HANGUP_AT_HAND_OVER = """
import runpy, signal, sys
from gamead_cli.commands import up_signals, up_supervise
real = up_supervise.install_stop_handlers
def hangup_then(handler):
    if handler is up_signals.request_stop and up_signals.stop_requested.is_set():
        signal.raise_signal(signal.SIGHUP)
    real(handler)
up_supervise.install_stop_handlers = hangup_then
sys.argv[0] = "gamead"
runpy.run_module("gamead_cli", run_name="__main__")
"""


@pytest.mark.parametrize("hook", [LATE_HANGUP, HANGUP_AT_HAND_OVER], ids=["after the last reset", "at the hand-over"])
def test_a_sighup_as_the_stop_ends_comes_after_its_stopped_line(tmp_path: Path, hook: str) -> None:
    """leftovers56: ``gamead up`` set SIGTERM/SIGHUP back to their default action (and Ctrl-C to the usual
    handler) before it said ``✓ stopped``: a SIGHUP in that instant (the terminal closing after a SIGTERM) ended a
    complete stop by the signal with no line (a Ctrl-C: ``error: interrupted``, 130). Now the line comes first.
    The supervisor's hand-over of its signals had the same instant at the default action (no line either)."""
    data_dir = tmp_path / "data"
    stack, up, _port = _ready_on_a_free_port(lambda port: [sys.executable, "-c", PARENT, sys.executable, "-c",
                                                            hook, "up", "--port", str(port), "--data-dir",
                                                            str(data_dir), "--workers", "1", "--no-autoscale"],
                                             tmp_path, data_dir)
    try:
        os.kill(up, signal.SIGTERM)
        wait_for(lambda: not stack.alive(), timeout=60, what="gamead up and every process it started to be gone")
        assert stack.output().rstrip().endswith("✓ stopped"), stack.output()[-3000:]
    finally:
        stack.kill_everything()
