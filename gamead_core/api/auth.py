"""API tokens and roles.

Two roles: ``submitter`` submits and reads ads; ``operator`` may also use the ``/v1/*`` operator routes
(stats, workers, DLQ replay and purge, scaling). Tokens come from ``auth.tokens`` (config file, or
``GAMEAD_AUTH__TOKENS`` as JSON from a mounted Secret). A presented token is compared with *every*
configured token in constant time, so neither timing nor the position of a match leaks anything.

Whether tokens are required at all is :func:`auth_required`; :func:`check_serve_safety` is the rule that
keeps ``gamead serve`` from starting open on a network address by accident.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Final, Literal

from gamead_core.config import AuthSettings, GameadSettings
from gamead_core.errors import ConfigError

Role = Literal["submitter", "operator"]

#: What each role may do: the route classes of :mod:`gamead_core.api.middleware` it may call.
ROLE_GRANTS: Final[dict[str, frozenset[str]]] = {
    "submitter": frozenset({"ads"}),
    "operator": frozenset({"ads", "admin"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a named token with its role, or an anonymous caller (open mode) keyed by IP."""

    name: str
    role: Role | None

    @property
    def authenticated(self) -> bool:
        return self.role is not None

    def may(self, route_class: str) -> bool:
        return self.role is not None and route_class in ROLE_GRANTS[self.role]


ANONYMOUS: Final[Principal] = Principal("anonymous", None)


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps compare_digest from leaking the length of a configured token.
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """The configured tokens, looked up in constant time."""

    def __init__(self, settings: AuthSettings) -> None:
        self._entries = [
            (_digest(t.token.get_secret_value()), Principal(t.name, t.role))
            for t in settings.tokens
            if t.token.get_secret_value()
        ]

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, presented: str) -> Principal | None:
        """The principal whose token is ``presented``, or None. Always compares against every token."""
        if not presented:
            return None
        digest = _digest(presented)
        found: Principal | None = None
        for expected, principal in self._entries:
            if hmac.compare_digest(digest, expected):
                found = principal  # no early exit: every token is compared on every call
        return found


def bearer_token(header: bytes | str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    if not header:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def auth_required(settings: GameadSettings) -> bool:
    """Tokens are required when ``auth.enabled`` is true, or unset and the API binds a non-loopback address."""
    enabled = settings.auth.enabled
    if enabled is not None:
        return enabled
    return not is_loopback(settings.api.host)


def check_serve_safety(settings: GameadSettings) -> None:
    """Refuse (with :class:`ConfigError`) a configuration in which nobody, or everybody, could use the API.

    * tokens required but none configured → refuse (on 0.0.0.0 that is the "open by accident" case);
    * an empty or repeated token → refuse.

    ``auth.enabled: false`` set explicitly is the one way to run open on a network address.
    """
    tokens = settings.auth.tokens
    empty = [t.name for t in tokens if not t.token.get_secret_value().strip()]
    if empty:
        raise ConfigError(f"auth.tokens: the token of {', '.join(map(repr, empty))} is empty")
    values = [t.token.get_secret_value() for t in tokens]
    if len(set(values)) != len(values):
        raise ConfigError("auth.tokens: two entries share the same token; give every client its own")
    if not auth_required(settings) or tokens:
        return
    host = settings.api.host
    if settings.auth.enabled:
        raise ConfigError(
            "auth.enabled is true but auth.tokens is empty, so no client could use the API: add tokens "
            '(auth.tokens in the config file, or GAMEAD_AUTH__TOKENS=\'[{"name": "ci", "token": "…", '
            '"role": "submitter"}]\')'
        )
    raise ConfigError(
        f"refusing to start: the API would listen on {host} (not loopback) with no API tokens, open to "
        "anyone who can reach it. Add tokens (auth.tokens in the config file, or GAMEAD_AUTH__TOKENS="
        '\'[{"name": "ci", "token": "…", "role": "submitter"}]\'), bind to 127.0.0.1, or set '
        "auth.enabled: false (GAMEAD_AUTH__ENABLED=false) to run open on purpose"
    )
