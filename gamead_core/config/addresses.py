"""Where gamead connects and listens: the checks of ``redis.url``, ``nats.url`` and the listen addresses
(``api.host``, ``worker.metrics_host``), run when the settings are built.

Each check reads its value the way the library that will use it does (redis-py's ``parse_url`` and connection
pool, nats-py's server list, a socket's bind) and says, in words, what that library would stumble on: an
``http://`` Redis URL passed ``gamead config show`` and then killed ``gamead serve`` at start-up with redis-py's
traceback (exit 3; attack28a F3), and a NATS URL with a port that is no number had ``serve`` retry for ever.
A refusal is a :class:`ValueError` from a validator, so :func:`~gamead_core.config.load_settings` names the
setting and where it was written, exit 5. Messages never quote a password: a URL is shown masked
(:func:`~gamead_core.redact.redact_url`). Pure, no I/O: redis-py is imported only when a Redis URL is set.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
import typing
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from gamead_core.redact import redact_url

#: schemes redis-py's ``parse_url`` takes (anything else is its ValueError at the first connection)
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: schemes nats-py's server list takes; a server without one is ``nats://`` (and port 4222 without a port)
NATS_SCHEMES = ("nats", "tls", "ws", "wss")
#: query parameters of a Redis URL that would silently replace a ``redis.*`` setting (redis-py: the URL wins)
_REDIS_OWN = {"socket_timeout": "redis.socket_timeout", "socket_connect_timeout": "redis.connect_timeout",
              "timeout": "redis.connect_timeout", "max_connections": "redis.max_connections"}
#: an RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 253 characters at most
_HOST_NAME = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def control_problem(url: str, kind: str = "a URL") -> str | None:
    """Where ``url`` holds a control character (C0 with tab, CR and LF, DEL, C1), or None: the one rule of every URL
    gamead takes (the API's, ``redis.url``, ``nats.url``, an HTTP endpoint): spaces around it are dropped, a control
    character anywhere is refused, named as an escape. ``redis.url`` and ``nats.url`` dropped one at an end
    (``$'redis://h:6379/0\\r'``, a CRLF env file) and urllib dropped a tab inside unseen, while ``GAMEAD_API_URL``
    refused it (attack57b). The rule of the paths gamead keeps (``embedded.data_dir``: leftout59) too, ``kind``
    naming what has none. Pure."""
    bad = next((c for c in url if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
    if bad is None:
        return None
    return f"it holds the control character {bad!r} at position {url.index(bad)} ({kind} has none)"


def _port_problem(parts: SplitResult) -> str | None:
    """What is wrong with the port of ``parts``, or None (no port, or one from 1 to 65535)."""
    try:
        port = parts.port
    except ValueError:
        return "its port is not a number from 1 to 65535"
    if port == 0:
        return "its port is 0 (no server listens on port 0)"
    return None


def unresolvable(hostname: str) -> str | None:
    """Why no resolver can ever find ``hostname`` (a URL's host), or None: a name over 253 characters or with a
    label over 63 (RFC 1035 §2.3.4), or an empty label (``a..b``, ``.a``; a last dot is the root's). attack40a F8:
    such a ``nats.url`` passed, and the worker retried it for ever; attack55: ``--api http://a..b`` (or a label of
    64) was ``unexpected UnicodeError`` (the idna codec), exit 1. Other characters are the resolver's to judge
    (Docker's names hold ``_``). The rule of every URL gamead connects to (NATS, Redis, the API, HTTP). Pure."""
    try:
        ipaddress.ip_address(hostname)
        return None
    except ValueError:
        pass
    labels = hostname[:-1].split(".") if hostname.endswith(".") else hostname.split(".")
    if len(hostname.rstrip(".")) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        return (f"its host {hostname[:40]!r}{'…' if len(hostname) > 40 else ''} can never resolve: a host name is at "
                "most 253 characters, each label (between dots) 1 to 63")
    return None


def redis_url_problem(url: str) -> str | None:
    """What keeps redis-py (``redis.asyncio``, 8.x) from connecting with ``url``, or None.

    The rules are redis-py's ``parse_url`` and ``ConnectionPool.from_url``: the scheme is ``redis://``,
    ``rediss://`` (TLS) or ``unix://``; a ``redis``/``rediss`` URL names a host, a port (if any) from 1 to 65535
    (redis-py reads port 0 as "none": 6379) and a database number as its path (``/0``; redis-py ignored any
    other path and used database 0); a ``unix`` URL names the socket's path; each query parameter is one redis-py
    knows, with a value it can read (an unknown one failed every connection with a TypeError), and none sets
    what a ``redis.*`` setting sets (the URL's would win without a word). Pure but for importing redis-py."""
    if (problem := control_problem(url)) is not None:
        return problem
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in REDIS_SCHEMES or "://" not in text:
        return "its scheme must be redis://, rediss:// or unix:// (e.g. redis://127.0.0.1:6379/0)"
    if parts.scheme.lower() == "unix":
        if not unquote(parts.path).strip("/"):
            return "a unix:// URL names the socket's path (e.g. unix:///run/valkey/valkey.sock?db=0)"
    else:
        if (problem := _port_problem(parts)) is not None:
            return problem
        if not parts.hostname:
            return "it names no host (e.g. redis://127.0.0.1:6379/0)"
        if (problem := unresolvable(parts.hostname)) is not None:
            return problem
        db = unquote(parts.path).strip("/")
        if db and not db.isdigit():
            return f"its path must be a database number (/0, /1, …), not /{db[:20]}"
    return _redis_query_problem(text, parts)


def _redis_query_problem(url: str, parts: SplitResult) -> str | None:
    """What is wrong with the query parameters of a Redis URL, or None (see :func:`redis_url_problem`)."""
    if not parts.query:
        return None
    # deferred: only a process with a Redis URL pays for it
    from redis.asyncio import connection as rc

    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name in _REDIS_OWN:
            return f"its query sets {name}, which {_REDIS_OWN[name]} sets: set that instead"
    try:
        parsed = rc.parse_url(url)
    except ValueError as exc:  # a value it cannot read: "Invalid value for 'db' in connection URL."
        return str(exc)
    klass = parsed.get("connection_class", rc.Connection)
    known = set(rc.URL_QUERY_ARGUMENT_PARSERS) | {  # the rest reach the connection as text: its text parameters
        name for k in inspect.getmro(klass) if "__init__" in vars(k)
        for name, p in inspect.signature(vars(k)["__init__"]).parameters.items()
        if p.annotation is str or str in typing.get_args(p.annotation)}
    unknown = sorted(n for n, _ in parse_qsl(parts.query, keep_blank_values=True) if n not in known)
    if unknown:
        return f"redis-py knows no query parameter {unknown[0][:40]!r} (every connection would fail)"
    return None


def nats_url_problem(url: str) -> str | None:
    """What keeps nats-py (2.x) from connecting to the comma-separated server list ``url``, or None.

    Each server is ``[scheme://][user[:password]@]host[:port]``, the scheme ``nats://``, ``tls://``, ``ws://`` or
    ``wss://`` (nats-py prefixes ``nats://`` to a server without one, so ``http://h:4222`` became a host named
    ``http``), a host, a port (if any) from 1 to 65535; websocket and plain servers are not mixed (nats-py refuses
    it). An empty string is "unset" and no concern of this check. Pure."""
    if (problem := control_problem(url)) is not None:
        return problem
    servers = [s.strip() for s in url.split(",")]
    named = [s for s in servers if s]
    if not named:
        return "it names no server (e.g. nats://127.0.0.1:4222)" if url.strip() else None
    schemes = set()
    for i, server in enumerate(named, 1):
        which = f"server {i} of {len(named)} ({redact_url(server)[:80]})" if len(named) > 1 else ""
        scheme, sep, _ = server.partition("://")
        if sep and scheme not in NATS_SCHEMES:
            return (f"{which + ': ' if which else ''}its scheme must be nats://, tls://, ws:// or wss:// "
                    "(e.g. nats://127.0.0.1:4222)")
        try:
            parts = urlsplit(server if sep else f"nats://{server}")
        except ValueError as exc:
            return f"{which + ': ' if which else ''}not a URL ({exc})"
        problem = _port_problem(parts) or (unresolvable(parts.hostname) if parts.hostname and parts.hostname != "none"
                                           else "it names no host (e.g. nats://127.0.0.1:4222)")
        if problem is not None:
            return f"{which + ': ' if which else ''}{problem}"
        schemes.add(parts.scheme in ("ws", "wss"))
    if len(schemes) > 1:
        return "it mixes websocket (ws://, wss://) and plain (nats://, tls://) servers, which nats-py refuses"
    return None


def host_problem(host: str) -> str | None:
    """What keeps ``host`` from being an address to listen on, or None: an IPv4 or IPv6 address (without
    brackets; ``0.0.0.0`` or ``::`` for every interface) or a host name (RFC 1123), whose last label is not all
    digits (``256.1.1.1`` is a bad IPv4 address, not a name: attack28c F1). Not a URL, and no port: the
    port has its own setting. Pure: whether a name resolves, or is this machine's, is the bind's to say."""
    if not host.strip():
        return "it is empty: name an address (127.0.0.1, or 0.0.0.0 for every interface)"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if "://" in host or host.startswith("[") or (host.count(":") == 1 and host.rpartition(":")[2].isdigit()):
        return (f"{host[:80]!r} is not an address: give the host alone (e.g. 0.0.0.0 or ::), without a scheme, "
                "brackets or a port (the port has its own setting)")
    if not _HOST_NAME.fullmatch(host):
        return f"{host[:80]!r} is neither an IP address nor a host name (letters, digits, hyphens and dots)"
    if host.rstrip(".").rpartition(".")[2].isdigit():  # 256.1.1.1 passed, and the bind said "choose another api.port"
        return (f"{host[:80]!r} is not an IP address, nor a host name: a name's last label is not a number "
                "(RFC 1123 §2.1; an IPv4 address is four numbers from 0 to 255)")
    return None


def otlp_endpoint_problem(url: str, *, grpc: bool = False, base: bool = False) -> str | None:
    """What keeps the OpenTelemetry OTLP exporter from sending to ``url`` (``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``),
    or None. The HTTP exporter (the default, ``http/protobuf``) takes an ``http://`` or ``https://`` URL with a host
    and a port (if any) from 1 to 65535: it took ``http://h:notaport`` and then logged "Failed to export spans
    batch … not a valid host or port" at every batch. The gRPC exporter also takes a bare ``host:port``, so only a
    URL with a scheme is checked for it. The HTTP exporter's URL (``url``, with ``/v1/traces`` added when ``base``:
    ``OTEL_EXPORTER_OTLP_ENDPOINT``) must also pass its transport's parser (:func:`_requests_problem`; a host with a
    space passed the rule above and then failed every batch: attack28c F5). Pure but for importing ``requests``."""
    if grpc and "://" not in url:
        return None
    if (problem := http_url_problem(url, "http://127.0.0.1:4318")) is not None or grpc:
        return problem
    return _requests_problem(url.removesuffix("/") + "/v1/traces" if base else url)


def _requests_problem(url: str) -> str | None:
    """What keeps ``requests`` (the HTTP exporter's transport) from preparing a request to ``url``, or None: its
    parser (urllib3's) refuses a host holding a space or a control character (``http://h :4318``), and the SDK
    strips only what ``requests`` strips (leading whitespace). Pure but for importing ``requests``."""
    from requests.models import PreparedRequest  # deferred: only a process exporting spans over HTTP pays for it

    try:
        PreparedRequest().prepare_url(url, None)
    except Exception as exc:  # noqa: BLE001 - requests' InvalidURL, MissingSchema…: its words say why
        return f"the exporter cannot send to it ({str(exc).replace(url, redact_url(url))})"
    return None


def http_url_problem(url: str, example: str) -> str | None:
    """What keeps an HTTP client from sending to ``url``, or None: it must be ``http://`` or ``https://`` with a host
    and a port (if any) from 1 to 65535 (``example`` is shown as a good one). The OTLP endpoint's rule, and that of
    the Kubernetes API server a kubeconfig or the pod's ``KUBERNETES_SERVICE_HOST``/``_PORT`` name (the client took
    ``https://h:notaport`` and then said the server "answered … but the answer was not a Scale object"). Pure."""
    if (problem := control_problem(url)) is not None:
        return problem
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https") or "://" not in text:
        return f"not an http:// or https:// URL (e.g. {example})"
    if (problem := _port_problem(parts)) is not None:
        return problem
    if not parts.hostname:
        return f"it names no host (e.g. {example})"
    return unresolvable(parts.hostname)
