"""Opening a listening TCP socket for a setting, or one line saying why it cannot be (a taken port, a port below
1024 without the privilege, an address not of this machine).

The API (``api.port``, bound by :func:`bind_listener` *before* the app starts, so a refused start connects to
nothing and leaves nothing running) and a worker's ``worker.metrics_port`` go through :func:`listen_refusal`;
``gamead up`` checks its ``--port`` and ``embedded.nats_port`` with words of its own (same exit code). A refusal is a
:class:`~gamead_core.errors.ConfigError`: exit 5 (README exit-code table), one red line.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from gamead_core.errors import ConfigError


def listen_refusal(host: str, port: int, setting: str, exc: OSError) -> ConfigError:
    """The one-line refusal of a listener on ``host:port`` (from ``setting``, e.g. ``"api.port"``) that could not
    bind: ``exc`` is the bind's error. Says the port is taken (``address already in use``) when it is; a host that
    does not resolve or is not this machine's names the host's setting (``api.host`` for ``api.port``), not the
    port's: "choose another api.port" was the advice for ``api.host=my-host.invalid`` (attack28c F1). Pure."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        why = f"{host} is not an address of this machine" if exc.errno == errno.EADDRNOTAVAIL else (
            f"{host} does not resolve ({exc.strerror or exc})")
        where = setting.rpartition("port")[0] + "host" if setting.endswith("port") else setting
        return ConfigError(f"cannot listen on {host}:{port} ({where}): {why}; choose another {where}")
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port} is taken by another process (address already in use)"
    elif exc.errno == errno.EACCES:
        why = f"port {port} is not ours to use (permission denied; ports below 1024 need privileges)"
    else:
        why = exc.strerror or str(exc)
    return ConfigError(f"cannot listen on {host}:{port} ({setting}): {why}; choose another {setting}")


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
    """A TCP socket bound to ``host:port`` and listening (SO_REUSEADDR, as uvicorn binds; IPv6 when ``host`` holds
    a colon; ``port`` 0 = a free one). The caller owns and closes it. Raises :class:`ConfigError`
    (:func:`listen_refusal`) when it cannot bind; ``setting`` names the setting the port came from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise listen_refusal(host, port, setting, exc) from exc
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
