"""The process's open-files limit (``RLIMIT_NOFILE``): raised at start, and what it leaves the API for connections.

``gamead serve``, ``gamead worker`` and ``gamead up`` raise the soft limit to the hard one first thing, as Go's
runtime and nginx's ``worker_rlimit_nofile`` do: a soft limit of 1024 (many systemd units, containers) or 256
made a few hundred idle TCP connections enough to leave the API unable to accept anything (attack29b F2). A
limit that stays under :data:`LOW_NOFILE` is said in the start log line. ``up``'s children inherit the raised
limit. Every file descriptor counts: sockets, log files, pipes.
"""

from __future__ import annotations

import resource

#: an open-files limit under this is said in the start log line (and on ``gamead up``'s console)
LOW_NOFILE = 4096
#: file descriptors kept out of the API's connection bound (``api.max_connections`` unset): NATS, log files, the
#: listener, the event loop's own, connections closing or lingering after a refusal; plus ``redis.max_connections``
RESERVE = 64
#: the fewest connections the derived bound allows, whatever the limit (past the limit, accept() fails: logged)
MIN_CONNECTIONS = 16
#: the soft limit asked for when the hard one is "unlimited" (Linux never has that; macOS does, capped by the kernel)
_UNLIMITED_ASK = 1 << 20


def raise_soft(which: int, unlimited_ask: int = resource.RLIM_INFINITY) -> int:
    """Raise this process's soft limit ``which`` (a ``resource.RLIMIT_*``) to its hard limit, or to ``unlimited_ask``
    when the hard one is unlimited; returns the soft limit now in force (``resource.RLIM_INFINITY``: none). Never
    raises: a limit the kernel refuses to raise (macOS's ``kern.maxfilesperproc``, a sandbox) is left as it was.
    Children inherit it."""
    soft, hard = resource.getrlimit(which)
    want = unlimited_ask if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and (want == resource.RLIM_INFINITY or soft < want):
        try:
            resource.setrlimit(which, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def raise_nofile() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (:func:`raise_soft`); returns the soft limit now
    in force (a count of file descriptors)."""
    soft = raise_soft(resource.RLIMIT_NOFILE, _UNLIMITED_ASK)
    return _UNLIMITED_ASK if soft == resource.RLIM_INFINITY else soft


def low_nofile_words(limit: int) -> str:
    """``""`` for an open-files ``limit`` of at least :data:`LOW_NOFILE`; else words for the start log line:
    the limit and how to raise it (the hard limit is the ceiling: ``ulimit -Hn``, systemd's ``LimitNOFILE=``)."""
    if limit >= LOW_NOFILE:
        return ""
    return (f"open-files limit {limit} (RLIMIT_NOFILE, already raised to its hard limit) is under {LOW_NOFILE}: raise "
            f"the hard limit (ulimit -Hn, systemd LimitNOFILE=, the container's nofile ulimit)")


def derived_max_connections(limit: int, redis_connections: int = 0) -> int:
    """The API's connection bound when ``api.max_connections`` is unset: the open-files ``limit`` less
    :data:`RESERVE` and the Redis pool's ``redis_connections``, at least :data:`MIN_CONNECTIONS`. Pure."""
    return max(MIN_CONNECTIONS, limit - RESERVE - redis_connections)


def connection_bound(limit: int, setting: int | None, redis_connections: int = 0) -> tuple[int, str, bool]:
    """The API's connection bound for an open-files ``limit``, ``api.max_connections`` (``setting``, None: derived)
    and a Redis pool of ``redis_connections``: (the bound, its start log line, whether that line is a warning: the
    limit is low, or the setting is above what the limit leaves room for, so accept() fails first). Pure."""
    fits = derived_max_connections(limit, redis_connections)
    bound = setting or fits
    problems = [words for words in (low_nofile_words(limit),) if words]
    if bound > fits:
        problems.append(f"api.max_connections is above the {fits} connections the limit leaves room for")
    why = "api.max_connections" if setting else "api.max_connections: the open-files limit less a reserve"
    line = f"connections: at most {bound} open ({why})"  # the low limit's own words name it (attack29c F2)
    return bound, line + (f"; {'; '.join(problems)}" if problems else f"; open-files limit {limit}"), bool(problems)
