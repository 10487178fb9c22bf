"""Where the suite's time goes: each test's wall time, worker and CPU, for whoever shortens ``make test``.

Off unless ``GAMEAD_TEST_TIMELINE=DIR`` is set: then each pytest process (each xdist worker) appends one JSON line
per test to ``DIR/<worker>.jsonl``: ``{"w": worker, "id": node id, "s": start, "e": end (epoch s, setup to
teardown), "cpu": s, "own": s, "kids": s, "phases": {"setup"|"call"|"teardown": CPU s}, "procs": {kind: count},
"fixtures": [[name, scope, own CPU s, kids CPU s, wall s], ...]}``. ``cpu`` (= ``own`` + ``kids``) is the CPU time
the test cost on this machine as far as its process can see it: ``own`` its pytest process's (``RUSAGE_SELF``),
``kids`` its reaped children's (``RUSAGE_CHILDREN``, and theirs: a ``gamead up`` and what it started, nats-servers,
fresh interpreters) and the fork server's children that ended meanwhile (:class:`tests.support.ForkServer`).
``procs``: the processes the test started itself (``nats-server``, ``valkey-server``, ``python`` for a fresh
interpreter, ``python:up`` for a fresh ``python -m gamead_cli up``, ``gamead:<command>`` for a command forked by the
fork server; not their own children). ``fixtures``: each fixture set up for it and the CPU and wall of that setup.

Children are counted once reaped: a process started by a module- or session-scoped fixture is counted with the test
in which it is stopped, a forked child's CPU with the test during which the fork server reports its exit (it may be
the next one, whose setup then shows the last module's ``gamead up`` or a session server stopped by
tests/session_ends.py), and a fixture's setup shows its servers' CPU only at their stop. So rank modules, not
single tests, by ``kids``. A test whose wall time is far above its CPU waits (on product timers, on other
processes): that is what more workers hide and shorter timers cut; the CPU is what two cores must do whatever the
count of workers.

``python -m tests.timeline DIR [N]``: the whole run (its span, each worker's busy time and its last end), the N
longest modules (wall, CPU, start, end, workers), the modules that ended last, the N tests that wait most; then the
N modules that cost most CPU (own, kids, the processes they started), the N fixtures whose setups cost most, and
every process the run started, by kind.

Session 34: the suite is bound by its total work, not by one long module: in a run at load 17-20 the 6 workers
ended within 3 s of each other and the longest module (``test_up``, 266 s) was a quarter of the 1,090 s span."""

from __future__ import annotations

import collections
import functools
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_DIR = os.environ.get("GAMEAD_TEST_TIMELINE")
_forked_seen = {"server": None, "sum": 0.0}


def _own_and_kids() -> tuple[float, float]:
    """CPU seconds used so far: (this process's, its reaped children's plus the fork server's ended children's)."""
    from tests.support import ForkServer

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    server = ForkServer._instance
    if server is not None and server is not _forked_seen["server"]:  # a new server: its dict starts empty
        _forked_seen["server"], _forked_seen["base"] = server, _forked_seen["sum"]
    forked = _forked_seen.get("base", 0.0) + (sum(server.cpu.values()) if server is not None else 0.0)
    _forked_seen["sum"] = forked
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime + forked


#: the test being run: its processes started (by kind) and the CPU of the fixtures it set up, filled in by the
#: hooks below while it runs
_NOW: dict[str, Any] = {"procs": collections.Counter(), "fixtures": []}


def _kind(argv: Any) -> str:
    """What a started process is, for the counts: the program's base name (``nats-server``, ``valkey-server``,
    ``python3 -m gamead_cli up`` as ``python:up``). Pure."""
    args = [str(a) for a in ([argv] if isinstance(argv, (str, bytes, os.PathLike)) else list(argv))]
    name = os.path.basename(args[0]) if args else "?"
    if name.startswith("python") and "gamead_cli" in args:
        rest = args[args.index("gamead_cli") + 1:]
        return f"python:{rest[0] if rest else '?'}"
    return name


def _count_starts() -> None:
    """Count each process this pytest process starts (``subprocess.Popen``: nats-server, valkey-server, fresh
    interpreters) and each ``gamead`` command the fork server forks for it (``gamead:<command>``)."""
    import subprocess

    from tests.support import ForkServer

    execute, fork = subprocess.Popen._execute_child, ForkServer.start  # type: ignore[attr-defined]

    # wrapped (``__wrapped__``): tests/forked_popen.py binds its arguments by ``Popen._execute_child``'s signature
    @functools.wraps(execute)
    def counted_execute(self: Any, args: Any, *rest: Any, **kw: Any) -> Any:
        _NOW["procs"][_kind(args)] += 1
        return execute(self, args, *rest, **kw)

    @functools.wraps(fork)
    def counted_fork(self: Any, args: list[str], *rest: Any, **kw: Any) -> Any:
        _NOW["procs"][f"gamead:{args[0] if args else '?'}"] += 1
        return fork(self, args, *rest, **kw)

    subprocess.Popen._execute_child = counted_execute  # type: ignore[attr-defined]
    ForkServer.start = counted_fork  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if _DIR:
        _count_starts()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[None]:
    """Note the CPU (own + children) and wall of each fixture's setup, with its scope."""
    if not _DIR:
        yield
        return
    start, (own, kids) = time.time(), _own_and_kids()
    yield
    own2, kids2 = _own_and_kids()
    _NOW["fixtures"].append([fixturedef.argname, fixturedef.scope, round(own2 - own, 3), round(kids2 - kids, 3),
                             round(time.time() - start, 3)])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not _DIR:
        yield
        return
    _NOW["procs"], _NOW["fixtures"], _NOW["phases"] = collections.Counter(), [], {}
    start, (own, kids) = time.time(), _own_and_kids()
    yield
    own2, kids2 = _own_and_kids()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(_DIR).mkdir(parents=True, exist_ok=True)
    row = {"w": worker, "id": item.nodeid.split("@", 1)[0], "s": start, "e": time.time(),
           "cpu": round(own2 - own + kids2 - kids, 3), "own": round(own2 - own, 3), "kids": round(kids2 - kids, 3),
           "phases": _NOW["phases"], "procs": dict(_NOW["procs"]), "fixtures": _NOW["fixtures"]}
    with open(Path(_DIR) / f"{worker}.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def _phase(name: str) -> Iterator[None]:
    """A hook wrapper's body: the CPU (own + children) of one phase of a test, noted as ``phases[name]``."""
    if not _DIR:
        yield
        return
    start = sum(_own_and_kids())
    yield
    _NOW.setdefault("phases", {})[name] = round(sum(_own_and_kids()) - start, 3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _phase("setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _phase("call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield from _phase("teardown")


def summary(rows: list[dict[str, Any]], n: int = 30) -> str:
    """The report of ``python -m tests.timeline`` for the rows of one run (pure)."""
    t0, lines = min(r["s"] for r in rows), []
    lines.append(f"{len(rows)} tests, span {max(r['e'] for r in rows) - t0:.0f} s, "
                 f"{sum(r['e'] - r['s'] for r in rows):.0f} worker-s, {sum(r.get('cpu', 0) for r in rows):.0f} CPU-s")
    by_worker: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    by_module: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_worker[r["w"]].append(r)
        by_module[r["id"].split("::", 1)[0]].append(r)
    for worker, rs in sorted(by_worker.items()):
        busy, end = sum(r["e"] - r["s"] for r in rs), max(r["e"] for r in rs) - t0
        lines.append(f"  {worker}: busy {busy:.0f} s, last end {end:.0f}")

    def module_line(path: str, rs: list[dict[str, Any]]) -> str:
        wall, cpu = sum(r["e"] - r["s"] for r in rs), sum(r.get("cpu", 0) for r in rs)
        start, end = min(r["s"] for r in rs) - t0, max(r["e"] for r in rs) - t0
        return (f"  {path:58s} {wall:6.1f} {cpu:6.1f} {start:6.0f} {end:6.0f} "
                f"{','.join(sorted({r['w'] for r in rs}))}")

    lines.append(f"longest modules:{'':43s} wall    CPU  start    end workers")
    for path, rs in sorted(by_module.items(), key=lambda kv: -sum(r["e"] - r["s"] for r in kv[1]))[:n]:
        lines.append(module_line(path, rs))
    lines.append("ended last:")
    for path, rs in sorted(by_module.items(), key=lambda kv: -max(r["e"] for r in kv[1]))[:8]:
        lines.append(module_line(path, rs))
    lines.append("tests that wait most (wall - CPU, wall, CPU):")
    for r in sorted(rows, key=lambda r: -(r["e"] - r["s"] - r.get("cpu", 0)))[:n]:
        lines.append(f"  {r['e'] - r['s'] - r.get('cpu', 0):6.1f} {r['e'] - r['s']:6.1f} {r.get('cpu', 0):6.1f} "
                     f"{r['id'][:110]}")
    return "\n".join(lines + cpu_summary(rows, n))


def charged(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each module's CPU with the setup of its first test on a worker charged to the module that worker ran before
    it (pure): that setup is where the last module's processes are counted when they end late (a ``gamead up``'s,
    reported by the fork server after its test) and where tests/session_ends.py stops a session server whose last
    user that module was."""
    out: dict[str, float] = collections.defaultdict(float)
    by_worker: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_worker[r.get("w", "")].append(r)
    for rs in by_worker.values():
        before = None
        for r in sorted(rs, key=lambda r: r["s"]):
            path = r["id"].split("::", 1)[0]
            out[path] += r.get("cpu", 0)
            if path != before and before is not None:
                setup = r.get("phases", {}).get("setup", 0.0)
                out[path] -= setup
                out[before] += setup
            before = path
    return out


def cpu_summary(rows: list[dict[str, Any]], n: int = 30) -> list[str]:
    """Where the CPU went (pure): modules by CPU (the pytest process's own, its children's), fixtures by the CPU
    of their setups, and the processes started, in all and by module."""
    lines = ["most CPU modules (charged: CPU less its first test's setup on a worker, plus the next module's there):",
             f"{'':60s}charged    CPU    own   kids  tests processes started"]
    by_module: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_module[r["id"].split("::", 1)[0]].append(r)
    moved = charged(rows)
    for path, rs in sorted(by_module.items(), key=lambda kv: -moved.get(kv[0], 0.0))[:n]:
        procs: collections.Counter[str] = collections.Counter()
        for r in rs:
            procs.update(r.get("procs", {}))
        lines.append(f"  {path:58s} {moved[path]:6.1f} {sum(r.get('cpu', 0) for r in rs):6.1f} "
                     f"{sum(r.get('own', 0) for r in rs):6.1f} {sum(r.get('kids', 0) for r in rs):6.1f} {len(rs):6d} "
                     + " ".join(f"{k}={v}" for k, v in procs.most_common(5)))
    fixtures: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for r in rows:
        for name, scope, own, kids, wall in r.get("fixtures", []):
            f = fixtures[(name, scope)]
            f[0], f[1], f[2], f[3] = f[0] + 1, f[1] + own, f[2] + kids, f[3] + wall
    lines.append(f"fixtures by setup CPU:{'':27s} scope     setups    own   kids   wall")
    for (name, scope), (count, own, kids, wall) in sorted(fixtures.items(), key=lambda kv: -(kv[1][1] + kv[1][2]))[:n]:
        lines.append(f"  {name:45s} {scope:9s} {count:6d} {own:6.1f} {kids:6.1f} {wall:6.1f}")
    total: collections.Counter[str] = collections.Counter()
    for r in rows:
        total.update(r.get("procs", {}))
    lines.append("processes started: " + ", ".join(f"{k} {v}" for k, v in total.most_common()))
    return lines


def main(argv: list[str]) -> int:
    rows = [json.loads(line) for path in sorted(Path(argv[0]).glob("*.jsonl")) for line in path.open()]
    print(summary(rows, int(argv[1]) if len(argv) > 1 else 30))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
