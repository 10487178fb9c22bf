"""What waking a sleeping process costs in CPU on this machine (issue 14: steady ads vs drained ones).

Run from the repository root::

    .venv/bin/python benchmarks/bench_wake_cost.py                  # 3 rounds of 500 round trips each (~2 min)
    .venv/bin/python benchmarks/bench_wake_cost.py --touch 0,256,4096 --gaps 5
    .venv/bin/python benchmarks/bench_wake_cost.py --output json    # for scripts

No gamead, no NATS: two Python processes and one loopback TCP connection (``TCP_NODELAY``), the transport every
gamead role talks over. This process sends 64 bytes, an echo process (a child of its own, this file's ``_echo``
role) reads ``--touch`` KB of its own memory (a stand-in for the code and data a role touches per ad) and sends
them back: one round trip. Contenders, measured in the same round, in an order that rotates:

* **busy**: round trips back to back. The echo still sleeps in ``recv`` between round trips and is woken by
  each one, but after a few µs, so no core goes idle between them.
* **asleep, gap G ms**: this process sleeps G ms after each round trip. The echo process is then blocked in
  ``recv`` between round trips, as a gamead role is between two ads at a steady rate, and each round trip wakes it.

Printed per contender and ``--touch`` size: CPU µs per round trip of the echo process and of this process (woken
by its own timer too), from ``/proc/PID/task/*/schedstat`` (ns on a core), and the echo's sleeps per round trip
(``voluntary_ctxt_switches``: about 1 in every contender); each is the median over rounds. The echo's figure is
also given as a multiple of, and a difference from, its "busy" one in the same round (medians of the rounds'
own ratios and differences). That difference is what a wake-up after G ms asleep costs more than one after a few
µs: the kernel's and the hypervisor's work to wake an idle core, and the caches the process finds cold (more, the
more memory it touches). At a steady rate every ad wakes each of gamead's processes several times, often after
ms asleep (``bench_sweep.py`` prints the wake-ups per ad), and no change to gamead's Python removes that cost,
only fewer wake-ups per ad.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

from bench_common import comma_floats, finish_main, rounds_and_output
from bench_pipeline import proc_oncpu_seconds, proc_switches, required

PAYLOAD = b"x" * 64


def child_echo(port: int, touch_kb: int) -> None:
    """The ``_echo`` role: connect to ``port`` and send back every chunk until the connection closes, reading
    ``touch_kb`` KB of its own memory before each answer (a stand-in for the code and data a role touches)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    memory = bytearray(os.urandom(touch_kb * 1024))
    while data := s.recv(4096):
        if touch_kb:
            memory.count(7)  # reads every byte
        s.sendall(data)


def measure(conn: socket.socket, child: int, n: int, gap_s: float) -> dict[str, float]:
    """``n`` round trips with ``gap_s`` of sleep after each: CPU µs per round trip of each side, and the echo's
    sleeps per round trip. Raises RuntimeError if the echo closes the connection (it died)."""
    me = os.getpid()
    c0, o0 = required(proc_oncpu_seconds(child), child), required(proc_oncpu_seconds(me), me)
    w0 = required(proc_switches(child), child)[0]
    for _ in range(n):
        conn.sendall(PAYLOAD)
        got = 0
        while got < len(PAYLOAD):
            chunk = conn.recv(4096)
            if not chunk:
                raise RuntimeError("the echo process closed the connection")
            got += len(chunk)
        if gap_s:
            time.sleep(gap_s)
    return {"child_us": (required(proc_oncpu_seconds(child), child) - c0) / n * 1e6,
            "self_us": (required(proc_oncpu_seconds(me), me) - o0) / n * 1e6,
            "child_sleeps": (required(proc_switches(child), child)[0] - w0) / n}


def echo_round(args: argparse.Namespace, touch_kb: int, gaps: list[float], r: int) -> dict[float, dict[str, float]]:
    """One round of every gap against a fresh echo process touching ``touch_kb`` KB per round trip."""
    srv = socket.create_server(("127.0.0.1", 0))
    proc = subprocess.Popen([sys.executable, __file__, "_echo", str(srv.getsockname()[1]), str(touch_kb)])
    conn: socket.socket | None = None
    try:
        srv.settimeout(30)
        conn, _ = srv.accept()
        conn.settimeout(30)  # an echo that hangs ends the benchmark instead of stalling it
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        measure(conn, proc.pid, 200, 0.0)  # warm-up
        this: dict[float, dict[str, float]] = {}
        for gap in gaps[r % len(gaps):] + gaps[:r % len(gaps)]:
            this[gap] = measure(conn, proc.pid, args.trips, gap / 1000.0)
            print(f"[bench] round {r + 1}, touching {touch_kb} KB, {label(gap)}: echo {this[gap]['child_us']:.0f} µs, "
                  f"this process {this[gap]['self_us']:.0f} µs CPU per round trip", file=sys.stderr)
    except BaseException:
        proc.kill()  # stopped by PID at once on any failure
        raise
    finally:
        if conn is not None:
            conn.close()  # the echo's recv returns b"": it exits
        srv.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return this


def run(args: argparse.Namespace) -> dict[str, object]:
    gaps = [0.0, *args.gaps]
    table = []
    for touch_kb in args.touch:
        rounds = [echo_round(args, touch_kb, gaps, r) for r in range(args.rounds)]
        for gap in gaps:
            table.append({
                "touch_kb": touch_kb,
                "contender": label(gap),
                "gap_ms": gap,
                "child_cpu_us_per_round_trip": round(statistics.median(r[gap]["child_us"] for r in rounds), 1),
                "self_cpu_us_per_round_trip": round(statistics.median(r[gap]["self_us"] for r in rounds), 1),
                "child_x_busy": round(statistics.median(r[gap]["child_us"] / r[0.0]["child_us"] for r in rounds), 2),
                "child_over_busy_us": round(statistics.median(r[gap]["child_us"] - r[0.0]["child_us"]
                                                              for r in rounds), 1),
                "child_sleeps_per_round_trip": round(statistics.median(r[gap]["child_sleeps"] for r in rounds), 2),
            })
    return {"round_trips": args.trips, "rounds": args.rounds, "cores": os.cpu_count(), "contenders": table}


def label(gap: float) -> str:
    return "busy (back to back)" if gap == 0 else f"asleep, gap {gap:g} ms"


def print_table(res: dict[str, object]) -> None:
    print(f"CPU per loopback TCP round trip ({res['round_trips']} round trips, median of {res['rounds']} rounds, "
          f"{res['cores']} cores)")
    print(f"{'echo touches':>12} {'contender':<24} {'echo process µs':>16} {'× busy':>7} {'over busy µs':>13} "
          f"{'echo sleeps':>12} {'this process µs':>16}")
    rows: list[dict[str, float]] = res["contenders"]  # type: ignore[assignment]
    for row in rows:
        print(f"{row['touch_kb']:>9,} KB {row['contender']:<24} {row['child_cpu_us_per_round_trip']:>16.0f} "
              f"{row['child_x_busy']:>7.2f} {row['child_over_busy_us']:>13.0f} "
              f"{row['child_sleeps_per_round_trip']:>12.2f} {row['self_cpu_us_per_round_trip']:>16.0f}")
    print("echo sleeps: times the echo went to sleep waiting per round trip (about 1 in every contender: busy too, "
          "it waits in recv between round trips, but for µs); over busy: the median of each round's difference, "
          "what a wake-up after that long asleep costs more than one after a few µs")


def main(argv: list[str]) -> int:
    if argv[:1] == ["_echo"]:
        child_echo(int(argv[1]), int(argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trips", type=int, default=500, help="round trips per contender per round (500)")
    p.add_argument("--gaps", type=comma_floats, default=[1.0, 2.0, 5.0, 20.0],
                   help="sleeps after each round trip, ms, comma-separated (1,2,5,20)")
    p.add_argument("--touch", type=lambda s: [int(k) for k in s.split(",")], default=[0, 1024],
                   help="KB the echo process reads before each answer, one set of contenders each (0,1024)")
    rounds_and_output(p)
    return finish_main(p, argv, lambda a: None if a.trips >= 1 and a.rounds >= 1 and all(g > 0 for g in a.gaps)
                       and all(k >= 0 for k in a.touch)
                       else "--trips and --rounds must be ≥ 1, every gap > 0 and every --touch ≥ 0", run, print_table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
