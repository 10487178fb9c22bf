"""One verified TLS context per pytest process for the tests' own httpx clients, not one per client.

Every ``httpx.Client``/``httpx.AsyncClient`` (and every ``httpx.get``, which makes one) builds its transport's
TLS context with ``httpx._config.create_ssl_context``, whose default reads certifi's CA bundle: ~25 ms of CPU
each time, on a loopback ``http://`` URL that never uses it. The tests poll with such calls (``wait_api_ready``
asked ``/readyz`` every 50-200 ms with a new client each time): in session 39's loaded run (``py-spy record`` of
the six xdist workers for 60 s) ``ssl.create_default_context`` was 1,244 of 2,654 samples, the largest cost of
the pytest processes. This plugin (``pytest_plugins`` of tests/conftest.py) makes httpx's default transports,
in this process only, take one context made the first time and kept for as long as ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` say the same (any other ``verify``/``cert``/``trust_env`` is made as httpx makes it). It is the
same context httpx would make; a client's connections set their ALPN on it before each handshake, as on their
own. The processes the tests start (``gamead`` commands, servers) are untouched: their clients are theirs.

It replaces one name of httpx's private module ``httpx._transports.default``; an httpx release without it is
told with a warning, and every client then makes its own context, as before.
"""

from __future__ import annotations

import os
import ssl
import warnings
from collections.abc import Callable
from typing import Any

import httpx

_MADE: dict[tuple[str | None, str | None], ssl.SSLContext] = {}  #: by (SSL_CERT_FILE, SSL_CERT_DIR)


def sharing(make: Callable[..., ssl.SSLContext]) -> Callable[..., ssl.SSLContext]:
    """``make`` (httpx's ``create_ssl_context``) returning one context for its default call (``verify=True``, no
    ``cert``, ``trust_env=True``) per value of the environment it reads, and any other call's own."""

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None or not trust_env:
            return make(verify=verify, cert=cert, trust_env=trust_env)
        key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in _MADE:
            _MADE[key] = make(verify=verify, cert=cert, trust_env=trust_env)
        return _MADE[key]

    shared.made = make  # type: ignore[attr-defined]
    return shared


def pytest_configure(config: object) -> None:
    from httpx._transports import default

    made = getattr(default, "create_ssl_context", None)
    if made is None or getattr(made, "made", None) is not None:  # gone from httpx, or already shared
        if made is None:
            warnings.warn("tests.shared_tls: httpx._transports.default has no create_ssl_context: each httpx "
                          f"client of the tests makes its own TLS context (httpx {httpx.__version__})", stacklevel=1)
        return
    default.create_ssl_context = sharing(made)
