"""Libraries a dependency imports at its own import but uses only on a rare path, loaded on first use instead
(perf41).

nats-py imports aiohttp when it is imported (``nats/aio/transport.py``), for its WebSocket transport alone: only a
``ws://`` or ``wss://`` server in ``nats.url`` uses it. aiohttp and what it brings (attrs, yarl, multidict,
frozenlist, aiosignal, aiohappyeyeballs: ~100 modules) were ~11 MB of every role's resident set (``import nats``:
37.0 MB with it, 26.1 MB without), against issue 14's bounds (worker ≤ 80 MB, API ≤ 120 MB). :func:`defer` puts a
stand-in module in ``sys.modules``: ``import aiohttp`` binds it, its truth test (nats-py's ``if not aiohttp``) is a
module's, true, and the first attribute asked of it that it does not have (a WebSocket transport's
``aiohttp.ClientSession``, a ``from aiohttp import X``) imports the library whole, puts it in ``sys.modules`` in the
stand-in's place and answers from it, then and ever after. Not :class:`importlib.util.LazyLoader`: on Python 3.11
an ``import aiohttp`` of a module already in ``sys.modules`` reads its ``__spec__``, which loads a lazy module at
once (nats-py's own import did). Installed from ``gamead_core/__init__.py``, before any gamead module imports nats.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

#: the libraries deferred (:func:`defer` each at ``gamead_core``'s import)
DEFERRED = ("aiohttp",)


class Deferred(types.ModuleType):
    """The stand-in of a library not loaded yet (:func:`defer`): its name, ``__spec__`` (the library's, so
    ``importlib.util.find_spec`` answers as before) and the attributes the import system derives from it
    (``__file__``, ``__cached__``, ``__loader__``, ``__package__``: what a walk over ``sys.modules`` asks of each
    module); any other attribute (``__path__`` too) loads the library (:func:`load`)."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(load(self.__name__), attr)


def load(name: str) -> types.ModuleType:
    """The library ``name`` itself, imported now if its stand-in is still in ``sys.modules``. Raises what its import
    raises (the stand-in then stays, for a later try)."""
    current = sys.modules.get(name)
    if not isinstance(current, Deferred):
        return current if current is not None else importlib.import_module(name)
    del sys.modules[name]
    try:
        return importlib.import_module(name)
    except BaseException:
        sys.modules.setdefault(name, current)
        raise


def defer(name: str) -> bool:
    """Put the stand-in of ``name`` in ``sys.modules`` (:class:`Deferred`); True if it did. Nothing is done (False)
    when ``name`` is imported already or not installed: an importer then gets what it always got, the module or its
    ImportError. Raises nothing."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    stand_in = Deferred(name)
    stand_in.__spec__ = spec
    # what the import system sets on a module before running it, from its spec (importlib's _init_module_attrs):
    # a walk over sys.modules asks these of every module (inspect.stack() -> getmodule: hasattr(m, "__file__"), a
    # debugger, pydoc), and would otherwise load the library (left42: +84 modules, +7 MB of a role's 80 MB).
    # ``__path__`` is left out on purpose: ``import aiohttp.web`` reads it, and must load the package first.
    stand_in.__loader__ = spec.loader
    stand_in.__package__ = spec.parent
    if spec.has_location and spec.origin is not None:
        stand_in.__file__ = spec.origin
        stand_in.__cached__ = spec.cached
    sys.modules[name] = stand_in
    return True


def defer_all() -> None:
    """:func:`defer` each library of :data:`DEFERRED`. Raises nothing."""
    for name in DEFERRED:
        defer(name)


__all__ = ["DEFERRED", "Deferred", "defer", "defer_all", "load"]
