"""Which body cap a request target gets (bytes) and the setting it comes from: one rule for the HTTP protocol's
gate (:mod:`gamead_core.api.http_limits`), the ASGI gate (:mod:`gamead_core.api.middleware`) and the routes
that read their body (:func:`gamead_core.api.body.read_body`). Pure, no Starlette.

* ``POST /ads/batch``: ``api.batch_max_body_bytes``.
* ``POST /v1/dlq/replay`` and ``/v1/dlq/purge``: ``api.max_body_bytes``, but never less than a body of
  :data:`MAX_IDS` ids takes (:data:`ID_LIST_BODY`), so the bound said in the schema (``ids``' ``maxItems``) is
  the one served whatever ``api.max_body_bytes`` is (attack44 F2: the schema said 100,000 ids, the 64 KiB cap
  refused 2,300).
* every other route: ``api.max_body_bytes``.
"""

from __future__ import annotations

#: the batch routes (``api.batch_max_body_bytes``)
BATCH_PATHS = frozenset({"/ads/batch", "/ads:batch"})
#: the routes whose body may name ad ids by the thousand
ID_LIST_PATHS = frozenset({"/v1/dlq/replay", "/v1/dlq/purge"})
#: most ad ids one replay or purge names (``ids``' ``maxItems``; the CLI's bound too, said before any request)
MAX_IDS = 10_000
#: bytes allowed per id in such a body: 28 for ``"<26 chars>"`` and its comma, the rest for whitespace a client
#: may pretty-print with
ID_BYTES = 64
#: bytes allowed besides the ids (the filter, limit, rate, flags)
ID_LIST_OTHER = 16 * 1024
#: the least body cap of an id-list route: what :data:`MAX_IDS` ids take, pretty-printed
ID_LIST_BODY = MAX_IDS * ID_BYTES + ID_LIST_OTHER


def body_cap(path: str, max_body: int, max_batch_body: int) -> tuple[int, str]:
    """The body cap (bytes) of a request to ``path`` (without its query) and the setting named when it is
    passed; ``max_body``/``max_batch_body``: ``api.max_body_bytes`` / ``api.batch_max_body_bytes``. Pure."""
    if path in BATCH_PATHS:
        return max_batch_body, "api.batch_max_body_bytes"
    if path in ID_LIST_PATHS:
        return max(max_body, ID_LIST_BODY), f"room for {MAX_IDS:,} ids, or api.max_body_bytes if more"
    return max_body, "api.max_body_bytes"
