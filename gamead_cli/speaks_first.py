"""What answered at ``--api`` when a request got no HTTP answer from an address that never gave one (attack47 F3).

A NATS client port (the ``nats://`` address ``gamead up`` prints first: an easy slip) writes ``INFO {…}`` as a
client connects, then ``-ERR 'Unknown Protocol Operation'`` for the request line, and closes: h11 waits for a
whole head that never comes, so the client said "the gamead API … got the request but gave no answer … is the API
overloaded or stopped?" and ``submit`` "the ad may be queued". An HTTP server never speaks before a request, so a
fresh connection that is written to before it sends anything is no HTTP server: :func:`first_words` opens one and
reads what comes unasked within :data:`FIRST_WAIT`; :func:`not_http` makes the one line of it. A gamead API that
crashed or closed mid-request refuses that connection or says nothing on it: it is never called "no gamead API";
nor is one at ``api.max_connections`` with every connection serving, which answers a new connection ``HTTP/1.1 503``
``too_many_connections`` as it opens (:mod:`gamead_core.api.conn_cap`; probe47 F1): an HTTP answer is HTTP.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from gamead_core.errors import ApiUnreachable

#: seconds a fresh connection is watched for bytes sent before any request
FIRST_WAIT = 0.5
#: characters of those bytes quoted (their first line)
QUOTED = 24


def first_words(api_url: str, wait: float = FIRST_WAIT) -> bytes:
    """The first bytes the server at ``api_url`` sends on a fresh TCP connection before any request, within
    ``wait`` s; ``b""`` when it sends none (an HTTP server), refuses, or closes."""
    parts = urlsplit(api_url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=wait) as sock:
            sock.settimeout(wait)
            return sock.recv(256)
    except (OSError, ValueError):
        return b""


def not_http(api_url: str, first: bytes) -> ApiUnreachable | None:
    """The error saying that what listens at ``api_url`` is no gamead API, named by ``first`` (its unasked bytes:
    ``INFO {`` is a NATS server's greeting), or None when there were none. Pure."""
    if not first or first.startswith(b"HTTP/"):  # an HTTP answer unasked: an API refusing new connections
        return None
    line = first.split(b"\n", 1)[0].rstrip(b"\r")
    shown = "".join(c if c.isprintable() and c.isascii() else "?" for c in line[:QUOTED].decode("latin-1"))
    said = shown + ("…" if len(line) > QUOTED else "")
    what = "a NATS server, not HTTP" if first.startswith(b"INFO {") else "before any request: not HTTP"
    return ApiUnreachable(f'no gamead API at {api_url}: it answered "{said}" ({what}) — --api (GAMEAD_API_URL) must '
                          "be the API's base URL, e.g. http://127.0.0.1:8080")


__all__ = ["FIRST_WAIT", "first_words", "not_http"]
