"""aiohttp, which nats-py imports and gamead never uses, is not run by a role's start (gamead_core.deferred)."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)


def _imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_a_workers_start_imports_nats_but_runs_none_of_aiohttp() -> None:
    """Figure: before, ``import gamead_core.worker.runtime`` ran 39 aiohttp modules (~0.25 s of CPU of ~1.1 s)."""
    done = _run("import gamead_core.worker.runtime, sys; print(type(sys.modules['aiohttp']).__name__)")
    imported = _imported(done.stderr)
    assert "nats.aio.transport" in imported
    assert not {name for name in imported if name.split(".")[0] == "aiohttp"}
    assert done.stdout.strip() == "_Deferred"


def test_aiohttp_still_works_when_used_by_attribute_or_by_a_submodule_import() -> None:
    """nats-py's WebSocket transport reads ``aiohttp.ClientSession``; ``import aiohttp.web`` runs the package first
    (before the package's ``__path__`` was held back, its submodules' circular imports failed)."""
    code = ("import sys, gamead_core, nats.aio.transport as t\n"
            "assert t.aiohttp.ClientSession.__name__ == 'ClientSession'\n"
            "assert type(sys.modules['aiohttp']).__name__ == 'module'\n")
    _run(code)
    _run("import gamead_core, aiohttp.web\nassert aiohttp.web.Application and aiohttp.ClientSession")
    _run("import gamead_core\nfrom aiohttp import ClientSession, web\nassert web.Application and ClientSession")
