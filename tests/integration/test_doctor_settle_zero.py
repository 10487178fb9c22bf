"""``GET /v1/doctor?settle=-0`` is a settle of 0 (attack42a F3), on a real API.

Before: 200 with ``"settleSeconds": -0.0`` (``settle=-1`` is 422). The query's ``Seconds`` type now reads ``-0`` as
0, as every float setting already did (:func:`gamead_core.config.section.plus_zero`, attack26 F9). Without the fix
(``Seconds`` without its ``AfterValidator``): ``settleSeconds`` is ``-0.0``, this test fails."""

from __future__ import annotations

import math

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("stack")


def test_settle_minus_zero_is_zero(client: httpx.Client) -> None:
    resp = client.get("/v1/doctor", params={"settle": "-0", "sample": 1}, timeout=120)
    assert resp.status_code == 200, resp.text[:300]
    settle = resp.json()["settleSeconds"]
    assert settle == 0 and math.copysign(1.0, settle) == 1.0, settle
