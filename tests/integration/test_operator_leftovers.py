"""Issue 14 leftovers found from a clean clone (C3): small operator-facing defects, each with its figure."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import ad

# --- C3.2: a single-valued header folded into one line ("k1, k2", RFC 9110 §5.3) is two headers -------------


def test_a_folded_idempotency_key_is_refused_as_two_keys_and_nothing_is_queued(client: httpx.Client) -> None:
    """``Idempotency-Key: k1, k2`` was taken as the one key ``k1, k2``: a proxy joining two headers made a third
    ad. Now 400 ``duplicate_header``, saying why; neither key queued anything."""
    key = f"fold-{uuid.uuid4().hex}"
    resp = client.post("/ads", json=ad("Folded Key"), headers={"Idempotency-Key": f"{key}-1, {key}-2"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header"
    assert error["details"] == {"header": "Idempotency-Key", "folded": True}
    assert "comma" in error["message"] and "RFC 9110" in error["message"]
    for part in (f"{key}-1", f"{key}-2"):
        first = client.post("/ads", json=ad("Folded Key"), headers={"Idempotency-Key": part})
        assert first.status_code == 202 and first.json()["duplicate"] is False


def test_a_folded_authorization_is_refused_as_two_tokens(client: httpx.Client) -> None:
    resp = client.get("/ads", headers={"Authorization": "Bearer one, Bearer two"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "duplicate_header" and error["details"]["header"] == "Authorization"
    assert "RFC 6750" in error["message"]


def test_a_configured_token_cannot_hold_a_comma() -> None:
    from gamead_core.config import load_settings
    from gamead_core.errors import ConfigError

    with pytest.raises(ConfigError, match="comma"):
        load_settings(None, auth={"tokens": [{"name": "op", "token": "abc,def", "role": "operator"}]})
