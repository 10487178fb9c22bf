"""Sections for who may call the API and how fast: ``redis:`` (shared limits, cache), ``cache:``,
``ratelimit:`` and ``auth:`` (tokens and their roles)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from gamead_core.config.addresses import redis_url_problem
from gamead_core.config.placeholders import refuse_placeholder
from gamead_core.config.section import HOUR, WEEK, PositiveSeconds, Seconds, Section


class RedisSettings(Section):
    """``redis:`` – optional Redis/Valkey for shared rate limits and the record cache. Unset: in-process
    fallbacks. Timeouts in seconds; the circuit breaker opens after ``breaker_failures`` consecutive failures
    and tries again after ``breaker_reset`` seconds (a Redis outage never fails a request)."""

    url: str | None = Field(
        None, description="redis://, rediss:// or unix:// URL of Redis 6+ or Valkey, as redis-py reads it (checked at "
        "load: gamead_core.config.addresses); unset = in-process fallbacks.")
    socket_timeout: PositiveSeconds = Field(
        0.25, le=60, description="Seconds per Redis command before it counts as failed. At most 60 s.")
    connect_timeout: PositiveSeconds = Field(0.5, le=60,
                                     description="Seconds to open a connection to Redis. At most 60 s.")
    max_connections: int = Field(
        64, ge=1, le=10_000, description="Connections one process keeps to Redis. At most 10,000 (Redis' default "
        "maxclients).")
    breaker_failures: int = Field(
        3, ge=1, le=1000, description="Consecutive failures that open the circuit breaker. At most 1000.")
    breaker_reset: Seconds = Field(
        5.0, ge=0.1, le=HOUR, description="Seconds the breaker stays open before a half-open probe; at least 0.1 s "
        "(each probe is a Redis round trip). At most 1 hour (3600 s).")

    @field_validator("url")
    @classmethod
    def _url_redis_py_reads(cls, value: str | None) -> str | None:
        """A URL redis-py can connect with (:func:`~gamead_core.config.addresses.redis_url_problem`): refused here,
        not at the API's start-up as a traceback (attack28a F3); without the spaces around it, as the check reads it
        (redis-py refused ``' redis://…'``: the API's start-up failed with a traceback)."""
        if value is not None and (problem := redis_url_problem(value)) is not None:
            raise ValueError(problem)
        return value.strip() if value is not None else None


class CacheSettings(Section):
    """``cache:`` – the cache of final ad records behind ``GET /ads/{id}`` (seconds an entry lives)."""

    ttl: PositiveSeconds = Field(
        300.0, le=WEEK, description="Seconds a terminal ad record stays cached in Redis. At most 7 days "
        "(604800 s).")


class RateSettings(Section):
    """One token bucket: ``rate`` requests per second refilled, ``burst`` requests at once."""

    rate: float = Field(
        gt=0, le=1_000_000_000, description="Requests per second refilled into the bucket. At most 1,000,000,000.")
    burst: int = Field(
        ge=1, le=1_000_000_000, description="Bucket size: requests allowed at once. At most 1,000,000,000.")


class RateLimitSettings(Section):
    """``ratelimit:`` – token buckets per API key (per client IP when anonymous), per role and for the
    ``/v1/*`` operator routes; a refused request gets 429 ``rate_limited`` with ``Retry-After``."""

    enabled: bool | None = Field(
        None, description="Limit requests. Unset = on unless the API binds to a loopback address (one machine)."
    )
    rate: float = Field(
        200.0, gt=0, le=1_000_000_000, description="Requests per second per API key (per IP when anonymous). At most "
        "1,000,000,000 (a huge rate and burst are how a benchmark turns the limit off).")
    burst: int = Field(400, ge=1, le=1_000_000_000, description="Bucket size per API key. At most 1,000,000,000.")
    roles: dict[str, RateSettings] = Field(
        default_factory=dict, description="Overrides per role, e.g. {operator: {rate: 50, burst: 100}}."
    )
    admin: RateSettings = Field(
        default_factory=lambda: RateSettings(rate=10, burst=20), description="Limit of /v1/* operator routes."
    )
    failed_auth: RateSettings = Field(
        default_factory=lambda: RateSettings(rate=1, burst=20), description="Requests without a valid token (none "
        "or a wrong one) answered 401 per client address (IPv6: per /64) and API node; past it they get 429 "
        "rate_limited. A valid token is always served, whatever this address sent (gamead_core.api.auth_failures).")

    @model_validator(mode="before")
    @classmethod
    def _partial_buckets_keep_the_rest(cls, data: Any) -> Any:
        """A bucket given in part keeps the field it leaves out: ``admin`` and ``failed_auth`` their defaults
        (``ratelimit.failed_auth.rate: 5`` alone keeps ``burst: 20``), a role under ``roles`` the general
        ``rate``/``burst`` it overrides. Before, the missing field was "Field required" (note 28's leftover).
        ``data`` is the section as read (YAML mapping, ``GAMEAD_RATELIMIT__…`` variables); returned filled."""
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for name in ("admin", "failed_auth"):
            given = filled.get(name)
            if isinstance(given, dict):
                default = cls.model_fields[name].get_default(call_default_factory=True)
                filled[name] = {"rate": default.rate, "burst": default.burst, **given}
        roles = filled.get("roles")
        if isinstance(roles, dict):
            general = {"rate": filled.get("rate", cls.model_fields["rate"].default),
                       "burst": filled.get("burst", cls.model_fields["burst"].default)}
            filled["roles"] = {role: {**general, **bucket} if isinstance(bucket, dict) else bucket
                               for role, bucket in roles.items()}
        return filled


Role = Literal["submitter", "viewer", "operator"]
#: every role, least privileged first (gamead_core.api.auth holds what each may do)
ROLES: tuple[Role, ...] = ("submitter", "viewer", "operator")


class TokenSettings(Section):
    """One API token under ``auth.tokens``: who it belongs to, the secret, and its role."""

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
        description="Who the token belongs to: named in logs, rate-limit buckets and idempotency scopes.",
    )
    token: SecretStr
    role: Role

    @field_validator("token")
    @classmethod
    def _token_a_client_can_send(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        """The token is printable ASCII without spaces or commas, or no client could present it: an HTTP header
        value is ASCII (a server reads other bytes as latin-1, so ``tök€n`` never matched), ``gamead`` refuses to
        send a token with a space (``client.token``'s rule), and a comma in ``Authorization`` is refused as two
        headers folded into one (RFC 9110 §5.3; RFC 6750's b64token has none). Names the entry and the character,
        never the token (attack28a F4). An empty or blank token is refused here too ("is empty"; it was refused only
        when the API started, after ``gamead up`` had started NATS: attack28c F4)."""
        token = value.get_secret_value()
        whose = f"the token of {info.data['name']!r}" if "name" in info.data else "this entry's token"
        if not token.strip():
            raise ValueError(f"{whose} is empty: give it the secret its client sends (e.g. from openssl rand -hex 24)")
        bad = next((c for c in token if not 33 <= ord(c) <= 126 or c == ","), None)
        if bad is not None:
            what = {" ": "a space", ",": "a comma"}.get(bad, f"{bad!r} (U+{ord(bad):04X})" if bad.isprintable()
                                                           else f"U+{ord(bad):04X}")
            raise ValueError(f"{whose} holds {what}: a token is printable ASCII without spaces or commas (it is "
                             "sent as an HTTP Bearer token, RFC 6750), or no client could use it")
        return value

    @field_validator("token")
    @classmethod
    def _not_the_template(cls, value: SecretStr, info: ValidationInfo) -> SecretStr | None:
        """Not the placeholder of manifests/base/secret.example.env (attack39b F2: gamead_core.config.placeholders)."""
        return refuse_placeholder(value, info)

    @field_validator("name")
    @classmethod
    def _not_anonymous(cls, value: str) -> str:
        if value.lower() == "anonymous":
            raise ValueError("'anonymous' is reserved for callers without a token")
        return value


class AuthSettings(Section):
    """``auth:`` – bearer tokens (RFC 6750) and their roles; required unless the API binds to loopback."""

    enabled: bool | None = Field(
        None, description="Require tokens. Unset = required unless the API binds to a loopback address."
    )
    tokens: list[TokenSettings] = Field(default_factory=list, description="API tokens: {name, token, role}.")


    @field_validator("tokens")
    @classmethod
    def _one_token_one_client(cls, tokens: list[TokenSettings]) -> list[TokenSettings]:
        """No two entries share a token (the API could not tell whose a request is) or a name (names say who did
        what: rate limits, idempotency keys, the audit trail). Names the entries, never a token. At load, so
        ``gamead config show`` refuses it (exit 5) before anything starts (attack28c F4)."""
        owners: dict[str, list[str]] = {}
        for entry in tokens:
            owners.setdefault(entry.token.get_secret_value(), []).append(entry.name)
        shared = next((names for names in owners.values() if len(names) > 1), None)
        if shared is not None:
            raise ValueError(f"{' and '.join(map(repr, shared))} share the same token; give every client its own")
        names = [t.name for t in tokens]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the name {', '.join(map(repr, repeated))} is used twice; names say who did what (rate "
                             "limits, idempotency keys, the audit trail), so each must be unique")
        return tokens
