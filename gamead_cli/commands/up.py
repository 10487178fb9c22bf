"""Run the whole stack on this machine: an embedded nats-server, the API and autoscaled workers.

Workers scale between --workers and --max-workers with the queue; this process owns them and runs the autoscaler
(from --workers 0 it only advises: no worker is started, join one with the printed command). Every child that dies
(nats-server and the API included) is restarted with a back-off, on the same port and data dir; one frozen or hung
for registry.ttl (nats-server: no answer on its /healthz) is named, killed and restarted too. Ctrl-C, SIGTERM or
SIGHUP (closing the terminal) stop everything cleanly: workers drain first, then the API, then NATS; a second signal
makes workers hand their ads back at once. Its terminal closing stops it as SIGHUP does even where no SIGHUP reaches
it (a wrapper ignoring it, a background job): it watches the terminal on its stdin. `nohup gamead up &` (SIGHUP
ignored, stdin not the terminal), stdin not a terminal or --no-tty-check: the stack outlives the terminal. If this
process is killed, its children stop too. With --die-with-parent
(what `make up` passes) it also stops, as on SIGTERM (exit 0), within a second of the process that started it dying,
even by SIGKILL; without it, a stack whose starter goes away keeps running (`nohup gamead up &` from a shell that
then exits). One stack per --data-dir: a second one is refused.

Each worker serves Prometheus /metrics on its own port: local-k on the API port + k (8081, 8082, … beside
8080), or --metrics-port + k - 1; a taken port falls back to a free one, and the console says which.

Example: gamead up --workers 2 --max-workers 6 --port 8080
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gamead_cli.bounds import checked
from gamead_cli.commands.up_config import child_env, forget_env, nats_credentials, snapshot_config, snapshot_env
from gamead_cli.commands.up_console import (
    config_line,
    credentials_line,
    fault_banner,
    log_line,
    next_commands,
    partitions_line,
    say,
    worker_command,
)
from gamead_cli.commands.up_disk import low_room_line, start_blamed_on_store
from gamead_cli.commands.up_fsize import fsize_words, raise_fsize
from gamead_cli.commands.up_drift import DriftNote
from gamead_cli.commands.up_liveness import health_url, monitor_port
from gamead_cli.commands.up_nats import start_nats
from gamead_cli.commands.up_parent import watch_parent
from gamead_cli.commands.up_ready import died_since, heartbeat_probe, wait_workers_registered, worker_line
from gamead_cli.commands.up_signals import (
    StopRequested,
    after_stop,
    check_stop,
    choose_stop_signals,
    hurry_handler,
    install_stop_handlers,
    request_stop,
    stop_requested,
)
from gamead_cli.commands.up_stack import API_CHILD, UpStack, gamead_argv
from gamead_cli.commands.up_start import (
    API_STALL_AFTER,
    API_START_CAP,
    check_port,
    wait_api_ready,
)
from gamead_cli.commands.up_supervise import supervise
from gamead_cli.commands.up_terminal import TerminalWatch, hangup_words
from gamead_cli.options import ConfigOpt, settings_from
from gamead_cli.program import follow_up, gamead_program
from gamead_core.api.auth import auth_required
from gamead_core.bound_text import Range
from gamead_core.datadir import DataDir
from gamead_core.embedded import EmbeddedNats
from gamead_core.nats_auth import authorization, stack_credentials
from gamead_core.errors import ConfigError, GameadError
from gamead_core.fd_limit import low_nofile_words, raise_nofile
from gamead_core.listen import check_host, port_given_twice
from gamead_core.logs import ConsoleLines
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.port_claims import PortClaims
from gamead_core.redact import redact_url
from gamead_core.start_watch import StartWatch

#: the most worker processes `gamead up` runs on one machine (each ~65 MB and one metrics port): a typo such as
#: --workers 10000 is refused (exit 2) instead of forking the machine to a halt
MAX_LOCAL_WORKERS = 64


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
        str | None, typer.Option("--data-dir", help="NATS data and logs \\[embedded.data_dir, default ./.gamead].")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-n", min=1, max=1024, help="Slots per worker (1-1024).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535,
                     help="Port of worker local-1's /metrics; local-k gets this + k - 1 (a taken port falls back "
                          "to a free one, said on the console) \\[default: the API port + 1].", show_default=False),
    ] = None,
    die_with_parent: Annotated[
        bool,
        typer.Option("--die-with-parent",
                     help="Stop the stack, as on SIGTERM (exit 0), within a second of the process that started "
                          "`gamead up` dying (even by SIGKILL): `make up` passes it, so killing the make stops "
                          "everything. Off by default: `nohup gamead up &` from a shell that then exits keeps "
                          "running."),
    ] = False,
    tty_check: Annotated[
        bool | None,
        typer.Option("--tty-check/--no-tty-check", show_default=False,
                     help="Stop the stack, as on SIGHUP (exit 0), once the terminal on stdin hangs up, even where no "
                          "SIGHUP reaches it (a wrapper ignoring it, a background job); --no-tty-check, stdin not a "
                          "terminal (`nohup`, `< /dev/null`): the stack outlives the terminal \\[embedded.tty_check, "
                          "default: on]."),
    ] = None,
) -> None:
    started_by = os.getppid()  # first thing: the parent --die-with-parent watches (gamead_cli.commands.up_parent)
    nofile = raise_nofile()  # the soft open-files limit up to the hard one; every child inherits it
    fsize = raise_fsize()  # the soft file-size limit too: nats-server's store files (attack43a F1)
    from gamead_core.config import config_path
    from gamead_core.scaling.local import LocalScaler
    from gamead_core.scaling.local_ids import stack_tag
    from gamead_core.telemetry.tracing import check_tracing_env, tracing_line

    settings = settings_from(config, api={"port": port}, embedded={"data_dir": data_dir, "tty_check": tty_check},
                             worker={"concurrency": concurrency})
    in_force = config_path(config)
    check_tracing_env()  # its children's OTEL_* (they inherit them): refused before anything starts (exit 5)
    shared = bool(settings.nats.url)  # a NATS other stacks may use: its workers' ids carry its tag (.local_ids)
    if not shared:  # the embedded server's credentials: refused before anything starts (exit 5)
        authorization(**nats_credentials(settings))
    settings.api.host = "127.0.0.1"
    # absolute: every path it prints (data, logs, gamead-up.json, the worker's --config) is for another terminal,
    # which may be in another directory (attack25 finding 9: `--data-dir rel-d` printed `logs: rel-d/logs`)
    settings.embedded.data_dir = Path(os.path.abspath(settings.embedded.data_dir))
    most = max_workers if max_workers is not None else max(4, workers)
    checked(most, Range(max(1, workers), MAX_LOCAL_WORKERS), param_hint="--max-workers")  # not under --workers
    autoscaling = autoscale and workers > 0  # from 0 workers no service rate can be measured
    scaling = settings.autoscaler.model_copy(
        update={"backend": "local" if autoscaling else "none", "min_replicas": workers, "max_replicas": most}
    )
    parent_watched = threading.Event()  # set: the watch ends (the stack stops for another reason)
    terminal = TerminalWatch()  # the terminal on stdin: its hangup stops the stack as SIGHUP does (hangup57)
    data = DataDir(settings.embedded.data_dir)
    data.lock()  # one stack per data dir: refused at once, naming the holder's PID; whole or undone (left39b)
    # after the lock, as the parent watch (review28 U2): a refused lock leaves no handler nor thread behind
    try:  # until a signal only asks the stop (below): one that raises now drops the lock and the dir it made
        stop_requested.clear()
        hangup_ignored = choose_stop_signals()  # `nohup gamead up &`: SIGHUP stays ignored, the stack outlives the tty
        install_stop_handlers(request_stop)  # also when started in the background, where SIGINT is ignored
    except BaseException:
        data.unlock()
        raise
    forget_env(data.path)  # an earlier run's: never shown as this one's
    lines = ConsoleLines(log_line)  # the autoscaler's, the reaper's warnings: console lines with their `!`
    logging.getLogger().addHandler(lines)  # removed with the lock (a refused lock left it on the root logger)
    if not logging.getLogger("gamead_core").isEnabledFor(logging.INFO):  # the ends of warnings are INFO records
        logging.getLogger("gamead_core").setLevel(logging.INFO)
    stack = UpStack(settings, data)
    claims = PortClaims(data.path)  # the ports kept for restarts: no other stack takes one meanwhile
    clean = False  # the run (or a stop before the start finished) ended without an error
    try:
        if die_with_parent:  # after the lock, inside the try whose finally ends it (review28 U2)
            watch_parent(started_by, _parent_gone, parent_watched)
        terminal.start(settings.embedded.tty_check)  # also when SIGHUP came ignored: a wrapper's, not nohup's
        logs = data.make_dir("logs")  # a file there, or no permission: exit 5 naming --data-dir, not "unexpected"
        if not settings.nats.url and (low := low_room_line(data.path)) is not None:  # attack41a F2
            say(f"[yellow]![/] {escape(low)}")
        if not settings.nats.url and (capped := fsize_words(fsize, str(data.path / "jetstream"))):  # attack43a F1
            say(f"[yellow]![/] {escape(capped)}")
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
        if not settings.api.port:  # the port up waits on, prints, keeps for restarts (attack41b F2: waited 180 s)
            raise ConfigError("api.port 0 (any free port) is for gamead serve: gamead up waits on its API's port, "
                              "prints it and restarts the API there — choose one with --port")
        if not settings.nats.url and (twice := port_given_twice({  # before any process starts (attack41b F1)
                "api.port (--port)": settings.api.port, "embedded.nats_port": settings.embedded.nats_port,
                "embedded.nats_monitor_port": settings.embedded.nats_monitor_port})):
            raise twice
        if settings.metrics.enabled:  # a /metrics host no worker can listen on: refused now, not at a worker's start
            check_host(settings.worker.metrics_host, "worker.metrics_port")
        api_url = f"http://{settings.api.host}:{settings.api.port}"
        claims.require(settings.api.port, "its API", "the API", "choose another with --port")
        check_port(settings.api.host, settings.api.port, "the API", "--port")
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
            embedded = EmbeddedNats(data.path, port=nats_port,  # 0: picked at its start (up_nats.start_nats)
                                    sync_always=settings.embedded.sync_always,
                                    gomaxprocs=settings.embedded.gomaxprocs, **nats_credentials(settings),
                                    monitor_port=monitor_port(settings.embedded.nats_monitor_port, claims))
            # its liveness watch (F4): js-enabled-only, never a walk of every stream (slow on a big store)
            nats_health = partial(health_url, embedded)
            go_procs, go_why = embedded.go_runtime(os.environ)
            nats_child = start_nats(stack.sup, embedded, claims, embedded.env(os.environ, go_procs))
            nats_url = embedded.url
            check_stop()
            said = credentials_line(made_token, snapshot, bool(settings.nats.token))
            say(f"[green]✓[/] nats-server (JetStream, pid {nats_child.pid}) on {nats_url}, "
                f"{escape(said)}, data in {escape(str(data.path))}, "
                f"watched on http://127.0.0.1:{embedded.monitor_port}/healthz, "
                f"its Go runtime on {go_procs} core(s) at once (GOMAXPROCS: {escape(go_why)})")
        if low := low_nofile_words(nofile):  # its API bounds its connections by it (api.max_connections)
            say(f"[yellow]![/] {escape(low)}")
        env = child_env(settings, nats_url)
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
        scaler = LocalScaler(stack.sup, argv=lambda wid: gamead_argv("worker", "--id", wid, *metrics.args(wid)),
                             env=env, log_dir=logs, drain_timeout=settings.worker.drain_timeout,
                             id_tag=stack_tag(socket.gethostname(), str(data.path)) if shared else "")
        api = stack.sup.start(API_CHILD, gamead_argv("serve"), env, logs / "api.log")
        try:
            ready = wait_api_ready(api_url, settings.api.port, api,
                                   StartWatch(api.started_at, stall_after=API_STALL_AFTER, cap=API_START_CAP))
        except GameadError as exc:  # its store's disk full: said, exit 5 (attack56 F1)
            raise start_blamed_on_store(exc, stack, data.path / "jetstream") from None
        say(f"[green]✓[/] API (pid {api.pid}) on {escape(api_url)}  "
            f"(docs: {escape(api_url)}/docs, logs: {escape(str(logs))})")
        # the settings not in force (the live limits the fleet shares kept: attack32c F1), said with the config
        drift = DriftNote(settings, gamead_program(), str(logs / "api.log"))
        kept = drift.observe_body(ready)
        say(config_line(in_force, snapshot, len(drift.said)))  # after the checks above: a refusal is one red line
        if kept is not None:
            say(f"[yellow]![/] {escape(kept.text)}")
        say(f"[green]✓[/] {partitions_line(settings.queue.partitions)}")
        check_stop()
        scaler.set_replicas(workers)
        beats = heartbeat_probe(settings)  # the workers' beats the start sees, kept by the stack's liveness probe
        if workers:  # said once they registered (up_ready): a burst sent at the hints finds them pulling
            registered: dict[str, int] = {}
            starting = wait_workers_registered(settings, nats_url, stack, scaler, probe=beats, registered=registered)
            pids = scaler.pids()  # a registered worker dead since (a crash loop) is said so, not as registered
            fallen = died_since(registered, pids, lambda name: stack.sup.children[name].alive)
            said = worker_line(pids, starting, settings.worker.concurrency, fallen)
            say(f"[yellow]![/] {escape(said)}" if starting or fallen else f"[green]✓[/] {escape(said)}")
            if metrics.enabled:
                runs = most if autoscaling else workers  # --no-autoscale keeps --workers: no local-k past it
                say(f"[green]✓[/] metrics: {api_url}/metrics; workers: {metrics.urls()} ({metrics.rule(runs)}; "
                    f"also in {escape(follow_up('workers', again=f' --api {api_url}'))})")
        if autoscaling:
            say(f"[green]✓[/] autoscaler: {workers}-{most} workers, every {scaling.interval:g}s "
                f"({escape(follow_up('scale', 'status', again=f' --api {api_url}'))}; --no-autoscale keeps {workers})")
        if banner := fault_banner(settings):
            say(banner)
        if traced := tracing_line(str(logs)):  # as fault injection: said, not only in the children's logs
            say(f"[green]✓[/] {escape(traced)}")
        program = gamead_program()
        joining = None if workers else worker_command(program, None if settings.nats.url else nats_url, snapshot)
        if joining:
            say("[yellow]![/] no worker runs (--workers 0): ads stay queued until one does; the first command "
                "below starts one")
        if hanging := hangup_words(hangup_ignored, terminal.watching, os.getpid()):
            say(f"[yellow]![/] {escape(hanging)}")
        hints = "\n".join(f"  {cmd}" for cmd in next_commands(api_url, program,
                                                               worker=joining, auth=auth_required(settings)))
        say(f"\nNext, in another terminal:\n{escape(hints)}\n"
            f"Processes running: {escape(str(data.state_file))}. Press Ctrl-C to stop.\n")
        # the stack is up: a child refused from now on (a restart, a new worker) is retried with back-off and the
        # rest keeps running; a refusal of a first start (above) still ends up with the child's message
        stack.settle()  # nats-server and the API are up; each worker once it beats (up_liveness)
        asyncio.run(supervise(settings, scaling, nats_url, scaler, stack, autoscaling, recovery=workers > 0,
                               metrics=metrics, nats_health=nats_health, drift=drift, beats=beats))
        clean = True
    except StopRequested:
        say("stopping before the start finished …")
        clean = True
    finally:
        parent_watched.set()  # a parent dying during the stop must not hurry it (a second SIGTERM would)
        terminal.close()  # nor a terminal closing (a SIGHUP never hurries)
        # a second signal hurries the stop, never aborts it
        install_stop_handlers(hurry_handler(stack.hurry_workers))  # a SIGHUP beside a SIGTERM never hurries
        stopped = False  # every child stopped after a clean run or stop (an error ending up says its own line)
        try:
            stack.arm_stop()  # a stop begun before supervise (or after its end): bounded too (fix35d)
            stack.stop_all(settings.worker.drain_timeout)
            stopped = clean
        finally:
            claims.release_all()
            forget_env(data.path)  # it may hold secrets of the environment: not kept past the stack
            data.unlock()
            logging.getLogger().removeHandler(lines)
            if stopped:  # before the handlers below (leftovers56): a late SIGHUP or Ctrl-C there ended a complete stop
                say("[green]✓[/] stopped")  # by the signal (no line) or as `error: interrupted`, 130
            after_stop()  # its stop's signal again ends the process, another is ignored: the first stop's code


def _parent_gone(parent: int) -> None:
    """``--die-with-parent``: the process that started ``gamead up`` (PID ``parent``) is gone: say so and stop
    exactly as on SIGTERM (the workers drain, then the API and NATS; exit 0). Once a stop has begun
    (:data:`stop_requested`: a signal, a refusal) it does nothing: its SIGTERM would be a second one, which hurries
    the drain (review28 U1: a CI step killed with a grace period handed the ads back instead of finishing them)."""
    if stop_requested.is_set():
        return
    say(f"[yellow]![/] the process that started gamead up (pid {parent}) is gone (--die-with-parent): stopping "
        "the stack as on SIGTERM")
    os.kill(os.getpid(), signal.SIGTERM)
