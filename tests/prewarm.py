"""Bytecode made once per run, before pytest-xdist's workers start, not once in each of them.

On a fresh clone (CI, ``git clone && make test``) no ``__pycache__`` exists yet, and each of ``make test``'s six
workers imported every test module through pytest's assertion rewriter: parse, rewrite the asserts, compile,
~15 CPU-s per worker for the 395 modules (20 CPU-s to collect the suite cold, 5-6 warm; session 36), then wrote
the same ``.pyc`` files as the five others. The gamead modules that every worker, fork server and fresh
interpreter imports were compiled the same way by whoever came first, concurrently.

This plugin (``pytest_plugins`` of tests/conftest.py) does that work in the xdist controller, in
``pytest_configure``, before any worker starts: plain bytecode for the project's packages
(:mod:`compileall`, a stat per file when it is fresh), and pytest's rewritten bytecode (the file name, header
and code its own import hook writes and reads back: ``_pytest.assertion.rewrite``) for every module that hook
rewrites here: test files (``python_files``), ``conftest.py`` files and this package's pytest plugins. Both spread
over the machine's cores. A run in one process (``-n 0``, ``TEST_ARGS=``), ``--assert=plain`` or
``PYTHONDONTWRITEBYTECODE`` does nothing here: pytest then does as it always does. Nothing a test runs changes:
a worker reads a cache file only if its header matches the source's mtime and size, as before.
"""

from __future__ import annotations

import compileall
import fnmatch
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

#: the project's packages whose plain bytecode every process of the run reads
PACKAGES = ("gamead_core", "gamead_cli", "tests")
_CONFIG: list[pytest.Config] = []  #: the config a forked rewriter uses (set before the fork)


def rewritten_targets(root: Path, patterns: list[str], marked: set[str]) -> list[Path]:
    """The files under ``root/tests`` that pytest's import hook rewrites: names matching ``patterns``
    (``python_files``), ``conftest.py``, and the modules ``marked`` for rewriting (dotted names, e.g. the
    ``pytest_plugins`` ``tests.timeline``; names outside ``root`` are left alone). Pure but for listing files."""
    named = {root.joinpath(*name.split(".")).with_suffix(".py") for name in marked}
    return sorted(path for path in (root / "tests").rglob("*.py")
                  if path.name == "conftest.py" or path in named
                  or any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns))


def cached(source: Path) -> Path:
    """Where pytest keeps the rewritten bytecode of ``source``."""
    from _pytest.assertion.rewrite import PYC_TAIL, get_cache_dir

    return get_cache_dir(source) / (source.name[:-3] + PYC_TAIL)


def fresh(source: Path) -> bool:
    """True if pytest would use the cached rewrite of ``source`` (header: magic, flags 0, mtime, size)."""
    import importlib.util

    try:
        with open(cached(source), "rb") as pyc:
            header = pyc.read(16)
        stat = source.stat()
    except OSError:
        return False
    return (header[:8] == importlib.util.MAGIC_NUMBER + b"\0\0\0\0"
            and int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF)


def rewrite(source: Path) -> None:
    """Rewrite ``source``'s asserts and write its cache file, as pytest's import hook does (atomically)."""
    from _pytest.assertion import rewrite as hook

    cache = cached(source)
    if hook.try_makedirs(cache.parent):
        stat, code = hook._rewrite_test(source, _CONFIG[0])
        hook._write_pyc(_CONFIG[0].stash[hook.assertstate_key], code, stat, cache)


def asked_for(path: Path, args: list[Path]) -> bool:
    """True if ``path`` is one of ``args`` (files or directories, absolute) or lies under one. Pure."""
    return any(path == arg or arg in path.parents for arg in args)


def prewarm(config: pytest.Config, root: Path, cores: int, args: list[Path] | None = None) -> list[Path]:
    """Compile :data:`PACKAGES` under ``root`` and rewrite the stale test modules on ``cores`` processes: of the
    test files, those under ``args`` (the run's paths; None: all), so that a run of a few modules on a cold tree
    does not rewrite the suite; conftest and plugin modules always. Returns the modules rewritten."""
    for package in PACKAGES:
        if (root / package).is_dir():
            compileall.compile_dir(root / package, quiet=2, workers=cores)  # an error is pytest's to report
    from _pytest.assertion.rewrite import AssertionRewritingHook

    hook = next((finder for finder in sys.meta_path if isinstance(finder, AssertionRewritingHook)), None)
    if hook is None:  # --assert=plain
        return []
    marked = set(getattr(hook, "_must_rewrite", ()))
    patterns = config.getini("python_files")
    stale = [path for path in rewritten_targets(root, patterns, marked) if not fresh(path) and (
        args is None or asked_for(path, args) or not any(fnmatch.fnmatch(path.name, p) for p in patterns))]
    _CONFIG[:] = [config]
    if len(stale) > 1 and cores > 1:
        with ProcessPoolExecutor(cores, mp_context=get_context("fork")) as pool:
            list(pool.map(rewrite, stale, chunksize=8))
    else:
        for path in stale:
            rewrite(path)
    return stale


def pytest_configure(config: pytest.Config) -> None:
    workers = getattr(config.option, "numprocesses", None)
    if sys.dont_write_bytecode or hasattr(config, "workerinput") or not workers:
        return  # no cache written anyway; an xdist worker; one process: its own imports do it
    invoked = Path(config.invocation_params.dir)
    args = [(invoked / arg.split("::", 1)[0]).resolve() for arg in config.args]
    try:
        prewarm(config, Path(config.rootpath), max(1, min(os.cpu_count() or 1, 4)), args)
    except (ImportError, AttributeError, TypeError, ValueError, OSError) as exc:  # pytest's internals moved
        config.issue_config_time_warning(pytest.PytestWarning(f"prewarm skipped: {exc!r}"), stacklevel=2)
