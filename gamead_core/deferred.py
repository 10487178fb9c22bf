"""Third-party modules that a dependency imports at its own import but gamead never uses: loaded on first use.

nats-py's ``nats.aio.transport`` imports aiohttp when it is imported (only for its WebSocket transport, ``ws://``
server URLs), and every gamead process that talks to NATS imports nats-py: ~0.25-0.3 s of CPU of the ~1.1 s a
``gamead worker`` took to start (~25 %), the same in ``serve`` and ``up``
(``/usr/bin/time python -c 'import …'``, session 36: worker 1.00-1.11 -> 0.84-0.93 s, serve 1.76-1.90 -> 1.39-1.77).
aiohttp is installed (``kubernetes`` requires it), so nats-py finds it. With :func:`defer`, ``import aiohttp``
returns a module whose code runs on the first read of one of its names (:class:`_Deferred`): a ``ws://`` URL
still works, and a process that never opens one never runs aiohttp's import. Nothing else changes:
``sys.modules`` holds the one module object, which becomes the real module once it is used.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from typing import Any

#: modules deferred by :func:`defer_unused`: imported by a dependency at its import, used by gamead never
UNUSED = ("aiohttp",)
_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """A module whose code has not run yet: its first read of an attribute it lacks runs it, in place.

    Only a *missing* attribute does (``__getattr__``): the import system's own reads of ``__spec__`` and
    ``__name__``, which :class:`importlib.util.LazyLoader` takes for uses (an ``import aiohttp`` statement ran all
    of aiohttp at once), find what :func:`importlib.util.module_from_spec` set. A package's ``__path__`` is held
    back: importing one of its submodules (``import aiohttp.web``) reads it, and so runs the package's code first,
    in the order a plain import has (its submodules import each other through it)."""

    def __getattr__(self, attr: str) -> Any:
        with _LOCK:
            if type(self) is _Deferred:  # not run yet (another thread may have run it meanwhile)
                spec = self.__spec__
                self.__class__ = types.ModuleType
                if spec.submodule_search_locations is not None:  # a package: its path back before its code runs
                    self.__path__ = spec.submodule_search_locations
                try:
                    spec.loader.exec_module(self)  # type: ignore[union-attr]
                except BaseException:
                    sys.modules.pop(spec.name, None)  # the next import tries again, as after any failed import
                    raise
        return object.__getattribute__(self, attr)


def defer(name: str) -> bool:
    """Put a deferred ``name`` (:class:`_Deferred`) in ``sys.modules`` unless it is imported already or not
    installed. Returns True if it did."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None:
        return False
    module = importlib.util.module_from_spec(spec)
    if type(module) is not types.ModuleType:  # a loader with a module type of its own: left as it is
        return False
    module.__dict__.pop("__path__", None)  # a submodule's import reads it: the package's own code runs first
    module.__class__ = _Deferred
    sys.modules[name] = module
    return True


def defer_unused() -> None:
    """:func:`defer` every module of :data:`UNUSED` (called when ``gamead_core`` is imported)."""
    for name in UNUSED:
        defer(name)
