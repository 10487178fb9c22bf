"""The ad routes of the API as methods of :class:`gamead_cli.client.ApiClient` (``submit``, ``submit_batch``,
``get_ad``, ``list_ads``): each one request through :meth:`ApiClient.request`, its answer checked there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gamead_cli.answer_shapes import not_a
from gamead_core.errors import ApiClientError


class AdCalls:
    """Mixin of :class:`gamead_cli.client.ApiClient`: needs its ``request(method, path, **kw)`` and
    ``list_timeout``."""

    request: Any
    list_timeout: float
    api_url: str

    def submit(self, ad: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /ads`` → the 202 body ``{"id", "status", "priority", "submittedAt", "duplicate"}``. A key that
        starts with ``"`` is sent as a Structured Field string (RFC 8941 §3.3.3), which the API reads back as the
        key itself (it reads a header starting with ``"`` as one): the key a batch item carries as it is."""
        if idempotency_key and idempotency_key[0] == '"':
            idempotency_key = '"' + idempotency_key.replace("\\", "\\\\").replace('"', '\\"') + '"'
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._expect_dict(self.request("POST", "/ads", json=dict(ad), headers=headers), "POST /ads")

    def submit_batch(self, ads: list[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /ads/batch`` → ``{"results": [202 body or {"error": …}, …], "accepted", "duplicates",
        "rejected"}``, one result per ad in order. An ad may carry ``idempotencyKey``. At most the API's
        ``api.batch_max`` ads. An answer of another shape, or with a result count other than the ads', is
        :class:`~gamead_core.errors.NoAnswer` (:func:`gamead_cli.answer_shapes.not_a`): the ads may be queued."""
        keyed = all(a.get("idempotencyKey") for a in ads)  # then a repeat queues nothing: it may be resent
        body = self._expect_dict(self.request("POST", "/ads/batch", json={"ads": [dict(a) for a in ads]},
                                              whole_503_took_nothing=True,  # routes_batch: "retry it as it is"
                                              keyed=keyed),
                                 "POST /ads/batch")
        if len(body["results"]) != len(ads):  # a list (answer_shapes), but not these ads' answers: unconfirmed
            raise not_a(self.api_url, "POST", "/ads/batch", "a batch's results",
                        f"{len(body['results'])} results for {len(ads)} ads", reads=False)
        return body

    def answer_lost(self) -> str:
        """How the answer of a try sent whole of this thread's last request was lost before the answer or error it
        got (``reset``, ``closed``, ``timeout``; ``""``: none was): that try may have been carried out, so a keyed
        batch's duplicates may be its own, and a refusal after it no proof that nothing was queued
        (:mod:`gamead_cli.submit.tally`)."""
        return str(getattr(getattr(self, "_tries", None), "lost", ""))

    def get_ad(self, ad_id: str, until: float | None = None) -> dict[str, Any]:
        """``GET /ads/{id}`` → the ad record, ended by ``until`` (:meth:`send`; the lookups' ``client.lookup_for``).
        Raises :class:`NotFound` for an unknown id."""
        path = f"/ads/{quote(ad_id, safe='')}"
        return self._expect_dict(self.request("GET", path, until=until, until_name="client.lookup_for"), f"GET {path}")

    def list_ads(
        self, status: str | None = None, priority: int | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """``GET /ads`` → ``{"items": [record, …], "count": n, "total": n, "nextCursor": str | None}``; ``cursor``:
        a previous page's ``nextCursor``, to read on. Its answer is waited for ``list_timeout`` seconds
        (``client.list_timeout``, 120 s, or ``client.timeout`` if longer), not ``timeout``: the API reads up to
        ``api.list_scan_limit`` records for one page, and a read that stalls answers 503 by itself (list37: at
        40,000 records a page took 8 s on a busy stack, ``gamead ads list`` exit 3 past 10 s)."""
        params = {k: v for k, v in {"limit": limit, "cursor": cursor or None, "status": status or None,
                                    "priority": priority}.items() if v is not None}
        return self._expect_dict(self.request("GET", "/ads", params=params, timeout=self.list_timeout), "GET /ads")

    @staticmethod
    def _expect_dict(body: Any, what: str) -> dict[str, Any]:
        if not isinstance(body, dict):  # an empty body: any other is checked (answer_shapes.check)
            raise ApiClientError(f"API answered {what} with unexpected data: {type(body).__name__}")
        return body
