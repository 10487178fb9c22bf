"""One bounded attempt to reach NATS, for a process that waits for it at start (``gamead worker``, ``gamead serve
--give-up-after``: :func:`gamead_cli.runtime.reach_nats`), apart from :func:`~gamead_core.queue.connection.connect`,
whose client reconnects for ever once made."""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from gamead_core.config import NatsSettings
from gamead_core.errors import ConfigError, NatsUnreachable, error_text
from gamead_core.queue.connection import connect_options
from gamead_core.redact import redact_url
from gamead_core.shutdown import close_connection


#: what nats-server answers a connection without the credentials it requires (its ``-ERR``), lower-cased
AUTH_VIOLATION = "authorization violation"


def refused_credentials(exc: BaseException, url: str, nats: NatsSettings | None = None) -> ConfigError | None:
    """The error for an attempt to connect to ``url`` that nats-server refused for its credentials (``exc``
    says ``Authorization Violation``: none, or not the ones it requires), else None. A configuration that cannot
    work, not NATS away: trying again would not help (exit 5). Its hint names what ``nats`` (the settings the
    attempt used) configures rather than telling to set it. Pure."""
    if AUTH_VIOLATION not in str(exc).lower():
        return None
    if nats is not None and nats.token:
        fix = "the configured nats.token is not the one the server requires: set the server's"
    elif nats is not None and (nats.user or nats.password):
        fix = "the configured nats.user/nats.password are not ones the server accepts: set the server's"
    else:
        fix = "set nats.token, or nats.user and nats.password, as the server requires"
    return ConfigError(
        f"NATS at {redact_url(url)} refused the connection: Authorization Violation (credentials missing or wrong): "
        f"{fix} (a gamead up stack's: --config <its data dir, default ./.gamead>/config-in-force.yaml; in that "
        "directory, gamead worker or gamead serve without --nats-url prints the whole command that joins it)")


async def probe(settings: NatsSettings, url: str, *, name: str) -> None:
    """One attempt to connect to NATS at ``url`` (each server of it once, no reconnect loop), closed at once:
    returns if NATS took the connection. Raises :class:`NatsUnreachable` naming the URL (credentials masked) and
    what the attempt met, or :class:`ConfigError` (a TLS file it cannot use; credentials the server refused:
    :func:`refused_credentials`). At most two tries a server, bounded
    by 2 x ``nats.connect_timeout`` + 1.5 s, and without nats-py's own retry loop a cancellation always ends it (that loop, retrying for ever,
    can lose a cancellation that lands as an attempt fails: Python 3.11's ``asyncio.wait_for``)."""
    seen: list[Exception] = []

    async def quiet(exc: Exception) -> None:  # the caller says what happened, once
        seen.append(exc)

    # max_reconnect_attempts 1: nats-py's server selection tries a server again until it has failed more than
    # this many times (0 would mean: for ever), then gives up with NoServersError
    options = {**connect_options(settings, url, name=name), "allow_reconnect": False, "max_reconnect_attempts": 1,
               "error_cb": quiet}
    try:
        nc = await asyncio.wait_for(nats.connect(**options), 2 * settings.connect_timeout + 1.5)
    except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
        cause = seen[-1] if seen else exc  # what the attempts met, not "no servers" or a timeout of the whole
        if refused := refused_credentials(cause, url, settings):
            raise refused from exc
        raise NatsUnreachable(f"cannot connect to NATS at {redact_url(url)}: {error_text(cause)}") from exc
    await close_connection(nc)


__all__ = ["probe", "refused_credentials"]
