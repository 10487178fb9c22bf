"""The fork server (tests/forkserver.py) imports before it forks all that a ``serve`` and a ``worker`` import: a
forked child that imports modules of its own pays for them at every start, and a run starts ~320 ``serve`` and
~200 ``worker`` processes (suite41, ``GAMEAD_TEST_FORKSERVER_REPORT`` of a ``make test``).

Figure (suite41): a ``serve`` imported 23 modules after its fork (uvicorn's websocket protocol with the
``websockets`` package, which ``Config.load`` imports for ``ws="auto"``; two of Typer's; one of FastAPI's); its
start and stop took 0.115 CPU-s (mean of 24, in runs side by side), 0.099 with them preloaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gamead_core.embedded import EmbeddedNats
from tests.child_exit import IMPORTS_ENV
from tests.support import Proc, start_api, start_worker


@pytest.mark.parametrize("role", ["serve", "worker"])
def test_a_forked_role_imports_nothing_of_its_own(tmp_path: Path, fresh_nats: Callable[[], EmbeddedNats],
                                                  procs: list[Proc], role: str) -> None:
    nats = fresh_nats()
    said = tmp_path / "imports.txt"
    env = {IMPORTS_ENV: str(said)}
    if role == "serve":
        proc = start_api(nats.url, tmp_path, **env)[0]
    else:
        proc = start_worker(nats.url, tmp_path, ready=True, **env)
    procs.append(proc)
    assert proc.stop(timeout=30) is not None  # ended (a serve by its own SIGTERM again: -15), every import said
    assert said.read_text().split() == [], said.read_text()
