"""What a child of ``gamead up`` said in its log: its last line, its own ``error: …`` line, and the error that
ends ``gamead up`` when a child refused its configuration."""

from __future__ import annotations

import re
from pathlib import Path

from gamead_core.errors import ConfigError
from gamead_core.log_bound import file_tail, rotated
from gamead_core.supervisor import Child


def log_tail(path: Path, nbytes: int) -> list[str]:
    """The lines of the last ``nbytes`` bytes of a child's log; [] if it cannot be read. A log holding no line
    (emptied by its bound just before: :func:`gamead_core.log_bound.bound_log`, copytruncate) gives those of its
    copy ``<name>.1``, where the child's last lines went, then its own."""
    lines = file_tail(path, nbytes).splitlines()
    if not any(line.strip() for line in lines):
        lines = file_tail(rotated(path), nbytes).splitlines() + lines
    return lines


def last_log_line(path: Path, width: int = 240) -> str:
    """The last non-empty line of a child's log, shortened: why it died, on the console."""
    lines = [ln for ln in log_tail(path, 8192) if ln.strip()]
    line = " ".join(lines[-1].split()) if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def child_error_line(path: Path) -> str:
    """The child's own ``error: …`` line (the last one in its log; ``gamead`` prints exactly one), whole and
    without the ``error:`` prefix; "" if there is none."""
    for line in reversed(log_tail(path, 65536)):
        line = _ANSI.sub("", line).strip()
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return ""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_METRICS_TAKEN = re.compile(r"\(worker\.metrics_port\): port (\d+) is taken by another process")
_NATS_CLIENT_TAKEN = re.compile(r"Error listening on port: (\S+):(\d+), .*bind: address already in use")


def metrics_port_lost(path: Path) -> str:
    """What to say ("" if not so) when the child whose log is ``path`` refused its start because its ``/metrics``
    port was taken
    (``gamead worker``'s one line: ``cannot listen on H:P (worker.metrics_port): port P is taken by another
    process …``). Under ``gamead up`` every such port is ``up``'s own pick (:class:`~gamead_core.metrics_ports.
    WorkerMetricsPorts`), lost to another process before the worker bound it: a retry on a new pick, not a refusal
    of the stack's start (:attr:`~gamead_core.supervisor.Supervisor.lost_port`), said without the worker's advice
    to choose another port (up chose it). Never raises."""
    found = _METRICS_TAKEN.search(child_error_line(path))
    return f"its /metrics port {found[1]}, picked by gamead up, was taken by another process first" if found else ""


def refused_start(child: Child) -> ConfigError:
    """The error that ends ``gamead up`` when ``child`` refused its configuration (exit code 5): the child's
    message once, whole (its fix included), then where its log is. Exit code 5, as the child's."""
    message = child_error_line(child.log_path) or last_log_line(child.log_path) or "no output"
    return ConfigError(f"{message} [{child.name} refused to start; log: {child.log_path}]")


def nats_port_taken(line: str) -> str:
    """What to say ("" if not so) when nats-server's last log line ``line`` says its client port was taken by
    another process as ``gamead up`` (re)started it. That port is kept, not picked again: the API and the workers
    connect there (their config-in-force), so the restart waits for it, with the supervisor's back-off (attack54:
    only nats-server's own line was said, every back-off, while the stack could take no ad). Pure."""
    if (found := _NATS_CLIENT_TAKEN.search(line)) is None:
        return ""
    host, port = found[1], found[2]
    return (f"nats-server's client port {port} on {host} is taken by another process: the API and the workers "
            "connect there, so it is not moved; the API refuses submits (503) and no ad runs until it is free "
            f"(lsof -nP -iTCP:{port} -sTCP:LISTEN names the holder); gamead up starts nats-server again once it is")
