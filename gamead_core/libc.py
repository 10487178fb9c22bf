"""The C library's functions that gamead calls through ``ctypes`` (``prctl``, ``malloc_trim``), looked up without
running a program.

``ctypes.util.find_library("c")`` runs ``ldconfig -p`` (a fork and exec; 16 ms on an idle 2-core machine, more under
load) to find a file name the interpreter has already loaded: every process that imported :mod:`gamead_core.proc` or
:mod:`gamead_core.collector` (each ``gamead`` command, each role, each of the suite's ~200 processes) paid it twice.
``ctypes.CDLL(None)`` is ``dlopen(NULL)``: the running program and the libraries it is linked with, the C library
among them wherever CPython links it dynamically (glibc and musl Linux builds, macOS); 0.1 ms. The file name is
looked for only where that handle lacks the C library (a static build)."""

from __future__ import annotations

import ctypes
from typing import Any


def libc_function(name: str) -> Any:
    """The C library's function ``name`` as a ``ctypes`` function pointer (``errno`` kept for
    ``ctypes.get_errno``), or None where the C library has no such function (``malloc_trim`` on musl or macOS,
    ``prctl`` off Linux) or cannot be loaded. Runs a program (``ldconfig``) only where the running program's
    handle lacks the C library itself (no ``malloc``: a static build), never for a function the library lacks
    (review42b F6: on musl, ``malloc_trim``'s absence ran ``ldconfig`` at every role's import). Never raises."""
    try:
        here = ctypes.CDLL(None, use_errno=True)
    except OSError:
        here = None
    if here is not None:
        try:
            return getattr(here, name)
        except AttributeError:
            if hasattr(here, "malloc"):  # the C library is linked in, without this function
                return None
    try:  # a statically linked interpreter: the library's file, found as ctypes finds it (ldconfig)
        from ctypes.util import find_library

        path = find_library("c")
        return getattr(ctypes.CDLL(path, use_errno=True), name) if path else None
    except (OSError, AttributeError):
        return None
