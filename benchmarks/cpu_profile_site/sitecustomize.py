"""A CPU-time stack sampler for a benchmark's child process (``benchmarks/cpu_profile.py``), loaded by ``site`` when
this directory is first on the child's ``PYTHONPATH`` and ``BENCH_CPU_PROFILE`` names the output file.

``ITIMER_PROF`` fires per 0.5 ms of the process's own CPU time (user + system), so a process that waits for a core
is not sampled: on a loaded machine py-spy's wall-clock samples land where a preempted process sits (speed40: a
worker's socket write 20 % and the event loop 16 % of py-spy's samples, 2.8 % and ~1 % of its CPU). The sampler is
off until the process gets ``SIGUSR2`` and off again at the next (the benchmark's timed window); the collapsed
stacks (``frame;frame;… count``) are written at exit. Frames are Python's: time in C code (a regex, orjson, the
event loop's own) counts to the Python line that called it or that runs next.
"""

import os

_OUT = os.environ.get("BENCH_CPU_PROFILE")
if _OUT:
    import atexit
    import collections
    import signal

    _COUNTS: collections.Counter[str] = collections.Counter()
    _ON = [False]

    def _sample(signum, frame):  # noqa: ANN001, ARG001 - a signal handler
        if not _ON[0]:
            return
        names = []
        while frame is not None:
            code = frame.f_code
            names.append(f"{code.co_qualname} ({code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})")
            frame = frame.f_back
        _COUNTS[";".join(reversed(names))] += 1

    def _toggle(signum, frame):  # noqa: ANN001, ARG001
        _ON[0] = not _ON[0]

    def _dump() -> None:  # the timer stopped first: at exit Python puts SIGPROF's default action back (terminate)
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        with open(_OUT, "w", encoding="utf-8") as out:
            out.writelines(f"{stack} {n}\n" for stack, n in _COUNTS.items())

    signal.signal(signal.SIGPROF, _sample)
    signal.signal(signal.SIGUSR2, _toggle)
    signal.setitimer(signal.ITIMER_PROF, 0.0005, 0.0005)
    atexit.register(_dump)
