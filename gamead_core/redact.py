"""Credentials never leave the process: masking them in URLs before a URL is logged, printed or returned.

``nats://user:secret@host:4222`` → ``nats://user:***@host:4222``; ``redis://:secret@host`` → ``redis://:***@host``;
a token-only ``nats://secret@host`` → ``nats://***@host``; a secret in the query, as redis-py takes one
(``rediss://host/0?password=secret&ssl_password=k`` → ``?password=***&ssl_password=***``: any parameter whose name
holds ``pass``, ``token`` or ``secret``; attack40a F1: ``gamead config show`` printed it). Comma-separated server
lists are masked one by one.
:func:`redact_text` does the same for every URL inside free text (a log line, an error message): the net
under every log handler and every :class:`~gamead_core.errors.GameadError` message. :func:`without_servers`
goes further for check and status texts (``/readyz``, ``/v1/stats``): no host, port or URL at all. Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"

#: a query parameter, up to the end of its value: masked when its name, decoded as redis-py decodes it
#: (``parse_qs``: ``p%61ssword`` is ``password``, review41 F3), holds ``pass``, ``token`` or ``secret`` (redis-py's
#: ``password``, ``ssl_password``)
_PARAM = re.compile(r"([?&;])([^?=&;#\s'\"<>]++)=([^&;#\s'\"<>]*+)")  # possessive: linear on any text
_SECRET_NAME = re.compile(r"(?i)pass|token|secret")
#: where a comma starts the next URL of a server list (``nats://a:4222,nats://b:4222``); any other comma is the
#: URL's own (a password ``S3,cret`` in its user-info or query: split there, the rest was printed, review41 F3)
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def _param(match: re.Match[str]) -> str:
    if _SECRET_NAME.search(unquote_plus(match[2])) is None:
        return match[0]
    return f"{match[1]}{match[2]}={MASK}"


def _mask_query(text: str) -> str:
    return _PARAM.sub(_param, text) if "=" in text else text


def _one(url: str) -> str:
    return _mask_query(_userinfo_masked(url))


def _userinfo_masked(url: str) -> str:
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
    """``url`` with any password or token in its user-info or query replaced by ``***`` (None stays None)."""
    if url is None:
        return None
    return ",".join(_one(u) for u in _NEXT_URL.split(url))


#: ``://userinfo@`` inside text (the scheme before it left as it is): the user-info runs to the *last* ``@`` before a
#: ``/``, a space or a quote (a password with a raw ``@`` is still masked whole). Tried only where ``://`` stands:
#: with the scheme in the pattern every letter of a long run was a start that scanned the rest of it (review41 F3:
#: 3.3 s of one log line's formatting, in the event loop, for 20,000 letters after ``@ x://``).
_USERINFO_IN_TEXT = re.compile(r"://(?P<userinfo>[^\s/\"'<>]+)@")


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _secret = match["userinfo"].partition(":")
    return f"://{user}:{MASK}@" if sep else f"://{MASK}@"


def redact_text(text: str) -> str:
    """``text`` with the password or token of every URL in it (user-info or query) replaced by ``***``.
    Idempotent; text without ``://`` is returned as is (one substring test: cheap enough for every log line)."""
    if "://" not in text:
        return text
    return _mask_query(_USERINFO_IN_TEXT.sub(_mask_userinfo, text) if "@" in text else text)


#: where a server is named in free text: a URL, an IPv4 address (with its port), a bracketed IPv6 address, or a
#: ``host:port`` whose host starts with a letter (so a time such as ``12:30:45`` is left alone)
#: (each alternative starts only where a run of its characters starts and takes the run whole, possessive: linear on
#: any text; before, every letter of a run was a start scanning the rest of it: 7.8 s for 10,000 ``a.``, review41 F3)
_SERVER_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9+.-])[A-Za-z0-9+.-]++://[^\s'\"<>),]++"
    r"|\[[0-9A-Fa-f:.%]++\](?::\d{1,5})?"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"
    r"|(?<![A-Za-z0-9.-])(?:[A-Za-z0-9-]++\.)*+[A-Za-z][A-Za-z0-9-]*+:\d{1,5}\b"
)
#: what a server's name becomes in a status text
SERVER = "a server"


def without_servers(text: str) -> str:
    """``text`` with every URL, IP address and ``host:port`` in it replaced by ``a server``: what a check or
    status field (``/readyz``, ``/v1/stats``) says about a failure, which names no host, port, URL or password
    (``Error 111 connecting to 127.0.0.1:16413.`` → ``Error 111 connecting to a server.``). Pure; text
    without ``:`` or a dotted number is returned as is."""
    if ":" not in text and "." not in text:
        return text
    return _SERVER_IN_TEXT.sub(SERVER, text)
