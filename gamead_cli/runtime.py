"""Process plumbing shared by the long-running commands: settings → logging → NATS URL → signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from gamead_core.config import GameadSettings
from gamead_core.count_words import counted
from gamead_core.errors import ConfigError, NatsUnreachable
from gamead_core.stop_bound import arm, ended

log = logging.getLogger("gamead_cli.runtime")
#: seconds between two lines of :func:`reach_nats` saying that NATS is still away
REACH_ROUND = 5.0
#: seconds between two attempts of :func:`reach_nats` (nats-py's own reconnect wait)
RETRY_EVERY = 0.5


def require_nats_url(settings: GameadSettings, verb: str = "worker") -> str:
    """The NATS URL a serve/worker process (``verb``) must use; only ``gamead up`` runs an embedded server. Raises
    :class:`ConfigError` (exit 5) without one, naming the command that joins the ``gamead up`` running on
    ``embedded.data_dir`` when one runs there (attack29a F9: run in a stack's directory, it said "run `gamead
    up`", which already ran; its NATS needs the stack's token, so only its own config copy joins it)."""
    if not settings.nats.url:
        from gamead_core.datadir_find import stack_data_dir

        data_dir = stack_data_dir(settings.embedded)
        joins = _join_command(data_dir, verb)
        raise ConfigError(
            "nats.url is not set: point it at your NATS server (--nats-url, GAMEAD_NATS__URL or config.yaml), "
            + (f"or join the gamead up running {_where(data_dir, settings)} with `{joins}`" if joins else
               "or run `gamead up`, which starts an embedded one")
        )
    return settings.nats.url


def _where(data_dir: Path, settings: GameadSettings) -> str:
    """``here`` when ``data_dir`` is the one a verb run in the working directory finds (its ``.gamead``, or a
    parent's), else ``on <data_dir>``: ``--config OTHER/.gamead/config-in-force.yaml`` names OTHER's stack, which
    the hint called "running here" (attack47 F9)."""
    from gamead_core.datadir_find import find_data_dir

    found = find_data_dir(Path(type(settings.embedded).model_fields["data_dir"].default))
    with contextlib.suppress(OSError):
        if found.resolve() == data_dir.resolve():
            return "here"
    return f"on {data_dir.resolve()}"


def _join_command(data_dir: Path, verb: str) -> str | None:
    """``gamead worker --config <its config copy> --nats-url <its NATS>`` (``serve``: and ``--port 0``, any free
    port) of the ``gamead up`` running on
    ``data_dir`` (from its ``stack-env.json``, the variables it starts its children with), or None when none runs
    there or its file does not say both."""
    from gamead_cli.commands.up_console import worker_command
    from gamead_cli.program import gamead_program
    from gamead_core.datadir import STACK_ENV_FILE, running_stack

    if running_stack(data_dir) is None:
        return None
    try:
        env = json.loads((data_dir / STACK_ENV_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url, config = (env.get("GAMEAD_NATS__URL"), env.get("GAMEAD_CONFIG")) if isinstance(env, dict) else (None, None)
    if not isinstance(url, str) or not isinstance(config, str):
        return None
    command = worker_command(gamead_program(), url, Path(config)).replace(" worker ", f" {verb} ", 1)
    # its config copy holds the stack's own api.port, taken by the stack's API: a joining API takes a free one and
    # its log line says which (regress44 F2: the printed command always failed, "port … is taken", exit 5)
    return f"{command} --port 0" if verb == "serve" else command


def install_stop_signals(stop: asyncio.Event, on_second: Callable[[], None] | None = None, *,
                         bound: float | None = None, role: str = "worker") -> None:
    """SIGTERM, SIGINT and SIGHUP set ``stop``; a second SIGTERM/SIGINT calls ``on_second`` (e.g. skip the drain).
    With ``bound`` (seconds), the first of them also arms :func:`gamead_core.stop_bound.arm`: the process ends
    within ``bound`` s of it, saying what was cut, whatever its shutdown awaits (a parent-death SIGTERM is the
    only signal a child of a killed parent gets: leak34).

    SIGHUP too: a closed terminal, and the kernel's SIGHUP + SIGCONT to a stopped process whose ``gamead up``
    died (its process group orphaned), must drain like a stop, not end the process mid-ad (the default
    action of SIGHUP)."""
    from gamead_cli import first_signals

    first_signals.handed_over()  # a stop now drains: no longer "nothing was started"
    loop = asyncio.get_running_loop()
    seen = {"n": 0}

    def first(sig: int) -> None:
        first_signals.take(sig)  # the stop acted on, if the first: the one the process may end by (stops.ended)
        if bound is not None:
            arm(bound, role, loop=loop)
        stop.set()

    def handler(sig: int) -> None:
        seen["n"] += 1
        first(sig)
        if seen["n"] > 1 and on_second is not None:
            on_second()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler, sig)
    loop.add_signal_handler(signal.SIGHUP, first, signal.SIGHUP)  # never "a second signal": it comes beside a SIGTERM


async def run_until_stopped(work: Awaitable[None], stop: asyncio.Event, *, started: Callable[[], bool]) -> None:
    """Await ``work`` (a role's run, which drains by itself once ``stop`` is set); a stop that comes while
    ``started()`` is still False (e.g. a worker still trying to reach NATS: ``connect`` retries for 30 s and
    a TLS handshake can hang longer) cancels it instead, so SIGTERM and Ctrl-C end the process at once.
    Raises what ``work`` raises."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and not started():
            await ended([task], 2.0, "the connection")  # cancelled again until it ends (hang50), bounded
            return
        await task
    finally:
        stopped.cancel()


async def reach_nats(settings: GameadSettings, url: str, *, role: str, stop: asyncio.Event | None = None) -> None:
    """Wait until NATS at ``url`` takes a connection (one attempt every :data:`RETRY_EVERY` s, each closed at
    once: the role then makes its own), for ``nats.give_up_after`` seconds (0: for ever). The first failed
    attempt, then one every :data:`REACH_ROUND` s, logs a WARNING naming the URL (credentials masked), the error,
    how long it has been, the next attempt and when it gives up, every duration in the one form of
    :func:`gamead_cli.formats.took` (``502ms``, ``16s``; range46: ``next attempt in 0.5 s`` beside ``502ms``), with
    fields ``nats_url``, ``waited_seconds``,
    ``attempts``, ``give_up_after``. Raises :class:`NatsUnreachable` (exit 3) once ``give_up_after`` has passed.
    Returns at once when ``stop`` is set (SIGTERM, Ctrl-C). Why keep trying by default: under Kubernetes a process
    that exits is restarted with a growing back-off (CrashLoopBackOff, up to 5 minutes), so exiting only delays
    the recovery once NATS is back; the log line says why it waits."""
    from gamead_cli.formats import took
    from gamead_core.queue.probe import probe
    from gamead_core.redact import redact_url

    give_up = settings.nats.give_up_after
    loop = asyncio.get_running_loop()
    started, logged, attempts = loop.time(), None, 0
    where = redact_url(url)
    while stop is None or not stop.is_set():
        attempts += 1
        try:
            await probe(settings.nats, url, name=f"gamead-{role} start")
        except NatsUnreachable as exc:
            now = loop.time()
            waited = now - started
            if give_up and waited >= give_up:
                raise NatsUnreachable(f"{exc.message}; gave up after {took(waited)} and {counted(attempts, 'attempt')} "
                                      f"(nats.give_up_after {took(give_up)})") from exc
            if logged is None or now - logged >= REACH_ROUND:
                logged = now
                until = f"giving up in {took(give_up - waited)}" if give_up else "for ever (nats.give_up_after 0)"
                log.warning("%s cannot reach NATS at %s for %s, %s (%s); next attempt in %s, %s",
                            role, where, took(waited), counted(attempts, "attempt"),
                            exc.message.split(f"{where}: ", 1)[-1], took(RETRY_EVERY), until,
                            extra={"nats_url": where, "waited_seconds": round(waited, 1), "attempts": attempts,
                                   "give_up_after": give_up})
            if stop is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_EVERY)
            else:
                await asyncio.sleep(RETRY_EVERY)
            continue
        if attempts > 1:
            log.info("%s reached NATS at %s after %s", role, where, took(loop.time() - started))
        return
