"""Where the API's CPU per ad goes at a steady rate (perf44a): ``bench_sweep.py`` with the API child sampled.

Run from the repository root (the arguments are ``bench_sweep.py``'s)::

    .venv/bin/python benchmarks/sweep_profile.py --out /tmp/api.prof --rates 1000 --step 30 --output json
    .venv/bin/python benchmarks/sweep_profile.py --out /tmp/w1.prof --worker --rates 1000 --step 30 --output json

The stack, the load and the figures are ``bench_sweep.py``'s. Only the API child is started with the CPU-time sampler
of ``cpu_profile_site`` (``cpu_profile.sampler_env``), switched on and off at the two CPU snapshots that bound each
step's measured window, so the samples cover exactly the span its ``cpu_ms_per_ad`` covers. At the end the API is
stopped with SIGINT first (``gamead serve`` ends by a SIGTERM's default action once served, and so never writes the
samples), then as ``Procs.stop`` stops it. Printed on stderr after the sweep: :func:`cpu_profile.summary`, and the
samples by part of the submit path (:data:`PARTS`) in % and in µs per ad (the share × the step's API CPU per ad;
one step: with several, the shares are over all of them and the µs use the last step's figure). Shares only, as
:mod:`cpu_profile` says: time in C code counts to the Python line that called it or runs next. With ``--worker``
(cpu54) the first worker is sampled instead of the API (the summary only: the parts are the API's).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_pipeline  # noqa: E402
import bench_sweep  # noqa: E402
import cpu_profile  # noqa: E402

#: (part, frame names): a sample counts to the part of the deepest frame named; the rest is "other"
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("validation (parse_body, pydantic NewAd)", ("parse_body",)),
    ("record create: send (KV)", ("Intake._create",)),
    ("work publish: send", ("publish_ad_acked",)),
    ("id and record bytes", ("new_ad_id", "queued_record", "stamp_text", "Accepted.fresh", "utcnow")),
    ("submit gates (link, storage, records)", ("QueueLink.intake", "records_refusal", "ObservedIntake.submit")),
    ("metrics (prometheus-client)", ("ad_submitted", "Counter.inc", "Histogram.observe", "HttpMetrics._template")),
    ("answer (JSON, response)", ("json_response", "Response.__call__")),
    ("app layers (proxy, lane, metrics, gate, endpoint)", ("ForwardedFor.__call__", "GameadApi.__call__",
                                                          "FastLane.__call__", "HttpMetrics.__call__",
                                                          "GateMiddleware.__call__", "_Endpoints.__call__", "submit")),
    ("HTTP server (uvicorn, httptools, connection caps, socket I/O)", (
        "BoundedHttpToolsProtocol.data_received", "HttpToolsProtocol.on_headers_complete", "RequestResponseCycle.send",
        "RequestResponseCycle.run_asgi", "OneWritePerTurn.send_kept", "CappedConnections.on_message_begin",
        "CappedConnections.on_response_complete", "InOrderRefusals._start_asgi_task")),
    ("NATS acks in (read loop)", ("Client._read_loop",)),
    ("NATS flusher (socket writes)", ("Client._flusher",)),
    ("background (stats sampler, autoscaler, registry, topology)", (
        "QueueSampler.run", "read_queue", "level_depth", "start_autoscaler.<locals>.run", "TopologyWatch.run",
        "Registry.list", "LeaseKeeper.run", "Sweeps._run")),
)


def parts(path: str) -> tuple[int, collections.Counter[str]]:
    """Samples of the collapsed stacks at ``path`` by :data:`PARTS` (the deepest frame named decides). Pure but
    for reading the file."""
    names = {name: part for part, frames in PARTS for name in frames}
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        stack, _, n = line.rpartition(" ")
        part = "other (event loop, tasks, GC)"
        for frame in stack.split(";"):
            part = names.get(re_frame(frame), part)
        counts[part] += int(n)
        total += int(n)
    return total, counts


def re_frame(frame: str) -> str:
    return frame.split(" (", 1)[0]


USAGE = "usage: sweep_profile.py --out FILE [--worker] [bench_sweep.py's arguments]"


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:  # newcomer46: --help was the usage error, exit 1
        print(f"{USAGE}\n\n{__doc__.strip()}\n\nbench_sweep.py's arguments: "
              ".venv/bin/python benchmarks/bench_sweep.py --help")
        return 0
    if "--out" not in argv[:-1]:
        sys.exit(USAGE)
    i = argv.index("--out")
    out, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    worker = "--worker" in argv
    argv = [arg for arg in argv if arg != "--worker"]
    api: dict[str, Any] = {}  # "proc": the child sampled (the API, or with --worker the first worker)
    start, env_of, snapshot, stop = (bench_pipeline.Stack.start, bench_pipeline.gamead_env, bench_sweep.cpu_snapshot,
                                     bench_pipeline.Procs.stop)
    start_workers = bench_pipeline.Stack.start_workers

    def sampled(launch: Any) -> Any:
        """``launch`` run with the first child it starts sampled (its later ones as they were)."""
        taken: list[bool] = []

        def env(url: str, **extra: str) -> dict[str, str]:
            e = env_of(url, **extra)
            if taken:
                return e
            taken.append(True)
            return e | cpu_profile.sampler_env(out, e.get("PYTHONPATH"))
        bench_pipeline.gamead_env = env  # start() starts the API, start_workers() the workers
        try:
            return launch()
        finally:
            bench_pipeline.gamead_env = env_of

    def sampled_start(stack: bench_pipeline.Stack) -> bench_pipeline.Stack:
        if worker:
            return start(stack)
        started = sampled(lambda: start(stack))
        api["proc"] = stack.api
        return started

    def sampled_workers(stack: bench_pipeline.Stack, n: int, concurrency: int) -> None:
        if not worker:
            return start_workers(stack, n, concurrency)
        sampled(lambda: start_workers(stack, n, concurrency))
        api["proc"] = stack.workers[0]
        return None

    def toggling_snapshot(pids: dict[str, int]) -> Any:
        taken = snapshot(pids)
        cpu_profile.toggle(api["proc"].pid)  # on at a step's first snapshot, off at its last
        return taken

    def stop_api_first(procs: bench_pipeline.Procs, popen: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if popen is api.get("proc") and popen.poll() is None:
            popen.send_signal(signal.SIGINT)  # Python's exit: the sampler's atexit writes the samples
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        stop(procs, popen, timeout)

    bench_pipeline.Stack.start = sampled_start  # type: ignore[method-assign]
    bench_pipeline.Stack.start_workers = sampled_workers  # type: ignore[method-assign]
    bench_sweep.cpu_snapshot = toggling_snapshot
    bench_pipeline.Procs.stop = stop_api_first  # type: ignore[method-assign]
    captured: dict[str, Any] = {}
    sweep = bench_sweep.sweep

    async def kept_sweep(*args: Any) -> Any:
        captured["results"] = args[5]  # sweep(stack, procs, tmp, a, rates, results): the steps' figures
        return await sweep(*args)

    bench_sweep.sweep = kept_sweep
    code = bench_sweep.main(argv)
    if not os.path.exists(out):
        print(f"no samples written to {out}", file=sys.stderr)
        return code or 1
    print(cpu_profile.summary(out, top=40 if worker else 25), file=sys.stderr)
    if worker:
        return code
    steps = captured.get("results", {}).get("steps") or [{}]
    per_ad = (steps[-1].get("cpu_ms_per_ad") or {}).get("api")
    total, counts = parts(out)
    print(f"\nAPI samples by part ({total}; µs per ad from the last step's API CPU, {per_ad} ms):", file=sys.stderr)
    for part, n in counts.most_common():
        us = f"{n / total * per_ad * 1000:6.1f} µs" if per_ad else ""
        print(f"  {100 * n / total:5.1f} %  {us}  {part}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
