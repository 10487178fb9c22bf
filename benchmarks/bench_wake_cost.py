"""What waking a sleeping process costs on this machine, in CPU (issue 14: the steady-state floor).

Run from the repository root::

    .venv/bin/python benchmarks/bench_wake_cost.py                  # 3 rounds of 500 round trips each (~2 min)
    .venv/bin/python benchmarks/bench_wake_cost.py --touch 0,256,4096 --gaps 5
    .venv/bin/python benchmarks/bench_wake_cost.py --output json    # for scripts

No gamead, no NATS: two Python processes and one loopback TCP connection (``TCP_NODELAY``), the transport every
gamead role talks over. This process sends 64 bytes, an echo process (a child of its own, this file's ``_echo``
role) reads ``--touch`` KB of its own memory (a stand-in for the code and data a role touches per ad) and sends
them back: one round trip. Contenders, measured in the same round, in an order that rotates:

* **busy**: round trips back to back. Neither side sleeps for long, so no core goes idle between them.
* **asleep, gap G ms**: this process sleeps G ms after each round trip. The echo process is then blocked in
  ``recv`` between round trips, as a gamead role is between two ads at a steady rate, and each round trip wakes it.

Printed per contender and ``--touch`` size: CPU µs per round trip of the echo process (woken once per round trip
when asleep) and of this process (woken by its own timer too), from ``/proc/PID/schedstat`` (ns on a core); each
is the median over rounds, and the echo's "asleep" figure is also given as a multiple of its "busy" one in the
same round. The echo's extra CPU over "busy" is what one wake-up costs it here: the kernel's and the hypervisor's
work to put a process to sleep and wake it, and the caches it finds cold (more, the more memory it touches). At
a steady rate every ad wakes each of gamead's processes several times (``bench_sweep.py`` prints the wake-ups
per ad), so this cost times those wake-ups is CPU per ad that no change to gamead's Python removes, only fewer
wake-ups per ad.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

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


def on_cpu_seconds(pid: int | str) -> float:
    """Seconds process ``pid`` (one thread: its main one) has run on a core, from ``/proc/PID/schedstat``'s first
    field (nanoseconds; ``/proc/PID/stat`` counts in 10 ms ticks, too coarse for µs per round trip)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except OSError as e:
        raise RuntimeError(f"cannot read the CPU time of process {pid}: {e}") from None


def measure(conn: socket.socket, child: int, n: int, gap_s: float) -> dict[str, float]:
    """``n`` round trips with ``gap_s`` of sleep after each: CPU µs per round trip of each side."""
    c0, o0 = on_cpu_seconds(child), on_cpu_seconds("self")
    for _ in range(n):
        conn.sendall(PAYLOAD)
        got = 0
        while got < len(PAYLOAD):
            got += len(conn.recv(4096))
        if gap_s:
            time.sleep(gap_s)
    return {"child_us": (on_cpu_seconds(child) - c0) / n * 1e6, "self_us": (on_cpu_seconds("self") - o0) / n * 1e6}


def echo_round(args: argparse.Namespace, touch_kb: int, gaps: list[float], r: int) -> dict[float, dict[str, float]]:
    """One round of every gap against a fresh echo process touching ``touch_kb`` KB per round trip."""
    srv = socket.create_server(("127.0.0.1", 0))
    proc = subprocess.Popen([sys.executable, __file__, "_echo", str(srv.getsockname()[1]), str(touch_kb)])
    try:
        srv.settimeout(30)
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        measure(conn, proc.pid, 200, 0.0)  # warm-up
        this: dict[float, dict[str, float]] = {}
        for gap in gaps[r % len(gaps):] + gaps[:r % len(gaps)]:
            this[gap] = measure(conn, proc.pid, args.trips, gap / 1000.0)
            print(f"[bench] round {r + 1}, touching {touch_kb} KB, {label(gap)}: echo {this[gap]['child_us']:.0f} µs, "
                  f"this process {this[gap]['self_us']:.0f} µs CPU per round trip", file=sys.stderr)
        conn.close()
        return this
    finally:
        srv.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
            })
    return {"round_trips": args.trips, "rounds": args.rounds, "cores": os.cpu_count(), "contenders": table}


def label(gap: float) -> str:
    return "busy (back to back)" if gap == 0 else f"asleep, gap {gap:g} ms"


def print_table(res: dict[str, object]) -> None:
    print(f"CPU per loopback TCP round trip ({res['round_trips']} round trips, median of {res['rounds']} rounds, "
          f"{res['cores']} cores)")
    print(f"{'echo touches':>12} {'contender':<24} {'echo process µs':>16} {'× busy':>7} {'this process µs':>16}")
    rows: list[dict[str, float]] = res["contenders"]  # type: ignore[assignment]
    for row in rows:
        print(f"{row['touch_kb']:>9,} KB {row['contender']:<24} {row['child_cpu_us_per_round_trip']:>16.0f} "
              f"{row['child_x_busy']:>7.2f} {row['self_cpu_us_per_round_trip']:>16.0f}")
    for touch_kb in dict.fromkeys(r["touch_kb"] for r in rows):
        mine = [r for r in rows if r["touch_kb"] == touch_kb]
        busy = mine[0]["child_cpu_us_per_round_trip"]
        extra = ", ".join(f"{r['child_cpu_us_per_round_trip'] - busy:.0f} µs after {r['gap_ms']:g} ms"
                          for r in mine[1:])
        print(f"one wake-up costs an echo touching {touch_kb:,} KB (asleep minus busy): {extra}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["_echo"]:
        child_echo(int(argv[1]), int(argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trips", type=int, default=500, help="round trips per contender per round (500)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (3); each contender's figure is the median")
    p.add_argument("--gaps", type=lambda s: [float(g) for g in s.split(",")], default=[1.0, 2.0, 5.0, 20.0],
                   help="sleeps after each round trip, ms, comma-separated (1,2,5,20)")
    p.add_argument("--touch", type=lambda s: [int(k) for k in s.split(",")], default=[0, 1024],
                   help="KB the echo process reads before each answer, one set of contenders each (0,1024)")
    p.add_argument("--output", choices=["table", "json"], default="table")
    args = p.parse_args(argv)
    if args.trips < 1 or args.rounds < 1 or any(g <= 0 for g in args.gaps) or any(k < 0 for k in args.touch):
        p.error("--trips and --rounds must be ≥ 1, every gap > 0 and every --touch ≥ 0")
    res = run(args)
    if args.output == "json":
        print(json.dumps(res, indent=2))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
