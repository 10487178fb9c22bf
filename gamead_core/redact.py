"""Credentials never leave the process: masking them in URLs before a URL is logged, printed or returned.

``nats://user:secret@host:4222`` → ``nats://user:***@host:4222``; ``redis://:secret@host`` → ``redis://:***@host``;
a token-only ``nats://secret@host`` → ``nats://***@host``. Comma-separated server lists are masked one by one.
Pure: no I/O.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def _one(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return MASK if "@" in url else url
    if "@" not in parts.netloc:
        return url.strip()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    masked = f"{user}:{MASK}" if sep else MASK  # "user:pw" keeps the user; a lone token is the secret itself
    return urlunsplit((parts.scheme, f"{masked}@{hostport}", parts.path, parts.query, parts.fragment))


def redact_url(url: str | None) -> str | None:
    """``url`` with any password or token in its user-info replaced by ``***`` (None stays None)."""
    if url is None:
        return None
    return ",".join(_one(u) for u in url.split(","))
