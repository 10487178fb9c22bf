"""Where the suite's time goes: each test's wall time, worker and CPU, for whoever shortens ``make test``.

Off unless ``GAMEAD_TEST_TIMELINE=DIR`` is set: then each pytest process (each xdist worker) appends one JSON line
per test to ``DIR/<worker>.jsonl``: ``{"w": worker, "id": node id, "s": start, "e": end (epoch s, setup to
teardown), "cpu": s}``. ``cpu`` is the CPU time the test cost on this machine as far as its process can see it: its
pytest process's own, its reaped children's (and theirs: a ``gamead up`` and what it started, nats-servers, fresh
interpreters) and the fork server's children that ended meanwhile (:class:`tests.support.ForkServer`); a process
started by a module- or session-scoped fixture is counted with the test in which it is stopped. A test whose wall
time is far above its CPU waits (on product timers, on other processes): that is what more workers hide and
shorter timers cut; the CPU is what two cores must do whatever the count of workers.

``python -m tests.timeline DIR [N]``: the whole run (its span, each worker's busy time and its last end), the N
longest modules (wall, CPU, start, end, workers), the modules that ended last, and the N tests that wait most.

Session 34: the suite is bound by its total work, not by one long module: in a run at load 17-20 the 6 workers
ended within 3 s of each other and the longest module (``test_up``, 266 s) was a quarter of the 1,090 s span."""

from __future__ import annotations

import collections
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


def _cpu_so_far() -> float:
    """CPU seconds this process, its reaped children and the fork server's ended children have used."""
    from tests.support import ForkServer

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    server = ForkServer._instance
    if server is not None and server is not _forked_seen["server"]:  # a new server: its dict starts empty
        _forked_seen["server"], _forked_seen["base"] = server, _forked_seen["sum"]
    forked = _forked_seen.get("base", 0.0) + (sum(server.cpu.values()) if server is not None else 0.0)
    _forked_seen["sum"] = forked
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + forked


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not _DIR:
        yield
        return
    start, cpu = time.time(), _cpu_so_far()
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(_DIR).mkdir(parents=True, exist_ok=True)
    with open(Path(_DIR) / f"{worker}.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps({"w": worker, "id": item.nodeid.split("@", 1)[0], "s": start, "e": time.time(),
                              "cpu": round(_cpu_so_far() - cpu, 3)}) + "\n")


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
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    rows = [json.loads(line) for path in sorted(Path(argv[0]).glob("*.jsonl")) for line in path.open()]
    print(summary(rows, int(argv[1]) if len(argv) > 1 else 30))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
