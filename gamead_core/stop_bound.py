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
pod is never SIGKILLed for a shutdown that hangs: it says what hung first.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

#: seconds a worker's stop may take beyond ``worker.drain_timeout``: hand-back refunds, lease and heartbeat
#: removal (each at most ``nats.request_timeout``), the NATS connection's drain (5 s) and close (2 s)
WORKER_MARGIN = 12.0
#: seconds ``gamead serve``'s stop may take: uvicorn's graceful shutdown (10 s) plus the lifespan's (leases,
#: heartbeat, NATS drain); with the 5 s preStop, below manifests/api.yaml's terminationGracePeriodSeconds (35)
API_BOUND = 25.0
#: exit code of a process whose stop was cut by its bound (the README's 1: an unexpected error, the line says why)
CUT_EXIT = 1
_armed = threading.Lock()


def worker_bound(drain_timeout: float) -> float:
    """Seconds a worker's stop may take, from its first stop signal: ``drain_timeout`` + :data:`WORKER_MARGIN`."""
    return drain_timeout + WORKER_MARGIN


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


def arm(bound: float, role: str, *, loop: asyncio.AbstractEventLoop | None = None) -> threading.Thread | None:
    """From now on this process has ``bound`` seconds to end: past them, one line on stderr naming ``role``, the
    bound and what was still running (:func:`still_running`), then ``os._exit(CUT_EXIT)``. Arms once per process:
    later calls (a second signal) return None and change nothing. Returns the daemon thread."""
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
        line = (f"gamead {role}: its stop did not end within its bound of {bound:g} s (after "
                f"{time.monotonic() - began:.1f} s; {what}): exiting now, with code {CUT_EXIT}, what was left cut\n")
        said = threading.Thread(target=os.write, args=(2, line.encode("utf-8", "replace")), daemon=True)
        said.start()  # in a thread of its own: a stderr pipe nobody reads must not keep the process alive
        said.join(1.0)
        os._exit(CUT_EXIT)

    thread = threading.Thread(target=watch, name="gamead-stop-bound", daemon=True)
    thread.start()
    return thread


__all__ = ["API_BOUND", "CUT_EXIT", "WORKER_MARGIN", "arm", "still_running", "worker_bound"]
