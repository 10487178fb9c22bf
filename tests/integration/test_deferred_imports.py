"""aiohttp, which nats-py imports for its WebSocket transport alone, is loaded only when a ``ws://`` server is used
(:mod:`gamead_core.deferred_imports`, perf41): the roles' resident set is ~10 MB smaller, and a ``ws://`` NATS URL
still works.

Figures, in a fresh interpreter: ``serve``'s and ``worker``'s modules together 1,140 modules and 89.5 MB resident
with aiohttp, 1,056 and 81.4 MB without; ``import nats`` alone 37.0 → 26.1 MB. Without the stand-in the first test
fails (aiohttp's 60 modules and yarl's loaded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gamead_core.embedded import (
    free_port,
    nats_server_binary,
    port_lost,
    start_on_picked_port,
    terminate,
    wait_for_listener,
)
from gamead_core.proc import die_with_parent

ROLES = ("gamead_cli.commands.serve", "gamead_cli.commands.worker", "gamead_core.api.app",
         "gamead_core.worker.runtime")

_LOADED = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
theirs = ("aiohttp.", "yarl", "aiohappyeyeballs")
print(json.dumps(sorted(m for m in sys.modules if m == "aiohttp" or m.startswith(theirs))))
print(type(sys.modules.get("aiohttp")).__name__)
"""

_OVER_WS = """
import asyncio, sys, time
from gamead_core.config import GameadSettings
from gamead_core.queue.connection import connection

class SlowImport:  # argv[2]: seconds aiohttp's import takes (a loaded machine), 0: as it is
    def find_spec(self, name, path=None, target=None):
        if name == "aiohttp":
            time.sleep(float(sys.argv[2]))
        return None

sys.meta_path.insert(0, SlowImport())

async def main() -> None:
    async with connection(GameadSettings().nats, sys.argv[1], name="ws-test") as nc:
        info = await nc.jetstream().account_info()
        print("jetstream", info.limits is not None, "aiohttp.client" in sys.modules)

asyncio.run(main())
"""


def test_the_roles_do_not_load_aiohttp() -> None:
    """What ``gamead serve`` and ``gamead worker`` import, in a fresh interpreter: aiohttp is its stand-in, none
    of its modules (nor yarl's, aiohappyeyeballs') loaded."""
    out = subprocess.run([sys.executable, "-c", _LOADED, *ROLES], capture_output=True, text=True, timeout=60,
                         check=True).stdout.splitlines()
    assert json.loads(out[0]) == ["aiohttp"], out[0]
    assert out[1] == "Deferred"


_WALKED = """
import importlib, inspect, json, pydoc, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
inspect.stack()  # inspect.getmodule of each frame: hasattr(m, "__file__") of every module in sys.modules
pydoc.render_doc(sys.modules["nats.aio.transport"])  # help() on the module that imports aiohttp
theirs = ("aiohttp.", "yarl", "aiohappyeyeballs")
print(json.dumps(sorted(m for m in sys.modules if m == "aiohttp" or m.startswith(theirs))))
stand_in = sys.modules["aiohttp"]
print(type(stand_in).__name__, stand_in.__file__ == importlib.util.find_spec("aiohttp").origin)
"""


def test_a_walk_over_the_modules_does_not_load_aiohttp() -> None:
    """left42: ``inspect.stack()`` (and a debugger, ``help()``: anything asking every module in ``sys.modules`` for
    its ``__file__``) loaded aiohttp through its stand-in's ``__getattr__``: 1,062 → 1,146 modules, 79.9 → 86.8 MB
    resident in the roles' interpreter. The stand-in now has the import system's attributes (``__file__`` …) from
    the library's spec. Without the fix: aiohttp's modules listed, ``module``; with it: none, ``Deferred``."""
    out = subprocess.run([sys.executable, "-c", _WALKED, *ROLES], capture_output=True, text=True, timeout=60,
                         check=True).stdout.splitlines()
    assert json.loads(out[0]) == ["aiohttp"], out[0]
    assert out[1] == "Deferred True"


@contextmanager
def _ws_nats(tmp_path: Path, pick: Callable[[str], int] = free_port) -> Iterator[int]:
    """A nats-server with JetStream and a WebSocket listener; yields its WebSocket port. Both ports are picked
    (``pick(host)``) and picked again when another process takes one before the server binds it
    (:func:`~gamead_core.embedded.start_on_picked_port`); the client port is waited for, which nats-server binds
    after its WebSocket port (a WebSocket port it cannot bind ends it)."""
    conf, log = tmp_path / "nats.conf", tmp_path / "nats-server.log"
    ws: list[int] = []

    def picked(host: str) -> int:
        ws[:] = [pick(host)]
        return pick(host)

    def spawn(port: int) -> subprocess.Popen[bytes]:
        conf.write_text(f'listen: "127.0.0.1:{port}"\njetstream {{\n  store_dir: "{tmp_path / "js"}"\n}}\n'
                        f'websocket {{\n  listen: "127.0.0.1:{ws[0]}"\n  no_tls: true\n}}\n')
        with open(log, "ab") as out:
            return subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent())

    _, proc = start_on_picked_port(spawn, log, "nats-server", timeout=15.0, pick=picked,
                                   lost=lambda problem, port: port_lost(problem, "127.0.0.1", port)
                                   or port_lost(problem, "127.0.0.1", ws[0]))
    try:
        wait_for_listener("127.0.0.1", ws[0], proc, time.monotonic() + 15, log)
        yield ws[0]
    finally:
        terminate(proc, 10)


def _over_ws(ws_port: int, import_takes: float, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _OVER_WS, f"ws://127.0.0.1:{ws_port}", str(import_takes)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def test_a_websocket_nats_url_still_works(tmp_path: Path) -> None:
    """A nats-server with a WebSocket listener: gamead's connection to its ``ws://`` URL loads aiohttp then and
    reaches JetStream."""
    with _ws_nats(tmp_path) as ws_port:
        done = _over_ws(ws_port, 0)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == ["jetstream", "True", "True"], done.stdout


def test_a_slow_aiohttp_import_is_not_charged_to_the_connect(tmp_path: Path) -> None:
    """flakes52C: a fresh clone's suite at load 40 failed the test above with ``cannot connect to NATS at ws://…:
    TimeoutError``: nats-py imports aiohttp (deferred, ~100 modules) inside the connect, under its bound
    (``nats.connect_timeout`` + 1 s, one attempt). Here the import takes 3 s and the bound is 1.5 s: before, the
    connect failed so; now a ``ws://`` server has aiohttp loaded before the connect begins, and it connects."""
    with _ws_nats(tmp_path) as ws_port:
        done = _over_ws(ws_port, 3, GAMEAD_NATS__CONNECT_TIMEOUT="0.5")
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == ["jetstream", "True", "True"], done.stdout
