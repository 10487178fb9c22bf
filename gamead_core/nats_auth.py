"""The authorization an embedded nats-server requires of its clients (its config's ``authorization`` block), and the
token ``gamead up`` makes for it when the operator set none. Pure but for :func:`secrets.token_urlsafe`."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from pydantic import SecretStr

from gamead_core.config import NatsSettings
from gamead_core.errors import ConfigError


def stack_credentials(nats: NatsSettings, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> bool:
    """Give ``nats`` (the settings of a ``gamead up`` about to start its embedded nats-server: ``nats.url`` unset)
    a token of its own, ``make()`` (32 random bytes, URL-safe base64), unless the operator set credentials
    (``nats.token``, ``nats.user``/``nats.password``): the server then requires those. Returns True if it made
    one. Why: a server without authorization on a loopback port is open to every local process, another stack's
    workers or another user's script included (house rule: stacks on one machine never join each other)."""
    if nats.url or nats.token or nats.user or nats.password:
        return False
    nats.token = SecretStr(make())
    return True


def authorization(token: str | None, user: str | None, password: str | None) -> str:
    """The ``authorization`` block of a nats-server config requiring ``token``, else ``user`` and ``password``
    (strings quoted as JSON, which nats-server's config reads); "" for none (an open server). Pure. Raises
    :class:`ConfigError` for a user without a password or a password without a user, and for a secret nats-server
    would read as a bcrypt hash (:func:`refuse_bcrypt_lookalike`)."""
    refuse_bcrypt_lookalike(token, password)
    if token:
        return f"authorization {{\n  token: {json.dumps(token, ensure_ascii=False)}\n}}\n"
    if bool(user) != bool(password):
        raise ConfigError("nats.user and nats.password go together for the embedded nats-server: set both "
                          "(or nats.token, or neither: gamead up then makes a token of its own)")
    if user and password:
        return (f"authorization {{\n  user: {json.dumps(user, ensure_ascii=False)}\n"
                f"  password: {json.dumps(password, ensure_ascii=False)}\n}}\n")
    return ""


#: how a bcrypt hash begins (``$2a$11$…``, ``$2b$``, ``$2y$``): nats-server reads a ``token`` or ``password`` of its
#: config that looks like one as the hash to check the client's secret against (nats docs, "mkpasswd"); a
#: v2.15 server does so for ``$2a$NN$``/``$2b$``/``$2x$``/``$2y$``, and the whole ``$2`` prefix is refused here so
#: that no version's reading of it can matter
BCRYPT_PREFIX = "$2"


def refuse_bcrypt_lookalike(token: str | None, password: str | None) -> None:
    """Raise :class:`ConfigError` naming the setting (``nats.token``, ``nats.password``) when a secret the embedded
    nats-server is to require starts with :data:`BCRYPT_PREFIX`: the server would take it for a bcrypt hash, so the
    plain secret every gamead process sends would never match, and the stack would fail with an Authorization
    Violation. No bcrypt implementation is installed to write the hash ourselves. Pure (no secret in the text)."""
    for name, secret in (("nats.token", token), ("nats.password", password)):
        if secret and secret.startswith(BCRYPT_PREFIX):
            raise ConfigError(
                f"{name} starts with $2, which nats-server reads as a bcrypt hash ($2a$11$…), so the plain "
                f"{name.split('.')[1]} gamead sends would never match: choose one that does not start with $2 for "
                "the embedded nats-server (or run your own nats-server with its hash and set nats.url)")
