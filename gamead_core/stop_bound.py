"""A bound on a process's way out: once its stop begins, it has ended within ``bound`` seconds, whatever its
shutdown awaits.

Why (rule 4, leak34): a role's stop is a chain of awaits — hand the buffer back, drain, refund, release a lease,
remove a heartbeat, drain the NATS connection, the API's lifespan shutdown. Each is meant to be bounded, but one
that is not (NATS stalled or gone, a task that swallows its cancellation, an executor thread in a blocking call
joined at interpreter exit) keeps the process alive after its parent died: under Kubernetes the kubelet SIGKILLs
it after terminationGracePeriodSeconds, but a child of a killed test run or of a killed ``gamead up`` gets its one
parent-death SIGTERM and nothing after it. So the first stop signal arms :func:`arm`: a daemon thread (not a
task: a blocked event loop must not hold it) that, ``bound`` seconds later, says on stderr in one line what
was still running — each unfinished task's coroutine and where it waits, read on the event loop when it answers
within 1 s — and ends the process with exit code 1 (``os._exit``: no more cleanup that could hang).

The bounds (``worker_bound``, :data:`API_BOUND`) stay below the manifests' terminationGracePeriodSeconds, so a
pod is never SIGKILLed for a shutdown that hangs: it says what hung first. ``gamead up``'s (:func:`up_bound`) is
the sum of its children's stop timeouts plus its own awaits, and its cut first SIGKILLs every child it recorded
that still runs, naming each (``on_cut``): nothing it started outlives it.

Within a stop, each await of its own has a deadline too (:func:`within`, fix35d item 3: the worker's ``_drain``,
the API's lifespan shutdown, ``gamead up``'s watches): one step that hangs is cut and the stop goes on to the next
(release the lease, remove the heartbeat, drain NATS), rather than spend the whole bound on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

#: seconds a worker's stop may take beyond ``worker.drain_timeout``, the sum of its later steps' own deadlines at the
#: default ``nats.request_timeout`` (2 s): the cancelled analyses (1 s), the shielded settles (2 × 2 s), the lease's
#: release (2 s) and the heartbeat's removal (2 × 2 s), the NATS connection's drain (5 s) and close (2 s). It was 12 s,
#: less than those steps' 18: with NATS frozen a fresh clone's run saw the steps take 13.4 s and the bound cut a stop
#: that was ending by itself (test_shutdown's frozen-NATS case, exit 1)
WORKER_MARGIN = 18.0
#: seconds past ``worker.drain_timeout``, from the stop's start, within which a worker's last writes that nothing else
#: makes (a hand-back's refund, the clean stop's delete mark and note: without them a clean stop is judged a death
#: and its running ad charged) are tried again while NATS is away or does not answer (attack44b F2): ``gamead up``
#: SIGKILLs a worker ``drain_timeout`` + 5 s into its stop (scaling.local.STOP_GRACE), less the NATS close (2 s)
LAST_WRITES_MARGIN = 3.0
#: seconds ``gamead serve``'s stop may take: uvicorn's graceful shutdown (10 s) plus the lifespan's (leases,
#: heartbeat, NATS drain); with the 5 s preStop, below manifests/base/api.yaml's terminationGracePeriodSeconds (35)
API_BOUND = 25.0
#: seconds ``gamead up``'s stop may take beyond its children's stop timeouts (workers ``worker.drain_timeout`` +
#: 5 s, the API 15 s, nats-server 10 s, each SIGKILLed past its own): the autoscaler's lease release, its watches'
#: last readings, its NATS connection's close (5 s) (gamead_cli.commands.up_stack)
UP_MARGIN = 10.0
#: exit code of a process whose stop was cut by its bound (the README's 1: an unexpected error, the line says why)
CUT_EXIT = 1
_armed = threading.Lock()
T = TypeVar("T")


log = logging.getLogger(__name__)


def worker_bound(drain_timeout: float) -> float:
    """Seconds a worker's stop may take, from its first stop signal: ``drain_timeout`` + :data:`WORKER_MARGIN`."""
    return drain_timeout + WORKER_MARGIN


def last_writes_until(began: float, drain_timeout: float) -> float:
    """Until when (the clock of ``began``, s) a worker whose stop began at ``began`` tries its last writes again:
    ``began`` + ``drain_timeout`` + :data:`LAST_WRITES_MARGIN` (pure)."""
    return began + drain_timeout + LAST_WRITES_MARGIN


def up_bound(children: float) -> float:
    """Seconds ``gamead up``'s stop may take, from its first stop signal: ``children`` (the sum of its children's
    stop timeouts, s) + :data:`UP_MARGIN`."""
    return children + UP_MARGIN


#: seconds :func:`within` goes on cancelling a step it cut, until it ends (:func:`ended`), before leaving it
CUT_FOR = 1.0


async def within(step: Awaitable[object], seconds: float, what: str) -> bool:
    """Await one step of a stop for at most ``seconds``: True if it ended (its error raised, as awaiting it would),
    False if not, and a WARNING names ``what``: then it is cancelled until it ends (:func:`ended`, at most
    :data:`CUT_FOR` s more), then left (never awaited again: a step that swallows its cancellations must not hold
    the stop). Once was not enough (leftovers56): a cancel that Python 3.11's ``wait_for`` swallows left the step
    running, ``gamead up``'s autoscaler past ``scaler.close()``, free to start a worker after the stop. Cancelled
    itself, it cancels the step."""
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        log.warning("stopping: %s did not end within %g s; cut, the stop goes on", what, seconds)
        await ended([task], CUT_FOR, what)
        return False
    task.result()
    return True


#: seconds between two cancels of a task :func:`ended` stops that still runs
RECANCEL_EVERY = 0.1


async def ended(tasks: Iterable[asyncio.Future[Any]], seconds: float, what: str, *, doing: str = "the stop") -> bool:
    """Cancel ``tasks`` (a background loop being stopped) and wait at most ``seconds`` for them to end, cancelling
    again every :data:`RECANCEL_EVERY` s those still running: True if all ended, else a WARNING names ``what`` and
    they are left (``doing``: what goes on without them, the stop unless said). Their errors are not raised (they
    are the loop's own, logged by it or not worth a stop's).

    Why again (hang50): Python 3.11's ``asyncio.wait_for`` returns the result of an await that ended as the cancel
    came (nats-py's every request and ``next_msg`` wait so), taking the cancel with it: a job sweeper cancelled in
    a sweep went on sweeping, and its stop (``gather``, no bound) held the API's shutdown for ever (1 in 4 fresh
    clones' suites at load 20; 1 in ~150 lifespans at load 3 + 3 busy loops). The next cancel ends it."""
    tasks = list(tasks)
    left = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while left:
        wait = min(RECANCEL_EVERY, deadline - loop.time())
        if wait <= 0:
            log.warning("%s: %s did not end within %g s of its cancel; left, %s goes on",
                        "stopping" if doing == "the stop" else "given up", what, seconds, doing)
            return False
        for task in left:
            task.cancel()
        _, left = await asyncio.wait(left, timeout=wait)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: never "Task exception was never retrieved" at exit
    return True


async def waited(awaitable: Awaitable[T], seconds: float, what: str, *, again_for: float = 2.0,
                 unused: Callable[[T], Awaitable[object]] | None = None) -> T:
    """``asyncio.wait_for(awaitable, seconds)`` whose cancel of ``awaitable`` (past ``seconds``, or the caller
    cancelled) cannot hold the caller: it is cancelled again until it ends (:func:`ended`, at most ``again_for`` s
    more, then left). Returns its result, also one it came to as it was cancelled; raises what it raised, else
    ``asyncio.TimeoutError`` past ``seconds``. Why (closes52): nats-py's connect retries for ever with
    ``max_reconnect_attempts=-1`` and takes a cancel that lands as an attempt is refused; ``wait_for`` then waited
    on it for ever (a start that should have said "cannot connect to NATS" and exited hung while NATS was away).
    ``unused``: given a result nobody receives (the caller was cancelled as it came, or it came after the await was
    left), e.g. a NATS client to close, so a late connect leaves no client reconnecting for ever."""
    task = asyncio.ensure_future(awaitable)

    def give_up() -> None:  # nobody receives the result: it goes to ``unused``
        if unused is not None:
            hand_late(task, unused)

    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        give_up()  # first: a second cancel during the end below must not skip it
        await ended([task], again_for, what, doing="what waited on it")
        raise
    if not done:
        try:
            await ended([task], again_for, what, doing="what waited on it")
        except asyncio.CancelledError:
            give_up()
            raise
        if not task.done() or task.cancelled():
            give_up()
            raise asyncio.TimeoutError
    return task.result()


#: tasks :func:`keep` holds until they end (the event loop keeps only weak references to tasks)
_KEPT: set[asyncio.Future[Any]] = set()


def keep(task: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Hold ``task`` until it ends, so a task nobody awaits is not collected half-done; returns it."""
    _KEPT.add(task)
    task.add_done_callback(_KEPT.discard)
    return task


def hand_late(task: asyncio.Future[T], use: Callable[[T], Awaitable[object]]) -> None:
    """Give ``task``'s result, which nobody else will receive, to ``use`` (run as a kept task) once it has one:
    now, or when ``task`` (kept meanwhile) ends; an error or a cancel is not handed. E.g. a NATS client connected
    after its caller gave up (closed), a read's subscription made after its reader was cancelled (unsubscribed)."""

    def give(done: asyncio.Future[T]) -> None:
        if not done.cancelled() and done.exception() is None:
            keep(asyncio.ensure_future(use(done.result())))

    if task.done():
        give(task)
    else:
        keep(task).add_done_callback(give)


async def given_up(task: asyncio.Future[T], use: Callable[[T], Awaitable[object]], what: str,
                   seconds: float = 2.0) -> bool:
    """Give up on ``task`` (e.g. a connect a stop no longer waits for): its result, should it come, goes to ``use``
    (:func:`hand_late`: a NATS client made from here on is closed, not left reconnecting), and ``task`` is cancelled,
    again until it ends, for at most ``seconds`` (:func:`ended`, ``what`` named if it does not: hang50). True if it
    ended."""
    hand_late(task, use)
    return await ended([task], seconds, what)


def _ours(task: asyncio.Task[object]) -> bool:
    """True if ``task`` runs gamead's own code (its coroutine is in a ``gamead_*`` package), not a library's."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "gamead_" in code.co_filename


def _where(task: asyncio.Task[object]) -> str:
    """``coroutine (file:line)``, or ``coroutine → innermost (file:line)``: the frame ``task`` waits in."""
    name = getattr(task.get_coro(), "__qualname__", repr(task.get_coro()))
    stack = task.get_stack()
    if not stack:
        return name
    code = stack[-1].f_code
    inner = "" if code.co_qualname == name else f" → {code.co_qualname}"
    return f"{name}{inner} ({os.path.basename(code.co_filename)}:{stack[-1].f_lineno})"


def still_running(loop: asyncio.AbstractEventLoop | None, wait: float = 1.0) -> str:
    """The unfinished tasks of ``loop``, read on the loop itself (gamead's own first, at most 5 named, then a
    count), or why they cannot be told: no loop, or one that did not answer within ``wait`` seconds (blocked)."""
    if loop is None or loop.is_closed():
        return "its event loop has ended (interpreter shutdown: a thread still joined?)"
    answer: list[str] = []
    done = threading.Event()

    def read() -> None:
        try:
            tasks = sorted((t for t in asyncio.all_tasks(loop) if not t.done()), key=lambda t: not _ours(t))
            answer.append("; ".join(_where(t) for t in tasks[:5]) + (f"; and {len(tasks) - 5} more" if len(tasks) > 5
                                                                       else "") or "no task left")
        finally:
            done.set()

    try:
        loop.call_soon_threadsafe(read)
    except RuntimeError:
        return "its event loop has ended"
    if not done.wait(wait) or not answer:
        return f"its event loop did not answer in {wait:g} s (blocked)"
    return f"still running: {answer[0]}"


def _nothing() -> None:
    return None


def arm(bound: float, role: str, *, loop: asyncio.AbstractEventLoop | None = None,
        on_cut: Callable[[], tuple[str, Callable[[], object]]] | None = None) -> threading.Thread | None:
    """From now on this process has ``bound`` seconds to end: past them, one line on stderr naming ``role``, the
    bound and what was still running (:func:`still_running`), then ``os._exit(CUT_EXIT)``. ``on_cut``: called (in
    the watch's thread) before the line, it gives words added to the line and an action run once the line is out,
    just before the exit (``gamead up``: ``killing (SIGKILL) worker-1 (pid N)``, then that kill: done before the
    line, it could let the stop end by itself first, without the line); an error of either is named or ignored.
    Arms once per process: later calls (a second signal) return None and change nothing. Returns the thread."""
    if not _armed.acquire(blocking=False):
        return None
    began = time.monotonic()
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None

    def watch() -> None:
        threading.Event().wait(bound)
        what = still_running(loop)
        joined = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
        if joined:  # what interpreter exit waits for (it joins every such thread)
            what += f"; threads not daemon: {', '.join(joined[:5])}"
        then: Callable[[], object] = _nothing
        if on_cut is not None:
            try:
                words, then = on_cut()
                what += f"; {words}"
            except Exception as exc:  # noqa: BLE001 - the exit must come whatever the hook does
                what += f"; its cut failed: {exc!r}"
        line = (f"gamead {role}: its stop did not end within its bound of {bound:g} s (after "
                f"{time.monotonic() - began:.1f} s; {what}): exiting now, with code {CUT_EXIT}, what was left cut\n")
        said = threading.Thread(target=os.write, args=(2, line.encode("utf-8", "replace")), daemon=True)
        said.start()  # in a thread of its own: a stderr pipe nobody reads must not keep the process alive
        said.join(1.0)
        try:
            then()
        finally:
            os._exit(CUT_EXIT)

    thread = threading.Thread(target=watch, name="gamead-stop-bound", daemon=True)
    thread.start()
    return thread


async def settle(task: asyncio.Future[Any], grace: float, bound: float, what: str) -> bool:
    """Wait up to ``grace`` seconds for ``task`` to end by itself (its stop already asked), then :func:`ended` it
    within ``bound`` seconds more: True if it ended."""
    await asyncio.wait({task}, timeout=grace)
    return await ended([task], bound, what)


__all__ = ["API_BOUND", "CUT_EXIT", "LAST_WRITES_MARGIN", "RECANCEL_EVERY", "UP_MARGIN", "WORKER_MARGIN", "arm",
           "ended", "given_up", "last_writes_until", "settle", "still_running", "up_bound", "waited", "within",
           "worker_bound"]
