"""Opening a listening TCP socket for a setting, or one line saying why it cannot be (a taken port, a port below
1024 without the privilege, an address not of this machine).

The API (``api.port``, bound by :func:`bind_listener` *before* the app starts, so a refused start connects to
nothing and leaves nothing running) and a worker's ``worker.metrics_port`` go through :func:`listen_refusal`;
``gamead up`` checks its ``--port`` and ``embedded.nats_port`` with words of its own (same exit code), and its
workers' ``worker.metrics_host`` with :func:`check_host`. A host no listener can bind, found by a check of a port
(:func:`bind_once`: :func:`gamead_core.proc.port_free`), is :class:`HostRefused`, in words too. A refusal is a
:class:`~gamead_core.errors.ConfigError`: exit 5 (README exit-code table), one red line.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from gamead_core.errors import ConfigError


class HostRefused(ConfigError, OSError):
    """No listener can bind a host, whatever the port (:func:`host_words`): one line in words. A
    :class:`ConfigError` to a start (exit 5, one red line) and an :class:`OSError` to a child's restart, which says
    it and tries again after its back-off (an address can come back: :class:`gamead_core.supervisor.Supervisor`)."""


def host_words(host: str, exc: OSError) -> str | None:
    """Why no listener can bind ``host`` at all, whatever the port, or None when ``exc`` (the error of making or
    binding the socket) is not the host's fault: a name that does not resolve (or not to the address family used),
    an address not of this machine (``EADDRNOTAVAIL``: ``192.0.2.1``), an address family this machine has not
    (``EAFNOSUPPORT``: ``::`` without IPv6), an address no socket can be bound to (``EINVAL``: a link-local IPv6
    address without its interface, ``fe80::1``). Pure."""
    if isinstance(exc, socket.gaierror):
        return f"{host} does not resolve ({exc.strerror or exc})"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
        family = "IPv6" if ":" in host else "IPv4"
        return f"{host} is an {family} address and this machine has no {family} (address family not supported)"
    if exc.errno == errno.EINVAL:
        scope = "; a link-local IPv6 address names its interface: fe80::1%eth0" if (
            host.lower().startswith("fe80:") and "%" not in host) else ""
        return f"{host} is not an address a listener can bind here ({exc.strerror or exc}{scope})"
    return None


def _at(host: str, port: int) -> str:
    """``host:port`` as the lines say it (an IPv6 address bracketed; ``host`` alone for port 0: any port). Pure."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def _bound(host: str, port: int, *, reuse: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port``, not listening (SO_REUSEADDR if ``reuse``, as uvicorn and nats-server
    bind; IPv6 when ``host`` holds a colon; ``port`` 0: one the kernel picks). The caller owns and closes it. Raises
    the OSError of making or binding it (the socket closed): a machine without IPv6 refuses the socket itself
    (``EAFNOSUPPORT``)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def bind_once(host: str, port: int, *, reuse: bool = True) -> int:
    """Bind a TCP socket to ``host:port`` (:func:`_bound`) and close it at once: the port it bound. Raises
    :class:`HostRefused` for a host no listener can bind whatever the port (:func:`host_words`), naming no setting
    (a check of a port: :func:`gamead_core.proc.port_free`); else the bind's OSError (a port taken) as is."""
    try:
        with _bound(host, port, reuse=reuse) as sock:
            return int(sock.getsockname()[1])
    except OSError as exc:
        if (why := host_words(host, exc)) is None:
            raise
        raise HostRefused(f"cannot listen on {_at(host, port)}: {why}") from exc


def listen_refusal(host: str, port: int, setting: str, exc: OSError) -> ConfigError:
    """The one-line refusal of a listener on ``host:port`` (from ``setting``, e.g. ``"api.port"``) that could not
    bind: ``exc`` is the bind's error. Says the port is taken (``address already in use``) when it is; a host no
    listener can bind (:func:`host_words`: it does not resolve, is not this machine's, is of an address family this
    machine has not) names the host's setting (``api.host`` for ``api.port``), not the port's: "choose another
    api.port" was the advice for ``api.host=my-host.invalid`` (attack28c F1). Pure."""
    if (why := host_words(host, exc)) is not None:
        where = setting.rpartition("port")[0] + "host" if setting.endswith("port") else setting
        return ConfigError(f"cannot listen on {_at(host, port)} ({where}): {why}; choose another {where}")
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port} is taken by another process (address already in use)"
    elif exc.errno == errno.EACCES:
        why = f"port {port} is not ours to use (permission denied; ports below 1024 need privileges)"
    else:
        why = exc.strerror or str(exc)
    return ConfigError(f"cannot listen on {_at(host, port)} ({setting}): {why}; choose another {setting}")


def port_given_twice(ports: Mapping[str, int]) -> ConfigError | None:
    """The refusal of one port asked for by two listeners of one process tree: ``ports`` maps each setting, as the
    line names it (``api.port (--port)``), to the port it asks for (0: a free one, which never clashes). None when the
    non-zero ports are all distinct. Pure.

    ``gamead up`` listens on ``api.port``, ``embedded.nats_port`` and ``embedded.nats_monitor_port`` at once; its
    port claims hold a port once whoever asks (:class:`~gamead_core.port_claims.PortClaims`), so one port given
    twice passed every check, nats-server was started, and the second listener failed: exit 1 with nats-server's
    log head as the reason, or "taken by another process" for the stack's own nats-server (attack41b F1)."""
    first: dict[int, str] = {}
    for setting, port in ports.items():
        if port and port in first:
            return ConfigError(f"{first[port]} and {setting} are both port {port}: each listener of this stack needs "
                               f"a port of its own — choose another for one of them (0 = any free port, for "
                               f"embedded.nats_port and embedded.nats_monitor_port)")
        first.setdefault(port, setting)
    return None


def bind_listener(host: str, port: int, setting: str, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to ``host:port`` (:func:`_bound`: SO_REUSEADDR, as uvicorn binds; ``port`` 0 = a free one)
    and listening. The caller owns and closes it. Raises :class:`ConfigError` (:func:`listen_refusal`) when it
    cannot bind; ``setting`` names the setting the port came from."""
    try:
        sock = _bound(host, port)
    except OSError as exc:
        raise listen_refusal(host, port, setting, exc) from exc
    try:
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise listen_refusal(host, port, setting, exc) from exc
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def check_host(host: str, setting: str) -> None:
    """Refuse (:class:`ConfigError`, :func:`listen_refusal`) a ``host`` no listener of ``setting`` (e.g.
    ``"worker.metrics_port"``) could bind, whatever its port: a listener bound to any port of it, closed at once."""
    bind_listener(host, 0, setting).close()
