"""API tokens, roles and the grant table: who may call what.

Three roles (``auth.tokens``: ``[{name, token, role}]``, from the config file or ``GAMEAD_AUTH__TOKENS`` as
JSON from a mounted Secret):

============  ========================================================================================
role          may
============  ========================================================================================
submitter     submit ads, read ads
viewer        read ads and every ``GET /v1/*`` (stats, workers, DLQ, scale, jobs, audit…) but the doctor's;
              change nothing
operator      everything
============  ========================================================================================

The decision is :data:`GRANTS`, one pure table keyed by (access, route class): ``access`` is ``read`` for
the safe methods of RFC 9110 §9.2.1 (GET, HEAD, OPTIONS, TRACE) and ``write`` for every other method; the
route class comes from the path alone (:func:`route_class`), so a route added later (``/v1/jobs``,
``/v1/audit``…) is covered the day it is mounted: a ``/v1`` read is for viewers and operators, a ``/v1``
write (or any write gamead does not list) for operators only. ``/v1/doctor`` is for operators only, reads
included: its report names ads and a run reads the whole store. ``GET /v1/whoami`` is for every role.
Deny is the default.

A method the path has no route for (``PUT /ads``) is answered 405 with ``Allow`` by the app, not 403, for
every role that may call the path with one of the methods it has (:func:`may_use_path`): a viewer's
``PUT /ads`` is 405 like a submitter's. A caller who may use none of the path's methods gets 403; no token
where one is required is 401 before anything else (429 past the address's limit of failed authentications).

A presented token is compared with *every* configured token in constant time, so neither timing nor the
position of a match leaks anything. A valid token is always compared and served, whatever else its client
address sent: the limit of failed authentications (:mod:`gamead_core.api.auth_failures`) bounds the 401s and log
lines, not guessing, which only a token's length and randomness bound (:func:`weak_tokens`, warned at start).

Whether tokens are required at all is :func:`auth_required`: when tokens are configured they are enforced
on every address; only ``auth.enabled: false`` set explicitly turns them off; with no tokens an API bound to
loopback runs open (``gamead up``), and one bound to a network address refuses to start
(:func:`check_serve_safety`). :func:`auth_mode` is what the start-up log line says.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from gamead_core.config import ROLES, AuthSettings, GameadSettings, Role
from gamead_core.errors import ConfigError

Access = Literal["read", "write"]
RouteClass = Literal["open", "ads", "ad", "doctor", "whoami", "v1", "other"]

#: RFC 9110 §9.2.1: methods defined as safe (read-only); every other method is a write.
SAFE_METHODS: Final[frozenset[str]] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: paths anyone may call, whatever the auth mode
OPEN_PATHS: Final[frozenset[str]] = frozenset(
    {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
#: who the caller is: readable by every authenticated role (a submitter's too), unlike the rest of /v1
WHOAMI_PATH: Final[str] = "/v1/whoami"
#: the ad collection: ``GET`` lists, ``POST`` submits (one ad, or a batch)
COLLECTION_PATHS: Final[frozenset[str]] = frozenset({"/ads", "/ads/batch", "/ads:batch"})

_EVERYONE: Final[frozenset[Role]] = frozenset(ROLES)
_OPERATOR: Final[frozenset[Role]] = frozenset({"operator"})

#: (access, route class) → roles allowed. ``open`` is not here: it needs no token at all. A pair missing
#: from the table allows the operator only (:func:`allowed_roles`).
GRANTS: Final[Mapping[tuple[Access, RouteClass], frozenset[Role]]] = {
    ("read", "ads"): _EVERYONE,  # GET /ads: list ads
    ("write", "ads"): frozenset({"submitter", "operator"}),  # POST /ads, /ads/batch: submit
    ("read", "ad"): _EVERYONE,  # GET /ads/{id}
    ("write", "ad"): _OPERATOR,  # nothing today; any future change to one ad (cancel…) is an operator's
    ("read", "v1"): frozenset({"viewer", "operator"}),  # every GET /v1/*
    ("write", "v1"): _OPERATOR,  # replay, purge, import, jobs, scale override…
    ("read", "whoami"): _EVERYONE,  # GET /v1/whoami: every authenticated role may ask who it is (README)
    ("write", "whoami"): _OPERATOR,  # no such route: an operator gets its 405
    ("read", "doctor"): _OPERATOR,  # GET /v1/doctor: names ads and reads the whole store
    ("write", "doctor"): _OPERATOR,  # POST /v1/doctor/repair
    ("read", "other"): _EVERYONE,  # any other GET needs a valid token, of any role
    ("write", "other"): _OPERATOR,
}


def route_class(path: str) -> RouteClass:
    """The route class of a request path (see :data:`GRANTS`). Pure; decided by the path alone.

    ``open`` (health, docs) · ``ads`` (the collection ``/ads``, ``/ads/batch``, ``/ads:batch``) · ``ad``
    (``/ads/{id}`` and below) · ``doctor`` (``/v1/doctor`` and below: operators only, reads too) · ``whoami``
    (``/v1/whoami``: every role may ask who it is) · ``v1``
    (``/v1`` and below: the operator API) · ``other``.
    """
    if path in OPEN_PATHS:
        return "open"
    if path in COLLECTION_PATHS:
        return "ads"
    if path.startswith(("/ads/", "/ads:")):
        return "ad"
    if path == "/v1/doctor" or path.startswith("/v1/doctor/"):
        return "doctor"
    if path == WHOAMI_PATH:
        return "whoami"
    if path == "/v1" or path.startswith("/v1/"):
        return "v1"
    return "other"


def access_of(method: str) -> Access:
    """``read`` for the safe methods of RFC 9110 §9.2.1, ``write`` for every other (or unknown) method."""
    return "read" if method.upper() in SAFE_METHODS else "write"


def allowed_roles(method: str, klass: RouteClass) -> frozenset[Role]:
    """The roles that may call ``method`` on a route of class ``klass``; the operator alone if the table
    has no rule (deny by default). ``open`` routes allow every role (and anonymous callers)."""
    if klass == "open":
        return _EVERYONE
    return GRANTS.get((access_of(method), klass), _OPERATOR)


def may_use_path(role: str | None, methods: frozenset[str], klass: RouteClass) -> bool:
    """True if ``role`` may call at least one of ``methods`` (the methods a path has routes for) on a route of
    class ``klass``: then a method the path lacks is the app's 405 (with ``Allow``), not a 403. Pure."""
    return role is not None and any(role in allowed_roles(m, klass) for m in methods)


def needed_roles_text(roles: frozenset[Role]) -> str:
    """``'submitter' or 'operator'``: the roles, in the order of :data:`ROLES`, for error messages."""
    return " or ".join(repr(r) for r in ROLES if r in roles)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a named token with its role, or :data:`ANONYMOUS` (no valid token; open mode).

    Put on every request as ``request.state.principal`` so handlers (and the audit trail) can say who.
    """

    name: str
    role: Role | None

    @property
    def authenticated(self) -> bool:
        return self.role is not None

    def may(self, method: str, klass: RouteClass) -> bool:
        """True if this principal's role may call ``method`` on a ``klass`` route (anonymous: open only)."""
        if klass == "open":
            return True
        return self.role is not None and self.role in allowed_roles(method, klass)

    @property
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys: ``token:<name>``, or ``anonymous`` for every
        caller without a valid token (open mode has no identity to tell them apart)."""
        return f"token:{self.name}" if self.role is not None else "anonymous"


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
    """Are tokens enforced? ``auth.enabled`` when set explicitly; else yes when any token is configured,
    whatever the bind address; else yes unless the API binds a loopback address."""
    enabled = settings.auth.enabled
    if enabled is not None:
        return enabled
    if settings.auth.tokens:
        return True
    return not is_loopback(settings.api.host)


def tokens_by_role(settings: AuthSettings) -> dict[str, int]:
    """``{"submitter": n, "viewer": n, "operator": n}``: how many tokens each role has (never a token)."""
    counts = Counter(t.role for t in settings.tokens)
    return {role: counts.get(role, 0) for role in ROLES}


def auth_mode(settings: GameadSettings) -> dict[str, Any]:
    """What the start-up log line says about auth: ``mode`` (``required`` | ``open`` | ``disabled``), the
    number of tokens per role and why. Pure; never includes a token."""
    if auth_required(settings):
        mode, why = "required", (
            "auth.enabled is true" if settings.auth.enabled else
            "tokens are configured" if settings.auth.tokens else f"the API binds {settings.api.host}"
        )
    elif settings.auth.enabled is False:
        mode, why = "disabled", "auth.enabled is false: every request is accepted without a token"
    else:
        mode, why = "open", f"no tokens are configured and the API binds loopback ({settings.api.host})"
    return {"auth_mode": mode, "auth_tokens": tokens_by_role(settings.auth), "auth_reason": why}


#: a token shorter than this is warned about at start (``openssl rand -hex 32`` gives 64 characters)
WEAK_BELOW_CHARS = 16
#: a token of fewer different characters than this is warned about (``aaaa…``, ``abab…``, ``deadbeefdeadbeef``)
WEAK_BELOW_DISTINCT = 8


def weak_tokens(settings: AuthSettings) -> list[str]:
    """The names (never the secrets) of the tokens that are easy to guess: shorter than :data:`WEAK_BELOW_CHARS`
    characters, or of fewer than :data:`WEAK_BELOW_DISTINCT` different characters. Pure. A heuristic, not a
    measure of randomness: a valid token is always served (review28 A1), so nothing but its length and randomness
    bounds online guessing; the README asks for ``openssl rand -hex 32``."""
    weak: list[str] = []
    for entry in settings.tokens:
        secret = entry.token.get_secret_value()
        if len(secret) < WEAK_BELOW_CHARS or len(set(secret)) < WEAK_BELOW_DISTINCT:
            weak.append(entry.name)
    return weak


def check_serve_safety(settings: GameadSettings) -> None:
    """Refuse (with :class:`ConfigError`) a configuration in which nobody, or everybody, could use the API.

    * tokens required but none configured → refuse (on 0.0.0.0 that is the "open by accident" case).

    An empty or shared token, or two entries with one name, is refused when the settings load
    (:class:`~gamead_core.config.access.AuthSettings`: ``gamead config show`` says it, exit 5).

    ``auth.enabled: false`` set explicitly is the one way to run open on a network address.
    """
    tokens = settings.auth.tokens
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
