"""The end of a fork server's child (``tests/forkserver.py``): the interpreter's shutdown, less its module teardown.

A forked child shares the fork server's heap (gamead, FastAPI, uvicorn, pydantic, nats-py: ~60 MB) page by page
until it writes to one. At the end of an ordinary interpreter the module teardown (``finalize_modules``) drops
every module's objects, writing the reference count of nearly every inherited object: the kernel copies ~16,000
pages to do it, ~0.075 s of CPU per child (``gamead --version`` forked: 0.089 s with the teardown, 0.017 s
without; a ``make test`` run forks ~700 children). The objects die with the process anyway.

:func:`run` runs ``python -m gamead_cli`` as ``runpy`` does, then, when it ended as a program normally ends
(returned, or ``SystemExit`` with ``None`` or an int), does what ``Py_FinalizeEx`` does before the teardown, in its
order: wait for the non-daemon threads (``threading._shutdown``), run the ``atexit`` functions, flush stdout (a
failure reported as the interpreter reports it: ``Exception ignored in: <stdout>`` and its traceback, exit status
120) and stderr (failures ignored), collect the garbage (finalizers run), flush again; then ``os._exit``. Anything
else (an uncaught exception, a ``KeyboardInterrupt``, a non-int ``SystemExit``) is raised on: the interpreter ends
as it always does. ``GAMEAD_TEST_FORKSERVER=full-exit`` in pytest's environment (read by the fork server at its
start): every child forked, and ended by the interpreter's full shutdown.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
import traceback


def _flush(stream: object, report: bool) -> bool:
    """Flush ``stream`` (``sys.stdout`` or ``sys.stderr``) unless it is gone or closed; False if that failed."""
    if stream is None or getattr(stream, "closed", True):
        return True
    try:
        stream.flush()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - what the interpreter does with it (flush_std_files)
        if report:
            try:
                sys.stderr.write(f"Exception ignored in: {stream!r}\n")
                traceback.print_exception(exc, file=sys.stderr)
            except Exception:  # noqa: BLE001, S110 - stderr is gone too: nothing to report to
                pass
        return False
    return True


#: a file to which a child appends each module it imports itself (one a line, as it imports it: a child ended by
#: a signal has said them too), which the fork server's ``PRELOAD`` missed (tests/integration/test_fork_preload.py)
IMPORTS_ENV = "TEST_FORKED_IMPORTS"


def _say_imports() -> None:
    """If :data:`IMPORTS_ENV` names a file, append to it the name of every module imported from now on."""
    target = os.environ.get(IMPORTS_ENV)
    if not target:
        return
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    inherited = set(sys.modules)

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "import" and args[0] not in inherited:
            os.write(out, f"{args[0]}\n".encode())

    sys.addaudithook(hook)


def _end(code: int) -> None:
    """``Py_FinalizeEx`` up to the module teardown, then ``os._exit`` (see the module docstring)."""
    threading._shutdown()  # type: ignore[attr-defined]  # joins the non-daemon threads, as the interpreter does
    atexit._run_exitfuncs()
    ok = _flush(sys.stdout, report=True)
    _flush(sys.stderr, report=False)
    gc.collect()
    ok = _flush(sys.stdout, report=True) and ok
    _flush(sys.stderr, report=False)
    os._exit(code if ok else 120)


def run(full: bool = False) -> None:
    """``python -m gamead_cli``, with the end above (``full``: the interpreter's own end)."""
    import runpy

    _say_imports()
    if full:
        runpy.run_module("gamead_cli", run_name="__main__", alter_sys=True)
        return
    try:
        runpy.run_module("gamead_cli", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is not None and (not isinstance(exc.code, int) or isinstance(exc.code, bool)):
            raise
        code = exc.code or 0
    else:
        code = 0
    _end(code)
