"""The client address behind a trusted proxy: ``X-Forwarded-For``, read only from a trusted peer, and only addresses
(attack31b F6).

uvicorn's own middleware took the right-most entry that is not a trusted proxy verbatim, whatever it was: a name, 12,000
characters, C1 controls; it became the ``client`` of audit records, log lines, rate-limit keys and the failure buckets'
keys. Here the rule README (*Auth*) states is kept and made exact:

* the header is read only on a connection from a peer in ``FORWARDED_ALLOW_IPS`` (uvicorn's setting and default,
  ``127.0.0.1,::1``; addresses, networks ``10.0.0.0/24``, or ``*``), its entries (several headers joined) walked from
  the right: an entry that is a trusted proxy's address is skipped, the first one that is not is the client;
* an entry is an IP address (:func:`entry_address`): IPv4 ``192.0.2.1`` or ``192.0.2.1:4711``, IPv6 ``2001:db8::1``,
  ``[2001:db8::1]`` or ``[2001:db8::1]:4711`` (RFC 7239's form), a zone (``fe80::1%eth0``) dropped; written back in
  its normal form (an IPv4-mapped IPv6 one as IPv4), so a client is at most 39 characters;
* an entry that is not one (a name, ``unknown``, an obfuscated ``_hidden``, anything longer than an address can be)
  ends the walk: nothing left of it can be believed, so the client is the nearest hop known, the trusted proxy that
  wrote it (the right-most trusted entry walked, or the connection's peer itself);
* every entry a trusted proxy: the left-most (as uvicorn).

``X-Forwarded-Proto`` (``http``, ``https``, ``ws``, ``wss``) sets the scheme, as uvicorn did. Pure parsing apart from
the ASGI wrapper; ``gamead serve`` runs uvicorn with ``proxy_headers=False`` and this in its place.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

#: uvicorn's default for ``FORWARDED_ALLOW_IPS``
DEFAULT_TRUSTED: Final = "127.0.0.1,::1"
#: peers whose verdict :meth:`Trusted.peer` keeps (then it starts again: a bound, not an eviction policy)
PEERS_KEPT: Final = 4096
#: characters an entry may have: ``[`` + the longest IPv6 text (45) + a zone + ``]:65535``; longer is not an address
MAX_ENTRY: Final = 80

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def normal_address(text: str) -> Address | None:
    """``text`` as an IP address in its normal form (an IPv4-mapped IPv6 one as IPv4, a zone dropped); None when
    it is not one. Pure."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.scope_id is not None:  # the zone names an interface of the proxy's host: nothing to us
            return ipaddress.IPv6Address(ip.packed)
    return ip


def entry_address(entry: str) -> tuple[Address, int] | None:
    """The address and port (0: none) one ``X-Forwarded-For`` entry names, None when it is not an IP address (see
    the module docstring for the forms)."""
    entry = entry.strip()
    if not entry or len(entry) > MAX_ENTRY:
        return None
    host, port = entry, ""
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else ""
        if rest and not port:
            return None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return None
    ip = normal_address(host) if ":" in host or not entry.startswith("[") else None  # brackets hold IPv6 text only
    if ip is None:
        return None
    return ip, int(port or 0)


class Trusted:
    """The peers whose ``X-Forwarded-For`` is read: ``FORWARDED_ALLOW_IPS``' comma-separated addresses, networks,
    ``*`` (anyone), or other literals (matched as the peer's text: a unix socket)."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.anyone = "*" in items
        self.hosts: set[Address] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.literals: set[str] = set()
        self._peers: dict[str, bool] = {}  #: peer text -> trusted (:meth:`peer`)
        for item in items:
            try:
                if "/" in item:
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                else:
                    self.hosts.add(ipaddress.ip_address(item))
            except ValueError:
                self.literals.add(item)

    def address(self, ip: Address) -> bool:
        """Whether ``ip`` is a trusted proxy's."""
        return self.anyone or ip in self.hosts or any(ip in net for net in self.networks)

    def peer(self, host: str) -> bool:
        """Whether the connection's peer (its text, as the server gives it) is a trusted proxy; remembered per peer
        (at most :data:`PEERS_KEPT`: parsing the address took ~2 µs of every request)."""
        known = self._peers.get(host)
        if known is None:
            ip = normal_address(host) if len(host) <= MAX_ENTRY else None
            known = self.anyone or host in self.literals or (ip is not None and self.address(ip))
            if len(self._peers) >= PEERS_KEPT:
                self._peers.clear()
            self._peers[host] = known
        return known


def forwarded_client(header: str, trusted: Trusted) -> tuple[str, int] | None:
    """The client ``header`` (the ``X-Forwarded-For`` entries of a trusted peer) names, as ``(address, port)``; None:
    the peer itself (no entry that is an address at the right end)."""
    nearest: tuple[Address, int] | None = None
    for entry in reversed(header.split(",")):
        found = entry_address(entry)
        if found is None:
            break  # not an address: what is left of it cannot be believed
        nearest = found
        if not trusted.address(found[0]):
            break
    return (str(nearest[0]), nearest[1]) if nearest is not None else None


class ForwardedFor:
    """ASGI middleware: the ``client`` (and ``scheme``) of a request from a trusted peer, by the rule above."""

    def __init__(self, app: ASGIApp, trusted: str | None = None) -> None:
        self.app = app
        self.trusted = Trusted(trusted if trusted is not None else os.environ.get("FORWARDED_ALLOW_IPS",
                                                                                  DEFAULT_TRUSTED))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client") if scope["type"] in ("http", "websocket") else None
        if peer and self.trusted.peer(str(peer[0])):
            proto: bytes | None = None
            forwarded: list[bytes] = []
            for name, value in scope["headers"]:
                if name == b"x-forwarded-proto":
                    proto = value
                elif name == b"x-forwarded-for":
                    forwarded.append(value)
            if proto is not None and (scheme := proto.decode("latin-1").strip()) in ("http", "https", "ws", "wss"):
                scope["scheme"] = scheme.replace("http", "ws") if scope["type"] == "websocket" else scheme
            if forwarded and (client := forwarded_client(b",".join(forwarded).decode("latin-1"), self.trusted)):
                scope["client"] = client
        await self.app(scope, receive, send)
