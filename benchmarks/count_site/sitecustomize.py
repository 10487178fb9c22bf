"""Deterministic per-ad counts for a benchmark's child process (``benchmarks/bench_counts.py``, perf41), loaded by
``site`` when this directory is first on the child's ``PYTHONPATH`` and ``BENCH_COUNT_OUT`` names the output
file.

Off until the process gets ``SIGUSR2``; on, a :class:`cProfile.Profile` counts every Python and C function call of
the main thread (the event loop's); off again at the next ``SIGUSR2``. At each toggle the resident set (``VmRSS``),
the modules loaded (``sys.modules``) and, when ``tracemalloc`` is tracing (``PYTHONTRACEMALLOC=1``), the traced
bytes by file, the garbage collections and each thread's CPU ticks are noted. At each stop (and at exit)
``{"calls": {"file:function": n}, "marks": [...], "callers": {...}}`` is written as JSON (``callers``: of the
functions named in ``BENCH_COUNT_CALLERS``, comma-separated parts of their keys). Counts, not times: the profiler's
overhead slows the process but not what it calls per ad.
"""

import os

_OUT = os.environ.get("BENCH_COUNT_OUT")
if _OUT:
    import atexit
    import json
    import signal
    import sys

    _STATE: dict = {"prof": None, "marks": [], "calls": {}, "callers": {}}
    #: functions (substrings of their keys, comma-separated) whose callers are counted too
    _CALLERS = [w for w in os.environ.get("BENCH_COUNT_CALLERS", "").split(",") if w]

    def _rss_kb() -> int:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    _GC = [0, 0, 0]  #: garbage collections so far, by generation

    def _on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            _GC[info["generation"]] += 1

    import gc

    gc.callbacks.append(_on_gc)

    def _threads() -> dict:
        """CPU ticks (user + system) of each thread of this process, by its name (``/proc/self/task``)."""
        out = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as fh:
                    stat = fh.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[f"{name}/{tid}"] = int(fields[11]) + int(fields[12])
        return out

    def _mark() -> None:
        import tracemalloc

        mark = {"rss_kb": _rss_kb(), "modules": sorted(sys.modules), "gc": list(_GC), "threads": _threads()}
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot()
            mark["traced_by_file"] = {s.traceback[0].filename: s.size for s in snap.statistics("filename")}
        _STATE["marks"].append(mark)

    def _key(code) -> str:  # noqa: ANN001
        if isinstance(code, str):  # a C function: "<built-in method x of y>" etc.
            return code
        file, _, name = code
        for cut in ("site-packages/", "/gamead_core/", "/gamead_cli/", "lib/python3"):
            if cut in file:
                file = file[file.index(cut):].lstrip("/")
                break
        return f"{file}:{name}"

    def _toggle(signum, frame):  # noqa: ANN001, ARG001
        import cProfile
        import pstats

        prof = _STATE["prof"]
        if prof is None:
            _mark()
            prof = _STATE["prof"] = cProfile.Profile()
            prof.enable()
            return
        prof.disable()
        _STATE["prof"] = None
        stats = pstats.Stats(prof).stats
        calls: dict = _STATE["calls"]
        for (file, line, name), (cc, nc, tt, ct, callers) in stats.items():
            key = _key(name if file == "~" else (file, line, name))
            calls[key] = calls.get(key, 0) + nc
            if any(w in key for w in _CALLERS):
                by = _STATE["callers"].setdefault(key, {})
                for (cf, cl, cn), caller in callers.items():
                    ck = _key(cn if cf == "~" else (cf, cl, cn)) + f":{cl}"
                    by[ck] = by.get(ck, 0) + caller[1]
        _mark()
        _dump()

    def _dump() -> None:
        with open(_OUT + ".tmp", "w", encoding="utf-8") as out:
            json.dump({k: _STATE[k] for k in ("calls", "marks", "callers")}, out)
        os.replace(_OUT + ".tmp", _OUT)  # whole or absent for a reader

    signal.signal(signal.SIGUSR2, _toggle)
    atexit.register(_dump)
