"""``GET /v1/levels/{level}/oldest`` (the dashboard's drill-down) on a real NATS: oldest first, bounded."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import ad
from tests.tui.conftest import Observed

#: the tui package's stack: a NATS and an API with no worker, so what is submitted stays waiting
pytestmark = pytest.mark.xdist_group("tui-observed")


@pytest.fixture
def api(observed: Observed) -> httpx.Client:
    return httpx.Client(base_url=observed.url, timeout=10)


def test_the_oldest_waiting_ads_of_a_level_come_first_with_their_records(api: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    before = api.get("/v1/levels/3/oldest", params={"limit": 100}).json()["count"]
    ids = [api.post("/ads", json=ad(f"Oldest {tag} {i}", priority=3)).json()["id"] for i in range(3)]
    body = api.get("/v1/levels/3/oldest", params={"limit": 100}).json()
    assert body["level"] == 3 and body["pending"] >= 3
    mine = [i for i in body["items"] if i["id"] in ids]
    assert [i["id"] for i in mine] == ids  # in the order they were queued
    assert all(i["state"] == "pending" and i["status"] == "queued" and i["attempts"] == 0 for i in mine)
    assert mine[0]["title"] == f"Oldest {tag} 0" and mine[0]["ageSeconds"] >= mine[2]["ageSeconds"]
    assert body["count"] == min(100, before + 3)
    small = api.get("/v1/levels/3/oldest", params={"limit": 1}).json()
    assert small["count"] == 1 and small["items"][0]["id"] == body["items"][0]["id"]


@pytest.mark.parametrize(("path", "status"), [("/v1/levels/0/oldest", 422), ("/v1/levels/3/oldest?limit=101", 422),
                                              ("/v1/levels/x/oldest", 422)])
def test_out_of_range_is_a_json_error(api: httpx.Client, path: str, status: int) -> None:
    r = api.get(path)
    assert r.status_code == status and "code" in r.json()["error"]
