"""Run the whole stack on this machine: an embedded nats-server, the API and autoscaled workers.

Workers scale between --workers and --max-workers with the queue; this process owns them and runs the
autoscaler. Every child that dies (nats-server and the API included) is restarted with a back-off, on the
same port and data dir; one frozen or hung for registry.ttl (nats-server: no answer on its /healthz) is named,
killed and restarted too. Ctrl-C, SIGTERM or SIGHUP (closing the terminal) stop everything cleanly: workers
drain first, then the API, then NATS; a second signal makes workers hand their ads back at once. If this
process is killed, its children stop too. One stack per --data-dir: a second one is refused.

Each worker serves Prometheus /metrics on its own port: local-k on the API port + k (8081, 8082, … beside
8080), or --metrics-port + k - 1; a taken port falls back to a free one, and the console says which.

Example: gamead up --workers 2 --max-workers 6 --port 8080
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.markup import escape
from rich.console import Console

from gamead_cli import exitcodes
from gamead_cli.options import ConfigOpt, settings_from
from gamead_cli.program import follow_up, gamead_program
from gamead_core.api.auth import auth_required
from gamead_core.config import GameadSettings
from gamead_core.datadir import DataDir
from gamead_core.embedded import EmbeddedNats, authorization, stack_credentials, wait_for_listener
from gamead_core.errors import ConfigError, GameadError
from gamead_core.log_bound import rotated
from gamead_core.logs import ConsoleLines
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.port_claims import PortClaims
from gamead_core.proc import alive, cpu_sample, port_free, port_owned_by, start_time
from gamead_core.redact import redact_url
from gamead_core.shutdown import mark_ours
from gamead_core.start_watch import StartWatch
from gamead_core.supervisor import Child, Supervisor

console = Console(stderr=True, highlight=False)
_console_ok = {"ok": True}
T = TypeVar("T")

#: Seconds the API's start may go without progress (its CPU time unchanged, not waiting for a CPU or a disk)
#: before ``gamead up`` gives up on it (imports, NATS connect, topology: :class:`StartWatch`) …
API_STALL_AFTER = 30.0
#: … and the most it waits on a start that keeps progressing (a loaded machine: 18.6 s to import at load 20)
API_START_CAP = 180.0
NATS_READY_TIMEOUT = 10.0
API_STOP_TIMEOUT = 15.0
NATS_STOP_TIMEOUT = 10.0
#: the most worker processes `gamead up` runs on one machine (each ~65 MB and one metrics port): a typo such as
#: --workers 10000 is refused (exit 2) instead of forking the machine to a halt
MAX_LOCAL_WORKERS = 64
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: names of the children in the supervisor (and in <data_dir>/gamead-up.json); workers are worker-<k>
NATS_CHILD = "nats-server"
API_CHILD = "api"


def say(message: str) -> None:
    """One console line; once the terminal is gone (SIGHUP), lines are dropped, never fatal."""
    if not _console_ok["ok"]:
        return
    try:
        console.print(message, highlight=False, soft_wrap=True)
    except (OSError, ValueError):
        _console_ok["ok"] = False


def _log_line(record: logging.LogRecord, text: str) -> None:
    """A warning (or worse) logged in this process, as a console line with its ``!`` (red from ERROR); the end of
    what one said (an INFO record marked ``ends_warning``) with a ``✓``."""
    if record.levelno < logging.WARNING:
        say(f"[green]✓[/] {escape(text)}")
    else:
        say(f"[{'red' if record.levelno >= logging.ERROR else 'yellow'}]![/] {escape(text)}")


def _child_env(settings: GameadSettings, nats_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["GAMEAD_NATS__URL"] = nats_url
    # unused by the children (embedded.* is up's own), but `config show --stack` then names the stack's data dir
    env["GAMEAD_EMBEDDED__DATA_DIR"] = str(settings.embedded.data_dir)
    env["GAMEAD_API__HOST"] = settings.api.host
    env["GAMEAD_API__PORT"] = str(settings.api.port)
    return env


def _credentials(settings: GameadSettings) -> dict[str, str | None]:
    """The credentials the embedded nats-server requires: those of ``nats`` (:func:`stack_credentials`)."""
    nats = settings.nats
    return {"token": nats.token.get_secret_value() if nats.token else None, "user": nats.user,
            "password": nats.password.get_secret_value() if nats.password else None}


def _credentials_line(made: bool, snapshot: Path, token: bool = False) -> str:
    """What ``gamead up`` says of its embedded nats-server's credentials (never the secret itself); ``token``:
    ``nats.token`` is configured (else ``nats.user``/``nats.password``: never both, the settings refuse it)."""
    if made:
        return f"requiring this stack's own token (nats.token in {snapshot}, which its children read)"
    return f"requiring the configured {'nats.token' if token else 'nats.user/nats.password'}"


def partitions_line(partitions: int) -> str:
    """What ``gamead up`` says of the queue: ``queue: 3 partitions (work streams GAMEAD_ADS, GAMEAD_ADS_1,
    GAMEAD_ADS_2)``, ``queue: 1 partition (work stream GAMEAD_ADS)`` (``queue.partitions``)."""
    from gamead_core.queue.partitions import work_streams

    streams = ", ".join(work_streams(partitions))
    if partitions == 1:
        return f"queue: 1 partition (work stream {streams}; queue.partitions)"
    return f"queue: {partitions} partitions (work streams {streams}; queue.partitions)"


#: the settings in force that every child of ``gamead up`` reads (``GAMEAD_CONFIG``), and its printed worker command
CONFIG_SNAPSHOT = "config-in-force.yaml"


def snapshot_config(path: Path | None, settings: GameadSettings, data_dir: Path) -> Path:
    """Write the settings ``gamead up`` runs with (``settings``: from the config file ``path``, None if there was
    none, the ``GAMEAD_*`` variables and its flags) that differ from the defaults
    (:func:`gamead_core.config.differing_dump`) to ``<data_dir>/config-in-force.yaml`` and return its absolute
    path, which every child is pointed at (``GAMEAD_CONFIG``): a child restarted or started later runs with the
    configuration of ``up``'s start, never with an edited ``./config.yaml``, nor with one created meanwhile; and
    the ``gamead worker --config …`` it prints runs as they do from another terminal, where none of the stack's
    ``GAMEAD_*`` is set (attack25 finding 2: a file of ``{}`` ran a worker with 1 partition against 3). Written
    (owner-only: it holds secrets) to a temporary file renamed over it. Raises :class:`ConfigError` (exit 5)
    if it cannot be written."""
    import yaml

    from gamead_core.config import differing_dump

    source = f"config file {path}" if path is not None else "no config file"
    head = (f"# the settings gamead up started with ({source}, GAMEAD_* variables, flags) that differ from the "
            "defaults;\n# every child reads this file: edit the config file and restart gamead up instead\n")
    text = head + yaml.safe_dump(differing_dump(settings), sort_keys=False, allow_unicode=True)
    snapshot = data_dir / CONFIG_SNAPSHOT
    _write_private(snapshot, text.encode())
    return snapshot.resolve()


def snapshot_env(env: dict[str, str], data_dir: Path) -> None:
    """Write the ``GAMEAD_*`` variables every child of ``gamead up`` is started with (``env``: the children's
    environment; its flags travel as such variables, e.g. ``GAMEAD_API__PORT``, ``GAMEAD_NATS__URL``) to
    ``<data_dir>/`` :data:`gamead_core.datadir.STACK_ENV_FILE`, for ``gamead config show --stack``. Owner-only, as
    the config copy: a variable may hold a secret."""
    from gamead_core.datadir import STACK_ENV_FILE

    ours = {k: v for k, v in sorted(env.items()) if k.upper().startswith("GAMEAD_")}  # as pydantic-settings reads
    _write_private(data_dir / STACK_ENV_FILE, (json.dumps(ours, indent=2) + "\n").encode())


def forget_env(data_dir: Path) -> None:
    """Remove what :func:`snapshot_env` wrote, if anything: at ``gamead up``'s start (an earlier run's) and end."""
    from gamead_core.datadir import STACK_ENV_FILE

    with contextlib.suppress(FileNotFoundError):
        (data_dir / STACK_ENV_FILE).unlink()


def _write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (a file of the data dir), owner-only whatever the umask (it may hold tokens and
    passwords: nats.url, auth.tokens), through a temporary file renamed over it: never half-written. Raises
    :class:`ConfigError` (exit 5) naming ``--data-dir`` when it cannot be written (a full disk)."""
    from gamead_core.datadir import data_dir_unusable

    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)  # an older .tmp left by a killed start would keep its mode through O_CREAT
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)  # owner-only before a byte
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # whatever the umask
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise data_dir_unusable(path.parent, exc) from None


def config_line(path: Path | None, snapshot: Path) -> str:
    """What ``gamead up`` says of its configuration, once at start: the file in force (or none) and that
    every child reads the settings of the start (:func:`snapshot_config`), so an edit waits for the next ``gamead up``."""
    what = f"config file {escape(str(path))}" if path is not None else "no config file (defaults, GAMEAD_* and flags)"
    return (f"[green]✓[/] config: {what}; every child runs with it as it is now (the settings in force, "
            f"GAMEAD_* and flags included: {escape(str(snapshot))}); an edit takes effect at the next gamead up")


def _gamead(*args: str) -> list[str]:
    return [sys.executable, "-m", "gamead_cli", *args]


def _log_tail(path: Path, nbytes: int) -> list[str]:
    """The lines of the last ``nbytes`` bytes of a child's log; [] if it cannot be read. A log holding no line
    (emptied by its bound just before: :func:`gamead_core.log_bound.bound_log`, copytruncate) gives those of its
    copy ``<name>.1``, where the child's last lines went, then its own."""
    lines = _file_tail(path, nbytes)
    if not any(line.strip() for line in lines):
        lines = _file_tail(rotated(path), nbytes) + lines
    return lines


def _file_tail(path: Path, nbytes: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - nbytes))
            return fh.read(nbytes).decode("utf-8", "replace").splitlines()  # bounded if it grows meanwhile
    except OSError:
        return []


def _last_log_line(path: Path, width: int = 240) -> str:
    """The last non-empty line of a child's log, shortened: why it died, on the console."""
    lines = [ln for ln in _log_tail(path, 8192) if ln.strip()]
    line = " ".join(lines[-1].split()) if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _child_error_line(path: Path) -> str:
    """The child's own ``error: …`` line (the last one in its log; ``gamead`` prints exactly one), whole and
    without the ``error:`` prefix; "" if there is none."""
    for line in reversed(_log_tail(path, 65536)):
        line = _ANSI.sub("", line).strip()
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return ""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def refused_start(child: Child) -> ConfigError:
    """The error that ends ``gamead up`` when ``child`` refused its configuration (exit code 5): the child's
    message once, whole (its fix included), then where its log is. Exit code 5, as the child's."""
    message = _child_error_line(child.log_path) or _last_log_line(child.log_path) or "no output"
    return ConfigError(f"{message} [{child.name} refused to start; log: {child.log_path}]")


def next_commands(api_url: str, program: str = "gamead", *,
                  worker: str | None = None, auth: bool = False) -> list[str]:
    """What to try next, each runnable verbatim in another terminal (``program`` is how it runs gamead, see
    :func:`gamead_program`). Every ``gamead`` line says ``--api api_url``, the default port's too: without it,
    run where another stack's ``./.gamead`` lies (or with ``GAMEAD_API_URL`` or a config's ``client.api_url``
    set), it would reach that other API (README, "Which API a command talks to"); only ``--api`` wins from
    anywhere.

    ``worker``: the command that starts a worker on this stack (:func:`worker_command`), given when ``gamead up``
    runs none (``--workers 0``): it comes first, and the submit hint has no ``--wait`` (with no worker an ad is
    never analysed, and ``--wait`` would only wait out its timeout).

    ``auth``: tokens are required (:func:`gamead_core.api.auth.auth_required`). The first line is then a shell
    comment saying to ``export GAMEAD_TOKEN=…`` (a token of ``auth.tokens``; never the token itself), the gamead
    lines read it from the environment, and the curl line sends it as ``Authorization: Bearer $GAMEAD_TOKEN``:
    given the export, every line runs verbatim."""
    api = f" --api {api_url}"
    wait = "" if worker else " --wait"
    note = ("# auth is on: first export GAMEAD_TOKEN=<a token of auth.tokens> (an operator's runs every line "
            "below; a submitter's the submits and ads list)")
    header = ' -H "Authorization: Bearer $GAMEAD_TOKEN"' if auth else ""
    return [
        *([note] if auth else []),
        *([worker] if worker else []),
        f"{program} submit --title 'Dragon Kingdom' --genre Strategy --cta 'Download Now'{wait}{api}",
        f"{program} submit --count 100 --rate 50{api}",
        f"{program} ads list{api}",
        f"{program} top{api}",
        f"{program} scale status{api}",
        f"curl -s{header} '{api_url}/ads?limit=5'",
    ]


def worker_command(program: str, nats_url: str | None, config: Path | None) -> str:
    """``gamead worker`` joining this stack from another terminal: ``--nats-url`` of the embedded nats-server
    (None: NATS comes from the config, as for ``gamead up``) and ``--config`` of ``config`` (``gamead up`` gives
    the copy of the configuration it started with, which its own children read: the joining worker runs as they do)."""
    parts = [program, "worker"]
    if config is not None:
        parts += ["--config", shlex.quote(str(config.resolve()))]
    if nats_url is not None:
        parts += ["--nats-url", nats_url]
    return " ".join(parts)


def fault_banner(settings: GameadSettings) -> str | None:
    """One line saying fault injection is on, and how, or None when it is off."""
    faults = settings.worker.faults
    if faults.rate <= 0:
        return None
    which = f"ads whose title matches /{escape(faults.match)}/" if faults.match else "ads"
    attempts = (f"their first {faults.attempts} attempt(s)" if faults.attempts else "every attempt")
    return (f"[bold yellow]![/] fault injection is ON: {faults.rate:.0%} of {which} fail on purpose, on {attempts}, "
            f"mode [bold]{faults.mode}[/] (worker.faults: rate, match, attempts, mode; "
            "GAMEAD_WORKER__FAULTS__RATE=0 turns it off)")


def _check_port(host: str, port: int, what: str, flag: str) -> None:
    """Refuse (exit 5, as ``gamead serve`` and ``gamead worker`` refuse a taken port) a port ``what`` cannot bind."""
    if not port_free(host, port):
        raise ConfigError(f"port {port} on {host} is taken by another process (address already in use; another "
                          f"`gamead up`?): {what} cannot listen there — choose another with {flag}")


class _StopRequested(Exception):
    """A stop signal arrived while the stack was starting."""


#: set by SIGINT / SIGTERM / SIGHUP. Signals set a flag, never raise: a stop must not tear a start apart.
_stop_requested = threading.Event()


def _request_stop(signum: int, frame: object) -> None:
    _stop_requested.set()


def _check_stop() -> None:
    if _stop_requested.is_set():
        raise _StopRequested


def _wait_api_ready(url: str, port: int, api: Child, watch: StartWatch) -> None:
    """Wait for *our* API: its /readyz answers 200 and its PID holds the port (never another stack's), for as
    long as its process makes progress (``watch``: CPU time advancing, or waiting for a CPU; a loaded machine
    makes a start slow, not stuck), saying so once past ``watch.note_after``. Gives up at once if it died, after
    ``watch.stall_after`` s without progress or ``watch.cap`` s in all: the error says what /readyz last answered
    and what the API's log holds (an empty log said "see api.log" and nothing more)."""
    last = "no answer on the port"
    while True:
        _check_stop()
        if not api.alive:
            code = api.proc.returncode if api.proc is not None else "?"
            if code == exitcodes.CONFIG:
                raise refused_start(api)
            raise GameadError(f"the API exited during start-up (exit code {code}): "
                              f"{_last_log_line(api.log_path) or 'no output'} — full log: {api.log_path}")
        try:
            answer = httpx.get(f"{url}/readyz", timeout=1)
            watch.serving(time.monotonic())
            ready = answer.status_code == 200
            last = f"/readyz answered {answer.status_code}: {' '.join(answer.text.split())[:200] or 'no body'}"
        except httpx.HTTPError as exc:
            ready = False
            last = f"/readyz: {type(exc).__name__}"
        if ready and api.pid is not None:
            owned = port_owned_by(api.pid, port)
            if owned is None or owned:
                return
            last = f"another process holds port {port}"
        now = time.monotonic()
        verdict = watch.observe(now, cpu_sample(api.pid) if api.pid is not None else None)
        if verdict != "wait":
            break
        if watch.note_due(now):
            say(f"[yellow]![/] the API (pid {api.pid}) is still starting after {now - watch.started:.0f}s "
                f"({_cpu_words(watch)}): a loaded machine makes its start slow; waiting while its process makes "
                f"progress (CPU time advancing, or waiting for a CPU), up to {watch.cap:g}s, or until "
                f"{watch.stall_after:g}s pass without any")
        time.sleep(0.1)
    why = (f"it kept making progress ({_cpu_words(watch)}) up to the cap of {watch.cap:g}s" if verdict == "cap" else
           f"it has answered /readyz for {now - (watch.serving_since or now):.0f}s without being ready (its start "
           "is done: not a slow machine)" if verdict == "unready" else
           f"its process made no progress for the last {watch.idle_for(now):.0f}s ({_cpu_words(watch)}): stuck, "
           "not slow")
    tail = _last_log_line(api.log_path)
    log_says = f"its log {api.log_path} ends: {tail}" if tail else f"its log {api.log_path} is empty so far"
    raise GameadError(f"the API at {url} was not ready after {now - watch.started:.0f}s (last: {last}); {why}; "
                      f"{log_says}")


def _cpu_words(watch: StartWatch) -> str:
    """``3.3s of CPU so far, state R`` from ``watch``'s last reading; ``its process cannot be read``."""
    if watch.cpu_seconds is None:
        return "its process cannot be read"
    return f"{watch.cpu_seconds:.1f}s of CPU so far, state {watch.state}"


class _Stack:
    """The children of one ``gamead up`` and the order they stop in: workers, then the API, then NATS."""

    def __init__(self, settings: GameadSettings, data: DataDir) -> None:
        self.settings = settings
        self.data = data
        self.sup = Supervisor(on_event=lambda msg: say(f"[yellow]![/] {escape(msg)}"),
                              on_spawn=lambda child: data.record(child.name, child.pid or 0),
                              on_end=lambda child: data.forget(child.pid or 0),
                              on_poll=self._state_file_again, on_exit=self._on_exit,
                              refusal_codes=frozenset({exitcodes.CONFIG}),
                              explain=lambda child: _child_error_line(child.log_path) or _last_log_line(child.log_path))

    def _state_file_again(self) -> None:
        """A rewrite of gamead-up.json failed (said when a start could not be recorded): retried at every poll with
        back-off; said once when the file lists the processes that run again."""
        if self.data.retry_write():
            say(f"[green]✓[/] {escape(str(self.data.state_file))} written again: it lists the processes that run now")

    def _on_exit(self, child: Child, code: int) -> None:
        if code in self.sup.refusal_codes:
            return  # up ends with the child's own message (refused_start), said once
        if code > 0 and (line := _last_log_line(child.log_path)):  # an exit, not a kill: say why
            say(f"  [dim]{escape(child.name)} log: {escape(line)}[/]")

    def hurry_workers(self) -> None:
        """A second stop signal: SIGTERM again to every worker still running (they hand back at once)."""
        for entry in self.data.live():  # same PID *and* start time: never a process that reused the number
            pid = entry["pid"]
            if entry["name"].startswith("worker") and alive(pid) and start_time(pid) == entry["start"]:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        say("stopping now: workers hand their ads back")

    def stop_all(self, drain_timeout: float) -> None:
        workers = [n for n in self.sup.children if n not in (API_CHILD, NATS_CHILD)]
        self.sup.stop_many(workers, timeout=drain_timeout + 5)
        self.sup.stop_many([API_CHILD], timeout=API_STOP_TIMEOUT)
        self.sup.stop_many(list(self.sup.children), timeout=NATS_STOP_TIMEOUT)  # nats last


def _install(handler: Callable[[int, Any], None]) -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, handler)


def _show_decision(entry: dict[str, object]) -> None:
    if entry.get("error"):
        say(f"[red]![/] autoscaler: {escape(str(entry['reason']))}: {escape(str(entry['error']))}")
    elif entry.get("desired") != entry.get("current"):
        say(f"[cyan]↕[/] autoscaler: {escape(str(entry['reason']))}")


def _start_probe(settings: GameadSettings, nc: Any, js: Any, scaler: Any, stop: asyncio.Event,
                 metrics: WorkerMetricsPorts | None = None) -> asyncio.Task[None]:
    """The liveness probe of the local workers and the API (:mod:`gamead_core.scaling.probe`): a child whose
    registry heartbeat is silent for ``registry.ttl`` is asked whether it is alive (the API on its ``/healthz``, a
    worker on its ``/metrics`` from ``metrics``; :mod:`gamead_core.scaling.answers`). One that answers is left
    running, and the console says once that it is alive but cannot write its heartbeat (with its log's heartbeat
    error), and once when its heartbeat is back. One that does not answer is judged on its process (stopped, idle,
    busy, wedged: :func:`~gamead_core.scaling.probe.judge`) and, if so judged, named on the console and SIGKILLed,
    so that the supervisor restarts it (and its held ads are recovered as for any dead worker); a scale-down stops
    such workers first."""
    import socket

    from gamead_core.registry import Registry
    from gamead_core.scaling.answers import Answer, ask, heartbeat_error, liveness_client
    from gamead_core.scaling.local import worker_id_of
    from gamead_core.scaling.probe import (
        HeartbeatProbe,
        Silent,
        Verdict,
        Watched,
        api_key,
        run_probe,
    )

    registry = Registry(nc, js, settings.registry, replicas=settings.queue.replicas,
                        timeout=settings.nats.request_timeout)
    probe = HeartbeatProbe(settings.registry.ttl)
    host = socket.gethostname()  # as this machine's children announce it in their entries
    def unhealthy(name: str) -> bool:
        child = scaler.supervisor.children.get(name)
        return probe.unhealthy(name, child.pid if child is not None else None, time.monotonic())

    scaler.unhealthy = unhealthy

    def watched() -> list[Watched]:
        out = []
        for name in [*scaler.worker_names, API_CHILD]:  # the API is matched by host and pid (probe.api_key)
            child = scaler.supervisor.children.get(name)
            if child is not None and child.alive and child.pid is not None:
                key = api_key(child.pid, host) if name == API_CHILD else worker_id_of(name)
                out.append(Watched(name, key, child.pid, child.started_at))
        for pid in [p for p in [*told, *answered] if p not in {w.pid for w in out}]:
            told.pop(pid, None)  # gone (killed, restarted, stopped)
            answered.pop(pid, None)
        return out

    told: dict[int, set[str]] = {}  # pid left running while silent → the verdicts already said of it
    answered: dict[int, int] = {}  # pid silent → readings in a row at which it answered its liveness endpoint

    def replace(silent: Silent, verdict: Verdict) -> None:
        child = scaler.supervisor.children.get(silent.name)
        if child is None or child.pid != silent.pid or not child.alive:
            return  # replaced, stopped or dead meanwhile
        if not verdict.kill:
            streak = answered[silent.pid] = answered.get(silent.pid, 0) + 1 if verdict.why == "answering" else 0
            if streak == 1:  # a loop blocked for a while answers first and beats at the next reading: wait for it
                return
            if verdict.why not in told.setdefault(silent.pid, set()):
                told[silent.pid].add(verdict.why)
                error = (heartbeat_error(child.log_path, time.time() - silent.silent_for)
                         if verdict.why == "answering" else None)
                say(silent_line(silent, verdict, settings.registry.ttl, error))
            return
        told.pop(silent.pid, None)
        answered.pop(silent.pid, None)
        say(silent_line(silent, verdict, settings.registry.ttl))
        try:
            os.kill(silent.pid, signal.SIGKILL)  # a stopped process (SIGSTOP) dies by nothing else
        except ProcessLookupError:
            pass

    def back(worker: Watched, silent_for: float) -> None:
        answered.pop(worker.pid, None)
        said = told.pop(worker.pid, set())
        if not said:
            return  # nothing was said of its silence
        if said == {"answering"}:
            say(f"[green]✓[/] {escape(worker.name)} (pid {worker.pid}) writes its registry heartbeat again, after "
                f"{silent_for:.1f}s of silence (alive all along); left running")
            return
        say(f"[green]✓[/] {escape(worker.name)} (pid {worker.pid}) renewed its registry heartbeat again after "
            f"{silent_for:.1f}s of silence: it was busy, not hung; left running")

    async def probing() -> None:
        async with liveness_client() as client:  # one for the probe's life, closed when it stops (review27 F4)
            async def check(worker: Watched) -> Answer | None:
                if worker.name == API_CHILD:
                    return await ask(client, f"http://127.0.0.1:{settings.api.port}/healthz")
                url = metrics.local_url(worker.worker_id) if metrics is not None else None
                return await ask(client, url) if url is not None else None  # no /metrics: its process alone

            await run_probe(probe, registry.list, watched, replace, stop, settings.registry.heartbeat_interval,
                            on_back=back, check=check, host=host)

    return asyncio.create_task(probing(), name="gamead-up-probe")


def _health_url(embedded: Any) -> str:
    """The embedded nats-server's ``/healthz`` now (its monitoring port may move at a restart: :func:`_nats_argv`)."""
    return f"http://127.0.0.1:{embedded.monitor_port}/healthz?js-enabled-only=true"


def _nats_argv(embedded: Any, claims: Any) -> list[str]:
    """The embedded nats-server's argv for a (re)start, its config written again: a monitoring port another
    process took meanwhile moves to a free one, said on the console (nats-server exits at once when it cannot
    listen there, and the data plane must never stay down for a liveness probe's port: attack27b F7)."""
    from gamead_core.proc import port_free

    if embedded.monitor_port and not port_free("127.0.0.1", embedded.monitor_port):
        taken = embedded.monitor_port
        embedded.monitor_port = claims.pick("127.0.0.1", "its embedded nats-server's /healthz")
        say(f"[yellow]![/] the nats-server's monitoring port {taken} is taken by another process: its /healthz "
            f"moves to http://127.0.0.1:{embedded.monitor_port}/healthz")
    return embedded.write_argv()


def _watch_nats(settings: GameadSettings, stack: _Stack, url: Callable[[], str],
                stop: asyncio.Event) -> asyncio.Task[None]:
    """The liveness watch of the embedded nats-server (:mod:`gamead_core.scaling.nats_watch`): one that does not
    answer ``url()`` (its ``/healthz``, which may move at a restart) for ``registry.ttl`` is named on the console with its PID and state and, if
    frozen or hung, SIGKILLed, so that the supervisor restarts it as after a crash; one busy is said and waited for."""
    from gamead_core.scaling.nats_watch import NatsWatch, Note, run_nats_watch

    def target() -> tuple[int, float] | None:
        child = stack.sup.children.get(NATS_CHILD)
        if child is None or child.retired or not child.alive or child.pid is None:
            return None
        return child.pid, child.started_at

    def tell(note: Note) -> None:
        say(f"[green]✓[/] {escape(note.text)}" if note.good else f"[yellow]![/] {escape(note.text)}")

    def kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a stopped process (SIGSTOP) dies by nothing else

    return asyncio.create_task(run_nats_watch(NatsWatch(settings.registry.ttl), target, url, tell, kill, stop),
                               name="gamead-up-nats-watch")


def silent_line(silent: Any, verdict: Any, ttl: float, error: str | None = None) -> str:
    """The console line of a child silent past ``ttl`` (``registry.ttl``, s): alive (its liveness endpoint
    answered) but unable to write its heartbeat (``error``: its log's last heartbeat error, if known), killed
    (frozen, hung or wedged, and why) or left running (busy or starved of CPU), from the probe's
    :class:`~gamead_core.scaling.probe.Silent` and :class:`~gamead_core.scaling.probe.Verdict`."""
    from gamead_core.scaling.probe import BUSY_FACTOR

    what = (f"has not renewed its registry heartbeat for {silent.silent_for:.1f}s (registry.ttl {ttl:g}s)"
            if silent.beat_before else
            f"has written no registry heartbeat in the {silent.silent_for:.1f}s since its start")
    who = f"{escape(silent.name)} (pid {silent.pid}) {what}"
    if verdict.why == "answering":
        why = f"its heartbeat failed: {escape(error)}" if error else "its log names no heartbeat error yet"
        quiet = (f"no registry heartbeat renewed for {silent.silent_for:.1f}s (registry.ttl {ttl:g}s)"
                 if silent.beat_before else f"no registry heartbeat in the {silent.silent_for:.1f}s since its start")
        return (f"[yellow]![/] {escape(silent.name)} (pid {silent.pid}) is alive but cannot write its heartbeat: "
                f"{quiet}, yet {escape(verdict.answer or 'it answered')}; {why}. Left running: fix what refuses "
                "its writes to the registry bucket (a JetStream store at its limit, its nats.max_pending_bytes; "
                "gamead doctor)")
    cpu = (f"{verdict.cpu_used:.2f}s of CPU in the last {verdict.over:.1f}s, state {verdict.state}"
           if verdict.cpu_used is not None and verdict.over is not None else "")
    answer = f"; {escape(verdict.answer)}" if verdict.answer else ""
    if verdict.why == "busy":
        return (f"[yellow]![/] {who} but it is running ({cpu}{answer}): busy or starved of CPU, not hung; waiting "
                f"up to {verdict.limit:g}s of silence ({BUSY_FACTOR:g} × registry.ttl) before killing it")
    if verdict.why == "wedged":
        return (f"[yellow]![/] {who}, past the {verdict.limit:g}s a busy worker gets ({BUSY_FACTOR:g} × "
                f"registry.ttl), though it kept using CPU ({cpu}{answer}): wedged; killing it (SIGKILL) to restart it")
    because = {"stopped": f" (it is stopped: state {verdict.state}{answer})",
               "idle": f" (it used no CPU in the last {verdict.over or 0:.1f}s, state {verdict.state}{answer})",
               "unknown": f" ({escape(verdict.answer)})" if verdict.answer else ""}
    return (f"[yellow]![/] {who}: frozen or hung; killing it (SIGKILL) to restart it"
            f"{because.get(verdict.why, '')}")


async def supervising(connecting: Awaitable[T], poll: Callable[[], None], stop: asyncio.Event,
                      every: float = 0.2) -> T | None:
    """Await ``connecting`` (the supervisor's NATS connection) while still supervising: ``poll()`` (restart dead
    children) every ``every`` s, and give up (cancel it, return None) once ``stop`` is set. nats-py's connect
    with ``allow_reconnect`` and no attempt limit tries for ever while the server is down: if the embedded
    nats-server died just before, the loop that restarts it never ran and Ctrl-C only said "stopping now",
    for ever (found so when a test run was stopped, its nats-server killed just before a stack's supervisor
    connected). Raises what ``connecting`` raises."""
    task = asyncio.ensure_future(connecting)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not task.done():
            if stop.is_set():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
            poll()
            await asyncio.wait({task, stopping}, timeout=every, return_when=asyncio.FIRST_COMPLETED)
        return task.result()
    finally:
        stopping.cancel()


async def _supervise(settings: GameadSettings, scaling: Any, nats_url: str, scaler: Any, stack: _Stack,
                     autoscaling: bool, *, recovery: bool, metrics: WorkerMetricsPorts | None = None,
                     nats_health: Callable[[], str] | None = None) -> None:
    """Restart dead children and run the autoscaler until a stop signal; then drain the workers. ``recovery``:
    recover what a dead worker held at once (on a NATS connection of its own), autoscaler or not. ``nats_health``:
    the embedded nats-server's ``/healthz`` (None: NATS is not ours), watched from the start (:func:`_watch_nats`)."""
    import nats
    import nats.errors

    from gamead_core.queue.connection import connect_options
    from gamead_core.queue.liveness import guard_reader, guard_writes
    from gamead_core.scaling.loop import Autoscaler, AutoscalerDeps, new_holder_id

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    seen = {"signals": 0}

    def on_signal() -> None:
        seen["signals"] += 1
        if seen["signals"] == 1:
            stop.set()
        else:
            stack.hurry_workers()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    if _stop_requested.is_set():  # it came before the handlers above: stop now
        on_signal()
    nc = None
    refusal: ConfigError | None = None
    probe: asyncio.Task[None] | None = None
    watch = _watch_nats(settings, stack, nats_health, stop) if nats_health else None
    try:
        task = None
        if autoscaling or recovery:
            async def _quiet(exc: Exception) -> None:  # nats-py reconnects; the autoscaler reports failures
                pass

            try:
                nc = await supervising(nats.connect(**connect_options(settings.nats, nats_url,
                                                                      name="gamead-up supervisor"),
                                                    error_cb=_quiet), scaler.poll, stop)
            except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
                raise GameadError(f"gamead up cannot connect to NATS at {nats_url}: {exc}") from exc
        if nc is not None:
            # a dead read loop (nats-py #624) is reconnected, a stopped server left, as for every other role
            guard_reader(nc, settings.nats.stale_after)
            guard_writes(nc, settings.nats.max_pending_bytes)  # its own writes too (leases, recoveries, probe)
            link = SimpleNamespace(nc=nc, js=nc.jetstream(timeout=settings.nats.request_timeout),
                                   ready=asyncio.Event())
            link.ready.set()
            # a worker that dies has its held ads handed to the others at once (gamead_core.worker.reaper),
            # with or without the autoscaler: else, with --no-autoscale, a death could go unrecovered until its
            # ads were redelivered after ack_wait, and charge an innocent ad (a reviewer's crash drill, issue I5)
            from gamead_core.worker.reaper import recover_exited

            scaler.attach_recovery(partial(recover_exited, nc, link.js, settings))
            probe = _start_probe(settings, nc, link.js, scaler, stop, metrics)
        if autoscaling and nc is not None:
            deps = AutoscalerDeps.standalone(settings, link, node_id=new_holder_id("up"), backend=scaler,
                                             on_decision=_show_decision)
            autoscaler = Autoscaler(scaling, deps)
            task = asyncio.create_task(autoscaler.run(stop))
        while not stop.is_set():
            scaler.poll()  # restart dead children (workers, the API, nats-server) with back-off
            if refused := stack.sup.refused:  # a configuration refusal: restarting cannot help
                refusal = refused_start(refused[0])
                stop.set()
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
        say(f"stopping: workers drain first (up to {settings.worker.drain_timeout:g}s; again to hurry) …")
        if task is not None:
            await task  # releases the lease
        if probe is not None:
            await probe  # it ends with stop: draining workers are never probed
        if watch is not None:
            await watch  # it ends with stop: the stopping nats-server is never killed by it
        await scaler.close()  # every worker drains, together with any scale-down still draining
        if refusal is not None:
            raise refusal
    finally:
        if nc is not None:
            mark_ours(nc)  # not a close by nats-py (gamead_core.queue.closed)
            try:
                await asyncio.wait_for(nc.close(), 5)
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        _install(_request_stop)  # remove_signal_handler restored the defaults: never die by a late signal


def up(
    config: ConfigOpt = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=0, max=MAX_LOCAL_WORKERS,
                          help="Workers to start, and the fewest kept (0 = API only).")
    ] = 1,
    max_workers: Annotated[
        int | None,
        typer.Option("--max-workers", min=1, max=MAX_LOCAL_WORKERS,
                     help="Most workers the autoscaler runs \\[default: max(4, --workers)].",
                     show_default=False),
    ] = None,
    autoscale: Annotated[
        bool, typer.Option("--autoscale/--no-autoscale", help="Scale workers between --workers and --max-workers.")
    ] = True,
    port: Annotated[int | None, typer.Option(help="API port \\[api.port, default 8080].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="NATS data and logs \\[embedded.data_dir, default ./.gamead].")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-n", min=1, max=1024, help="Slots per worker (1-1024).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535,
                     help="Port of worker local-1's /metrics; local-k gets this + k - 1 (a taken port falls back "
                          "to a free one, said on the console) \\[default: the API port + 1].", show_default=False),
    ] = None,
) -> None:
    from gamead_core.config import config_path
    from gamead_core.scaling.local import LocalScaler

    settings = settings_from(
        config, api={"port": port}, embedded={"data_dir": data_dir}, worker={"concurrency": concurrency}
    )
    in_force = config_path(config)
    if not settings.nats.url:  # the embedded server's credentials: refused before anything starts (exit 5)
        authorization(**_credentials(settings))
    settings.api.host = "127.0.0.1"
    # absolute: every path it prints (data, logs, gamead-up.json, the worker's --config) is for another terminal,
    # which may be in another directory (attack25 finding 9: `--data-dir rel-d` printed `logs: rel-d/logs`)
    settings.embedded.data_dir = Path(os.path.abspath(settings.embedded.data_dir))
    most = max_workers if max_workers is not None else max(4, workers)
    if most < workers:
        raise typer.BadParameter(f"must be at least --workers ({workers})", param_hint="--max-workers")
    autoscaling = autoscale and workers > 0  # from 0 workers no service rate can be measured
    scaling = settings.autoscaler.model_copy(
        update={"backend": "local" if autoscaling else "none", "min_replicas": workers, "max_replicas": most}
    )
    _stop_requested.clear()
    _install(_request_stop)  # also when started in the background, where SIGINT is ignored
    data = DataDir(settings.embedded.data_dir)
    data.lock()  # one stack per data dir: refused at once, naming the holder's PID
    forget_env(data.path)  # an earlier run's: never shown as this one's
    lines = ConsoleLines(_log_line)  # the autoscaler's, the reaper's warnings: console lines with their `!`
    logging.getLogger().addHandler(lines)  # removed with the lock (a refused lock left it on the root logger)
    if not logging.getLogger("gamead_core").isEnabledFor(logging.INFO):  # the ends of warnings are INFO records
        logging.getLogger("gamead_core").setLevel(logging.INFO)
    stack = _Stack(settings, data)
    claims = PortClaims(data.path)  # the ports kept for restarts: no other stack takes one meanwhile
    try:
        logs = data.make_dir("logs")  # a file there, or no permission: exit 5 naming --data-dir, not "unexpected"
        if claims.unusable:
            say(f"[yellow]![/] ports are not reserved against other stacks: {escape(claims.unusable)}")
        made_token = stack_credentials(settings.nats)  # its embedded nats-server requires it: nats.token in the copy
        snapshot = snapshot_config(in_force, settings, data.path)
        # up itself runs with the copy too: what it checked is exactly what its children read
        settings = settings_from(snapshot, api={"port": port}, embedded={"data_dir": settings.embedded.data_dir},
                                 worker={"concurrency": concurrency})
        settings.api.host = "127.0.0.1"
        stack.settings = settings
        for stray in data.stop_strays():
            say(f"[yellow]![/] stopped a stray {escape(str(stray['name']))} (pid {stray['pid']}) left on "
                f"{escape(str(data.path))} "
                "by an earlier stack")
        api_url = f"http://{settings.api.host}:{settings.api.port}"
        claims.require(settings.api.port, "its API", "the API", "choose another with --port")
        _check_port(settings.api.host, settings.api.port, "the API", "--port")
        data.serve_api(api_url)  # a CLI verb run here (no --api) talks to this stack: gamead-up.json says where
        nats_health = None  # the embedded nats-server's /healthz: gamead_core.scaling.nats_watch
        if settings.nats.url:
            nats_url = settings.nats.url
            say(f"using NATS at {escape(redact_url(nats_url))}")
        else:
            nats_port = settings.embedded.nats_port
            if nats_port:
                claims.require(nats_port, "its embedded nats-server", "the embedded nats-server",
                               "set embedded.nats_port to another port (0 = any free port)")
            embedded = EmbeddedNats(data.path, port=nats_port or claims.pick("127.0.0.1", "its embedded nats-server"),
                                    sync_always=settings.embedded.sync_always,
                                    gomaxprocs=settings.embedded.gomaxprocs, **_credentials(settings),
                                    monitor_port=claims.pick("127.0.0.1", "its embedded nats-server's /healthz"))
            # its liveness watch (F4): js-enabled-only, never a walk of every stream (slow on a big store)
            nats_health = partial(_health_url, embedded)
            go_procs, go_why = embedded.go_runtime(os.environ)
            embedded.prepare()
            nats_child = stack.sup.start(NATS_CHILD, partial(_nats_argv, embedded, claims),
                                         embedded.env(os.environ, go_procs), embedded.log_path)
            assert nats_child.proc is not None
            wait_for_listener(embedded.host, embedded.port, nats_child.proc,
                              time.monotonic() + NATS_READY_TIMEOUT, embedded.log_path)
            nats_url = embedded.url
            _check_stop()
            said = _credentials_line(made_token, snapshot, bool(settings.nats.token))
            say(f"[green]✓[/] nats-server (JetStream, pid {nats_child.pid}) on {nats_url}, "
                f"{escape(said)}, data in {escape(str(data.path))}, "
                f"watched on http://127.0.0.1:{embedded.monitor_port}/healthz, "
                f"its Go runtime on {go_procs} core(s) at once (GOMAXPROCS: {escape(go_why)})")
        say(config_line(in_force, snapshot))  # after the checks above: a refused start is one red line
        env = _child_env(settings, nats_url)
        # The API shows the autoscaler's state with the same bounds; it never runs local workers itself.
        env["GAMEAD_AUTOSCALER__BACKEND"] = scaling.backend
        env["GAMEAD_AUTOSCALER__MIN_REPLICAS"] = str(scaling.min_replicas)
        env["GAMEAD_AUTOSCALER__MAX_REPLICAS"] = str(scaling.max_replicas)
        if concurrency is not None:
            env["GAMEAD_WORKER__CONCURRENCY"] = str(concurrency)
        env["GAMEAD_CONFIG"] = str(snapshot)  # every child, every (re)start: the configuration of up's start
        snapshot_env(env, data.path)  # what `gamead config show --stack` shows
        metrics = WorkerMetricsPorts(  # each worker its own /metrics port: local-k on base + k - 1
            settings.worker.metrics_host, metrics_port if metrics_port is not None else settings.api.port + 1,
            enabled=settings.metrics.enabled, on_fallback=lambda line: say(f"[yellow]![/] {escape(line)}"),
            claims=claims)
        scaler = LocalScaler(stack.sup, argv=lambda wid: _gamead("worker", "--id", wid, *metrics.args(wid)), env=env,
                             log_dir=logs,
                             drain_timeout=settings.worker.drain_timeout)
        api = stack.sup.start(API_CHILD, _gamead("serve"), env, logs / "api.log")
        _wait_api_ready(api_url, settings.api.port, api,
                        StartWatch(api.started_at, stall_after=API_STALL_AFTER, cap=API_START_CAP))
        say(f"[green]✓[/] API (pid {api.pid}) on {escape(api_url)}  "
            f"(docs: {escape(api_url)}/docs, logs: {escape(str(logs))})")
        say(f"[green]✓[/] {partitions_line(settings.queue.partitions)}")
        _check_stop()
        scaler.set_replicas(workers)
        if workers:
            pids = ", ".join(str(p) for p in scaler.pids().values())
            say(f"[green]✓[/] {workers} worker(s) (pid {pids}), {settings.worker.concurrency} slot(s) each")
            if metrics.enabled:
                say(f"[green]✓[/] metrics: {api_url}/metrics; workers: {metrics.urls()} ({metrics.rule(most)}; "
                    f"also in {escape(follow_up('workers', again=f' --api {api_url}'))})")
        if autoscaling:
            say(f"[green]✓[/] autoscaler: {workers}-{most} workers, every {scaling.interval:g}s "
                f"({escape(follow_up('scale', 'status', again=f' --api {api_url}'))}; --no-autoscale keeps {workers})")
        if banner := fault_banner(settings):
            say(banner)
        program = gamead_program()
        joining = None if workers else worker_command(program, None if settings.nats.url else nats_url, snapshot)
        if joining:
            say("[yellow]![/] no worker runs (--workers 0): ads stay queued until one does; the first command "
                "below starts one")
        hints = "\n".join(f"  {cmd}" for cmd in next_commands(api_url, program,
                                                               worker=joining, auth=auth_required(settings)))
        say(f"\nNext, in another terminal:\n{escape(hints)}\n"
            f"Processes running: {escape(str(data.state_file))}. Press Ctrl-C to stop.\n")
        # the stack is up: a child refused from now on (a restart, a new worker) is retried with back-off and the
        # rest keeps running; a refusal of a first start (above) still ends up with the child's message
        stack.sup.settled = True
        asyncio.run(_supervise(settings, scaling, nats_url, scaler, stack, autoscaling, recovery=workers > 0,
                               metrics=metrics, nats_health=nats_health))
    except _StopRequested:
        say("stopping before the start finished …")
    finally:
        _install(lambda signum, frame: stack.hurry_workers())  # a second signal hurries, never aborts the stop
        try:
            stack.stop_all(settings.worker.drain_timeout)
        finally:
            claims.release_all()
            forget_env(data.path)  # it may hold secrets of the environment: not kept past the stack
            data.unlock()
            logging.getLogger().removeHandler(lines)
            _install(signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    say("[green]✓[/] stopped")
