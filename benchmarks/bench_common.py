"""Helpers shared by ``bench_sweep.py``, ``bench_scaling.py`` and others (on top of ``bench_pipeline.py``'s ``Procs``,
``Stack``, ``KvObserver`` and CPU readers, which they import): worker processes with extra settings, memory
and load readings, waiting for workers to register, and a paced ``POST /ads/batch`` generator.

Not a benchmark itself; nothing here starts a process that ``Procs`` does not stop by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_pipeline import Procs, Stack, gamead_env, http_request_bytes, log, read_response  # noqa: E402

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6


def comma_floats(text: str) -> list[float]:
    """``"1,2.5,10"`` → ``[1.0, 2.5, 10.0]``: an argparse ``type`` for a comma-separated list of numbers."""
    return [float(x) for x in text.split(",") if x.strip()]


def rounds_and_output(p: argparse.ArgumentParser) -> None:
    """Add the options every rounds-based benchmark has: ``--rounds`` (3; each figure is the median over them) and
    ``--output table|json``."""
    p.add_argument("--rounds", type=int, default=3, help="rounds (3); each figure is the median")
    p.add_argument("--output", choices=["table", "json"], default="table")


def finish_main(p: argparse.ArgumentParser, argv: list[str], problem: Callable[[argparse.Namespace], str | None],
                run: Callable[[argparse.Namespace], dict[str, Any]],
                print_table: Callable[[dict[str, Any]], None]) -> int:
    """The end of a rounds-based benchmark's ``main``: parse ``argv`` with ``p`` (its options, plus
    :func:`rounds_and_output`'s), refuse what ``problem(args)`` names (exit 2), then run and print
    (:func:`print_result`). Returns 0."""
    args = p.parse_args(argv)
    if (why := problem(args)) is not None:
        p.error(why)
    print_result(run(args), args.output, print_table)
    return 0


def print_result(result: dict[str, Any], output: str, print_table: Callable[[dict[str, Any]], None]) -> None:
    """Print a benchmark's ``result`` as indented JSON on stdout when ``output`` is ``"json"`` (``--output json``,
    for scripts), else as its table (``print_table(result)``)."""
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


def rss_mb(pid: int) -> float | None:
    """Resident set size of a live process in MB (10^6 bytes), from /proc/PID/statm (None if gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_MB
    except (OSError, IndexError, ValueError):
        return None


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``"2.41 / 3.10 / 3.02"`` (runnable tasks; this box has 2 cores)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def default_worker_concurrency() -> int:
    """``worker.concurrency`` as shipped (the benchmarks run "default settings")."""
    from gamead_core.config.process import WorkerSettings  # noqa: PLC0415

    return int(WorkerSettings().concurrency)


def start_workers(procs: Procs, stack: Stack, n: int, concurrency: int | None = None,
                  **settings: str) -> list[subprocess.Popen[bytes]]:
    """Start ``n`` ``gamead worker`` processes on ``stack``'s NATS, with ``settings`` (``GAMEAD_*`` variables, or
    ``PYTHONPATH`` to run the workers from another source tree) on top of the benchmark environment; appended to
    ``stack.workers`` so ``stack.stop()`` and ``procs.stop_all()`` end them by PID. ``-P``: the working
    directory is not put first on ``sys.path``, so a ``PYTHONPATH`` tree wins over this one."""
    assert stack.nats is not None
    argv_tail = ["--concurrency", str(concurrency)] if concurrency else []
    env = gamead_env(stack.nats.url, **settings)
    started = []
    for k in range(len(stack.workers), len(stack.workers) + n):
        wid = f"bench-w{k + 1}"
        popen = procs.start(f"{stack.name}-{wid}",
                            [sys.executable, "-P", "-m", "gamead_cli", "worker", "--id", wid, *argv_tail], env)
        stack.workers.append(popen)
        started.append(popen)
    return started


def wait_workers_registered(stack: Stack, n: int, timeout: float = 90.0) -> None:
    """Wait until ``GET /v1/workers?role=worker`` lists ``n`` workers (each has connected and sent a
    heartbeat); RuntimeError with the log directory if one exits or the deadline passes."""
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        for w in stack.workers:
            if w.poll() is not None:
                raise RuntimeError(f"a worker exited during start-up; see {stack.procs.logdir}")
        try:
            items = httpx.get(f"{stack.url}/v1/workers", params={"role": "worker"}, timeout=5).json().get("items")
            seen = len(items or [])
        except (httpx.HTTPError, ValueError):
            pass
        if seen >= n:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{seen} of {n} workers registered after {timeout:.0f}s; see {stack.procs.logdir}")


class RssPeaks:
    """The largest RSS (MB) seen per process while it runs, sampled every ``interval`` s by an asyncio task."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            mb = rss_mb(pid)
            if mb is not None and mb > self.peak.get(name, 0.0):
                self.peak[name] = mb

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssPeaks:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()


async def paced_batches(host: str, port: int, bodies: list[bytes], rate: float, duration: float, batch: int,
                        connections: int, start_at: float) -> dict[str, Any]:
    """Open-loop paced ``POST /ads/batch``: ``rate`` ads/s in requests of ``batch`` ads, for ``duration`` s from
    wall time ``start_at``. Returns ``bench_pipeline``'s paced-record shape, one record per ad:
    ``[ad_id or None, intended_send, sent, answered, http_status]`` (times are ``time.time()`` seconds), and
    ``planned``/``unsent``. Nothing is sent later than ``duration + max(5, duration / 2)`` s after the start."""
    import orjson  # noqa: PLC0415

    requests = (int(rate * duration) + batch - 1) // batch
    interval = batch / rate
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    records: list[list[Any]] = []
    cutoff = start_at + duration + max(5.0, 0.5 * duration)
    unsent = 0

    async def send(i: int, intended: float) -> None:
        nonlocal unsent
        reader, writer = await pool.get()
        sent = time.time()
        if sent > cutoff:
            unsent += batch
            pool.put_nowait((reader, writer))
            return
        items = [bodies[(i * batch + k) % len(bodies)] for k in range(batch)]
        writer.write(http_request_bytes(host, port, b'{"ads":[' + b",".join(items) + b"]}").replace(
            b"POST /ads ", b"POST /ads/batch ", 1))
        try:
            status, body = await read_response(reader)
            answered = time.time()
            pool.put_nowait((reader, writer))
            results = orjson.loads(body).get("results", []) if status == 200 else []
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            answered, status, results = time.time(), 0, []
            writer.close()
            pool.put_nowait(await asyncio.open_connection(host, port))
        for k in range(batch):
            ad_id = results[k].get("id") if k < len(results) else None
            records.append([ad_id, intended, sent, answered, 202 if ad_id else status or 0])

    await asyncio.sleep(max(0.0, start_at - time.time()))
    tasks: set[asyncio.Task[None]] = set()
    for i in range(requests):
        intended = start_at + i * interval
        if time.time() > cutoff:
            unsent += (requests - i) * batch
            break
        await asyncio.sleep(max(0.0, intended - time.time()))
        task = asyncio.create_task(send(i, intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {"records": records, "planned": requests * batch, "unsent": unsent}


class RunGuard:
    """``with RunGuard(procs, args, logs) as run:`` around a benchmark's run: SIGTERM counts as Ctrl-C, and
    whatever ends the block (normally, Ctrl-C, or an error: logged, ``args.keep`` set so the logs stay) every
    process of ``procs`` is stopped by PID. ``run.failed`` says whether it ended early; nothing propagates
    but ``SystemExit``."""

    def __init__(self, procs: Procs, args: argparse.Namespace, logs: Path) -> None:
        self.procs, self.args, self.logs = procs, args, logs
        self.failed = False

    def __enter__(self) -> RunGuard:
        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        try:
            if kind is not None and issubclass(kind, KeyboardInterrupt):
                self.failed = True
                log("interrupted; stopping every process")
            elif kind is not None and issubclass(kind, Exception):
                self.failed = True
                self.args.keep = True
                log(f"failed: {exc!r}; logs in {self.logs}")
        finally:
            self.procs.stop_all()
        return kind is None or issubclass(kind, (KeyboardInterrupt, Exception))

    def finish(self, tmp: Path) -> int:
        """Keep ``tmp`` (``--keep``, or after an error) or remove it; the run's exit code (1 if it ended early)."""
        if self.args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        return 1 if self.failed else 0


if __name__ == "__main__":  # newcomer47: run by hand, it printed nothing
    print(f"{__doc__.strip()}\n\nRun one of the bench_*.py scripts (benchmarks/README.md lists them).")
    sys.exit(0 if sys.argv[1:] in ([], ["--help"], ["-h"]) else 2)
