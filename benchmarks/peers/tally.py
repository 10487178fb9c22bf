"""The one thing a peer's no-op task does: count itself, and when the ``BENCH_PEER_N``-th has run, write the
drain's window to ``BENCH_PEER_OUT`` as JSON ``{"rate": ads/s, "cpu_us": µs of this process's CPU per task}``.

The window opens at the first task run (start-up and connection are not counted, as for gamead's worker in
``bench_worker_drain.py``) and closes at the ``N``-th; ``rate`` is ``(N - 1) / seconds`` over it.
"""

from __future__ import annotations

import json
import os
import time

_TARGET = int(os.environ.get("BENCH_PEER_N", "0"))
_OUT = os.environ.get("BENCH_PEER_OUT", "")
_state = {"done": 0, "t0": 0.0, "cpu0": 0.0}


def tally() -> None:
    """Count one task run; write the result file at the ``BENCH_PEER_N``-th."""
    _state["done"] += 1
    done = _state["done"]
    if done == 1:
        _state["t0"], _state["cpu0"] = time.monotonic(), time.process_time()
    elif done == _TARGET:
        seconds, cpu = time.monotonic() - _state["t0"], time.process_time() - _state["cpu0"]
        with open(_OUT + ".tmp", "w") as out:
            json.dump({"rate": (done - 1) / seconds, "cpu_us": cpu / (done - 1) * 1e6}, out)
        os.replace(_OUT + ".tmp", _OUT)
