"""SIGTERM, SIGHUP and Ctrl-C while a ``gamead`` command starts (newcomer35 F6): before, a signal in a CLI's first
1-3 s on a loaded machine (its imports, its settings, before its handlers existed) ended ``gamead up``, ``worker``,
``serve`` and ``submit --count`` by the signal with no line (exit -15 / -1 as :mod:`subprocess` says). Now: one red
line saying what was stopped and that nothing was started or sent, and 143 / 129 / 130.

Each command runs in a fresh interpreter (never the fork server: its imports are the point), held at a fixed point
of its start by a ``sitecustomize`` on its ``PYTHONPATH`` that, at the first import of a named module or the first
audit event (PEP 578) of a name, creates a marker file and waits for a release file. The test
waits for the marker, then signals the process by its PID. No sleep decides anything."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.forked_popen import GameadPopen
from tests.support import clean_env, gamead_argv, sigint_reaches_it, wait_for

#: the ``sitecustomize`` of the held process: waits at the first import of module ``$HOLD_AT`` (a finder first on
#: ``sys.meta_path``: ``importlib.import_module`` raises no ``import`` audit event) or at its first audit event
#: ``$HOLD_AT``
HOLD_SITE = """
import os, sys, time

_AT, _HELD = os.environ.get("HOLD_AT", ""), []


def _hold():
    _HELD.append(_AT)
    open(os.environ["HOLD_MARK"], "w").close()
    deadline = time.monotonic() + 120  # never held for ever if the test is gone
    while not os.path.exists(os.environ["HOLD_UNTIL"]) and time.monotonic() < deadline:
        time.sleep(0.01)


class _HoldAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == _AT and not _HELD:
            _hold()
        return None


def _hold_at_event(event, args):
    if event == _AT and not _HELD:
        _hold()


if _AT == "typer.main.get_command":  # where Typer builds the command tree, after gamead_cli.root's import
    import typer.main

    _built = typer.main.get_command

    def _held_get_command(app):
        _hold()
        return _built(app)

    typer.main.get_command = _held_get_command
elif _AT:
    sys.meta_path.insert(0, _HoldAtImport())
    sys.addaudithook(_hold_at_event)
"""


class Held:
    """``gamead <args>`` started in ``tmp_path``, held at ``at`` (a module name or an audit event)."""

    def __init__(self, tmp_path: Path, at: str, *args: str, preexec: Callable[[], None] | None = None) -> None:
        site = tmp_path / "hold-site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(HOLD_SITE)
        self.mark, self.until = tmp_path / "held", tmp_path / "go-on"
        path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        env = clean_env(PYTHONPATH=path, HOLD_AT=at, HOLD_MARK=str(self.mark), HOLD_UNTIL=str(self.until))
        self.proc = GameadPopen(gamead_argv(*args), env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=preexec)  # noqa: PLW1509
        wait_for(lambda: self.mark.exists() or self.proc.poll() is not None, timeout=120, what=f"the hold at {at}")
        assert self.mark.exists(), self.proc.communicate()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def end(self) -> tuple[int, str, str]:
        """Release the hold; the exit code, stdout and stderr once it has ended."""
        self.until.touch()
        try:
            out, err = self.proc.communicate(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, out, err


def _ended_by_sigint(held: Held) -> str:
    """SIGINT to ``held``, its hold released: its stderr once it has ended with 130 (terminated if it served on)."""
    held.signal(signal.SIGINT)
    held.until.touch()
    try:
        assert held.proc.wait(timeout=60) == 130
    finally:
        if held.proc.poll() is None:
            held.proc.terminate()
    return held.proc.communicate(timeout=60)[1]


def _one_red_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("at", "args", "sig", "code", "line"), [
    # the command's own module (FastAPI, nats-py, uvicorn…): the longest part of a start
    ("gamead_cli.commands.worker", ("worker", "--nats-url", "nats://127.0.0.1:{port}"), signal.SIGTERM, 143,
     "interrupted (SIGTERM) while gamead worker was starting: nothing was started"),
    # before the error boundary itself is imported (typer, the root group)
    ("typer", ("serve", "--port", "{port}", "--nats-url", "nats://127.0.0.1:{port}"), signal.SIGTERM, 143,
     "interrupted (SIGTERM) while gamead serve was starting: nothing was started"),
    ("gamead_cli.commands.submit", ("submit", "--count", "3", "--api", "http://127.0.0.1:{port}"), signal.SIGHUP,
     129, "interrupted (SIGHUP) while gamead submit was starting: nothing was sent"),
    # imported, while Typer builds the command tree (load58A: a traceback of KeyboardInterrupt, exit -2)
    ("typer.main.get_command", ("submit", "--count", "3", "--api", "http://127.0.0.1:{port}"), signal.SIGTERM,
     143, "interrupted (SIGTERM) while gamead submit was starting: nothing was sent"),
])
def test_a_signal_while_a_command_imports_is_one_line_and_its_exit_code(
        tmp_path: Path, at: str, args: tuple[str, ...], sig: int, code: int, line: str,
        closed_port: Callable[[], int]) -> None:
    """Figures: held at ``import gamead_cli.commands.worker`` (or ``typer``, ``gamead_cli.commands.submit``), the
    signal gave exit -15 / -1 and empty stderr before; held in ``typer.main.get_command``, a KeyboardInterrupt
    traceback and exit -2."""
    port = str(closed_port())
    held = Held(tmp_path, at, *(a.format(port=port) for a in args))
    held.signal(sig)
    returncode, out, err = held.end()
    assert (returncode, out) == (code, ""), err
    assert _one_red_line(err) == f"error: {line}"


def test_a_sighup_inside_gamead_ups_body_before_its_handlers_starts_nothing(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """Held at ``gamead up``'s first act (raising its open-files limit: ``resource.setrlimit``, after the command
    line is parsed, before its stop handlers): SIGHUP (a closed terminal) ends it with one line, exit 129, and no
    data dir made. Before: killed by SIGHUP (-1), no line."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 64:
        pytest.skip("the open-files hard limit leaves nothing to raise")

    def lower_soft_limit() -> None:  # so that up raises it: the audit event it is held at
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, hard))

    data = tmp_path / "data"
    held = Held(tmp_path, "resource.setrlimit", "up", "--data-dir", str(data), "--port", str(closed_port()),
                preexec=lower_soft_limit)
    held.signal(signal.SIGHUP)
    returncode, out, err = held.end()
    assert (returncode, out) == (129, ""), err
    assert _one_red_line(err) == "error: interrupted (SIGHUP) while gamead up was starting: nothing was started"
    assert not data.exists()


def test_ctrl_c_while_the_root_options_are_parsed_is_one_line_not_a_silent_130(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """Typer imports pydantic while it parses the root's options, and made a Ctrl-C there a silent exit 130.
    Figure: held at ``import pydantic``, SIGINT gave 130 and empty stderr before."""
    held = Held(tmp_path, "pydantic", "worker", "--nats-url", f"nats://127.0.0.1:{closed_port()}",
                preexec=sigint_reaches_it)
    held.signal(signal.SIGINT)
    returncode, out, err = held.end()
    assert (returncode, out) == (130, ""), err
    assert _one_red_line(err) == "error: interrupted while gamead worker was starting: nothing was started"


def test_a_sighup_inherited_ignored_stays_ignored_while_a_sigterm_is_handled(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """``nohup gamead worker …``: SIGHUP ignored at exec stays ignored from the first instant (no line, no exit for
    it), and a SIGTERM after it is the one the line names. Before: the SIGTERM killed it silently (-15)."""

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    held = Held(tmp_path, "gamead_cli.commands.worker", "worker", "--nats-url", f"nats://127.0.0.1:{closed_port()}",
                preexec=nohup)
    held.signal(signal.SIGHUP)  # a handler would run first (signals are handled in number order): exit 129
    held.signal(signal.SIGTERM)
    returncode, out, err = held.end()
    assert (returncode, out) == (143, ""), err
    assert _one_red_line(err) == "error: interrupted (SIGTERM) while gamead worker was starting: nothing was started"


def test_sighup_stops_a_serving_api_as_sigterm_does(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """``gamead serve`` had no SIGHUP handler at all (uvicorn takes SIGINT and SIGTERM): a closed terminal ended it
    mid-request, without its shutdown. Now SIGHUP stops serving as SIGTERM does (its lifespan's shutdown runs), then
    the process ends by it (-1), as uvicorn ends it by SIGTERM. Figure: before, exit -1 at once, no
    ``Application shutdown complete.`` in its log."""
    import httpx

    from tests.support import Proc, check_port_taken, on_a_free_port

    def start(port: int) -> Proc:
        """serve on a picked ``port``, once it answers there; PortTaken (picked again) if another process took it."""
        api = f"http://127.0.0.1:{port}"
        serve = Proc("api", gamead_argv("serve", "--port", str(port)),
                     clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{closed_port()}"), tmp_path / f"api-{port}.log",
                     cwd=tmp_path).start()

        def answers() -> bool:
            check_port_taken(serve, api)
            try:
                return httpx.get(f"{api}/healthz", timeout=2).status_code > 0
            except httpx.HTTPError:
                return False

        try:
            wait_for(answers, timeout=60, what="the API serving")
        except BaseException:
            serve.kill()
            raise
        return serve

    serve = on_a_free_port(start)
    try:
        serve.signal(signal.SIGHUP)
        assert serve.popen is not None
        assert serve.popen.wait(timeout=60) == -signal.SIGHUP
        assert "Application shutdown complete." in serve.output(), serve.output()[-2000:]
    finally:
        serve.kill()


def test_a_sigint_inherited_ignored_still_stops_serve_before_it_serves(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """attack39b F17: ``gamead serve &`` from a script has SIGINT ignored (an ignored signal stays ignored across
    ``exec``), and its ``kill -INT`` in the ~0.5 s between the ``connections: at most …`` line and uvicorn's own
    handlers (which take SIGINT whatever it was) was dropped: the API served on (714 s, until a SIGTERM). Held at
    uvicorn's loop import (``uvicorn.loops.uvloop``, the first thing ``server.run`` does), SIGINT now ends it:
    one line, 130. Figure before: still held, then serving (ended by the test)."""

    def background() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    # serve checks its port before it is held here: port 0 (any free one, bound by serve itself); before (nothing54)
    # a port bound here and let go, anyone's until serve's check
    held = Held(tmp_path, "uvicorn.loops.uvloop", "serve", "--port", "0", "--nats-url",
                f"nats://127.0.0.1:{closed_port()}", preexec=background)
    err = _ended_by_sigint(held)
    assert err.strip().splitlines()[-1] == "error: interrupted", err


def test_a_command_run_off_the_main_thread_with_sigint_ignored_takes_nothing() -> None:
    """The take of an inherited-ignored SIGINT (above) is the main thread's only: ``gamead submit`` invoked from a
    thread (a test's CliRunner, an embedding program) while SIGINT is ignored (a background ``make test``) ended
    ``unexpected ValueError: signal only works in main thread`` (a fresh clone's run). Now it leaves SIGINT as it
    is there."""
    import threading

    from gamead_cli import first_signals

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            first_signals.command("submit")
        except BaseException as exc:  # noqa: BLE001 - the test's figure
            failed.append(exc)

    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=10)
        assert failed == [] and signal.getsignal(signal.SIGINT) == signal.SIG_IGN, failed
    finally:
        signal.signal(signal.SIGINT, before)
        first_signals.none_yet(command=None, starting=False)


def test_a_sigint_inherited_ignored_during_the_imports_ends_serve_too(
        tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """regress39 F6: the take above began once the command was parsed, after the CLI's imports (0.5-2 s loaded): a
    ``kill -INT`` of ``gamead serve &`` then was still dropped and it served on. Held at ``import typer`` (before
    the root group exists), SIGINT with SIGINT ignored at exec now ends it: one line, 130. Figure before: served on,
    ended by the test after 60 s."""

    def background() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    held = Held(tmp_path, "typer", "serve", "--port", str(closed_port()), "--nats-url",
                f"nats://127.0.0.1:{closed_port()}", preexec=background)
    err = _ended_by_sigint(held)
    assert _one_red_line(err) == "error: interrupted while gamead serve was starting: nothing was started"
