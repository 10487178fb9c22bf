"""The checks and waits of ``gamead up``'s start: a port another process holds, and the API's start watched
until it is ready (or stuck, or dead)."""

from __future__ import annotations

import time

import httpx

from gamead_cli import exitcodes
from gamead_cli.commands.up_console import say
from gamead_cli.commands.up_logs import last_log_line, refused_start
from gamead_cli.commands.up_signals import check_stop
from gamead_core.errors import ConfigError, GameadError
from gamead_core.proc import cpu_sample, port_free, port_owned_by
from gamead_core.start_watch import StartWatch
from gamead_core.supervisor import Child

#: Seconds the API's start may go without progress (its CPU time unchanged, not waiting for a CPU or a disk)
#: before ``gamead up`` gives up on it (imports, NATS connect, topology: :class:`StartWatch`) …
API_STALL_AFTER = 30.0
#: … and the most it waits on a start that keeps progressing (a loaded machine: 18.6 s to import at load 20)
API_START_CAP = 180.0
NATS_READY_TIMEOUT = 10.0


def check_port(host: str, port: int, what: str, flag: str) -> None:
    """Refuse (exit 5, as ``gamead serve`` and ``gamead worker`` refuse a taken port) a port ``what`` cannot bind."""
    if not port_free(host, port):
        raise ConfigError(f"port {port} on {host} is taken by another process (address already in use; another "
                          f"`gamead up`?): {what} cannot listen there — choose another with {flag}")


def wait_api_ready(url: str, port: int, api: Child, watch: StartWatch) -> object:
    """Wait for *our* API: its /readyz answers 200 and its PID holds the port (never another stack's), for as
    long as its process makes progress (``watch``: CPU time advancing, or waiting for a CPU; a loaded machine
    makes a start slow, not stuck), saying so once past ``watch.note_after``. Gives up at once if it died, after
    ``watch.stall_after`` s without progress or ``watch.cap`` s in all: the error says what /readyz last answered
    and what the API's log holds (an empty log said "see api.log" and nothing more). Returns the ready answer's
    JSON body (None if it was not JSON): what ``gamead up`` says of its topology (:mod:`.up_drift`).

    One HTTP client asks for the whole wait, each time on a new connection (no keep-alive, as before): a client
    per ask read httpx's CA bundle each time, ~25 ms of CPU every 0.1 s beside the start it waits on."""
    with httpx.Client(timeout=1, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        return _wait_api_ready(http, url, port, api, watch)


def _wait_api_ready(http: httpx.Client, url: str, port: int, api: Child, watch: StartWatch) -> object:
    last = "no answer on the port"
    while True:
        check_stop()
        if not api.alive:
            code = api.proc.returncode if api.proc is not None else "?"
            if code == exitcodes.CONFIG:
                raise refused_start(api)
            raise GameadError(f"the API exited during start-up (exit code {code}): "
                              f"{last_log_line(api.log_path) or 'no output'} — full log: {api.log_path}")
        try:
            answer = http.get(f"{url}/readyz")
            watch.serving(time.monotonic())
            ready = answer.status_code == 200
            last = f"/readyz answered {answer.status_code}: {' '.join(answer.text.split())[:200] or 'no body'}"
        except httpx.HTTPError as exc:
            ready = False
            last = f"/readyz: {type(exc).__name__}"
        if ready and api.pid is not None:
            owned = port_owned_by(api.pid, port)
            if owned is None or owned:
                try:
                    return answer.json()
                except ValueError:
                    return None
            last = f"another process holds port {port}"
        now = time.monotonic()
        verdict = watch.observe(now, cpu_sample(api.pid) if api.pid is not None else None)
        if verdict != "wait":
            break
        if watch.note_due(now):
            say(f"[yellow]![/] the API (pid {api.pid}) is still starting after {now - watch.started:.0f}s "
                f"({cpu_words(watch)}): a loaded machine makes its start slow; waiting while its process makes "
                f"progress (CPU time advancing, or waiting for a CPU), up to {watch.cap:g}s, or until "
                f"{watch.stall_after:g}s pass without any")
        time.sleep(0.1)
    why = (f"it has answered /readyz for {now - (watch.serving_since or now):.0f}s without being ready (its start "
           "is done: not a slow machine)" if verdict == "unready" else
           progress_words(watch, verdict, now) + ("" if verdict == "cap" else ": stuck, not slow"))
    tail = last_log_line(api.log_path)
    log_says = f"its log {api.log_path} ends: {tail}" if tail else f"its log {api.log_path} is empty so far"
    raise GameadError(f"the API at {url} was not ready after {now - watch.started:.0f}s (last: {last}); {why}; "
                      f"{log_says}")


def progress_words(watch: StartWatch, verdict: str, now: float) -> str:
    """Why a start is no longer waited for (``verdict``: ``cap`` or ``stalled``, :meth:`StartWatch.observe`), e.g.
    ``its process made no progress for the last 30s (3.3s of CPU so far, state S)``."""
    if verdict == "cap":
        return f"it kept making progress ({cpu_words(watch)}) up to the cap of {watch.cap:g}s"
    return f"its process made no progress for the last {watch.idle_for(now):.0f}s ({cpu_words(watch)})"


def cpu_words(watch: StartWatch) -> str:
    """``3.3s of CPU so far, state R`` from ``watch``'s last reading; ``its process cannot be read``."""
    if watch.cpu_seconds is None:
        return "its process cannot be read"
    return f"{watch.cpu_seconds:.1f}s of CPU so far, state {watch.state}"
